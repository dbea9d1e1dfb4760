"""A workflow with module-level state, for tests/workflows/test_sandbox.py: in the sandbox each run
loads this module afresh, so no run sees what another left in RUNS."""

from __future__ import annotations

from temporalio import workflow

RUNS: list[str] = []


@workflow.defn
class SandboxProbeWorkflow:
    @workflow.run
    async def run(self) -> int:
        RUNS.append(workflow.info().workflow_id)
        return len(RUNS)

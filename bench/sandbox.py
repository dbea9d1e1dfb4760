"""Workflow sandbox CPU: the product's runner (worker.workflow_runner: default restrictions plus a
short passthrough list, each workflow module loaded afresh per run) against passing every module
through (what the worker did before issue 8), measured in the same run by replaying every exported
history (tests/replay/histories) several times. Needs no stack."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench.context import BenchContext

ORDER = 95
ROUNDS = 5
HISTORIES = Path(__file__).resolve().parent.parent / "tests" / "replay" / "histories"


async def _cpu_ms_per_history(runner) -> tuple[float, int]:
    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    from workflows.registry import WORKFLOWS

    histories = [
        WorkflowHistory.from_json(f"bench-{p.parent.name}-{p.stem}", p.read_text())
        for p in sorted(HISTORIES.glob("*/*.json"))
    ]
    replayer = Replayer(workflows=WORKFLOWS, workflow_runner=runner)
    await replayer.replay_workflow(histories[0])  # warm-up: imports, sandbox set-up
    started = time.process_time()
    for _ in range(ROUNDS):
        for history in histories:
            await replayer.replay_workflow(history)
    return (time.process_time() - started) * 1000 / (ROUNDS * len(histories)), len(histories)


def run(ctx: BenchContext) -> None:
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from worker import workflow_runner

    everything = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
    )
    product, n = asyncio.run(_cpu_ms_per_history(workflow_runner()))
    shared, _ = asyncio.run(_cpu_ms_per_history(everything))
    params = {"histories": n, "rounds": ROUNDS, "measured": "CPU of replaying one exported history"}
    ctx.add("sandbox.replay_cpu_per_history.product_runner", product, "ms", **params)
    ctx.add("sandbox.replay_cpu_per_history.passthrough_all", shared, "ms", **params)
    ctx.add("sandbox.replay_cpu.product_over_passthrough_all", product / shared, "ratio", **params)

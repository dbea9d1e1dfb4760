"""The worker's sandbox (worker.workflow_runner): workflow modules are not shared between runs."""

from __future__ import annotations

import uuid

from temporalio.worker import Worker

from tests.workflows.sandbox_probe import SandboxProbeWorkflow
from worker import workflow_runner


async def test_each_run_gets_its_own_copy_of_the_workflow_module(temporal_time_skipping):
    client = temporal_time_skipping.client
    queue = f"sandbox-{uuid.uuid4()}"
    async with Worker(
        client, task_queue=queue, workflows=[SandboxProbeWorkflow], workflow_runner=workflow_runner()
    ):
        seen = [
            await client.execute_workflow(
                SandboxProbeWorkflow.run, id=f"probe-{uuid.uuid4()}", task_queue=queue
            )
            for _ in range(2)
        ]
    # With every module passed through, the second run would find the first one's entry (2).
    assert seen == [1, 1]


def test_the_worker_does_not_pass_every_module_through():
    restrictions = workflow_runner().restrictions
    assert restrictions.passthrough_all_modules is False
    assert "workflows" not in restrictions.passthrough_modules

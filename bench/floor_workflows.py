"""The signup's shape with empty steps, for bench/saga_floor.py: the same four workflows, the same
child starts, local steps, signal and timers as the order, the service order, the eSIM flow and
the line, but every step a no-op. What they cost is the floor the design sets before any work."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

STEP = {"start_to_close_timeout": timedelta(seconds=10)}
MONTH = timedelta(days=30)


@activity.defn
async def step(name: str) -> str:
    return name


@workflow.defn
class FloorLine:
    @workflow.run
    async def run(self, line_id: str) -> None:
        await workflow.sleep(MONTH)  # the renewal's wait


@workflow.defn
class FloorEsim:
    @workflow.run
    async def run(self, service_id: str) -> None:
        await workflow.execute_local_activity(step, "prepare", **STEP)
        await workflow.get_external_workflow_handle(service_id).signal(FloorService.esim_ready)
        await workflow.sleep(MONTH)  # the device's download


@workflow.defn
class FloorService:
    def __init__(self) -> None:
        self.ready = False

    @workflow.signal
    def esim_ready(self) -> None:
        self.ready = True

    @workflow.run
    async def run(self, order_id: str) -> str:
        me = workflow.info().workflow_id
        await workflow.execute_local_activity(step, "reserve", **STEP)
        await workflow.start_child_workflow(
            FloorEsim.run, me, id=f"{me}-esim", parent_close_policy=workflow.ParentClosePolicy.ABANDON
        )
        await asyncio.gather(
            *(workflow.execute_local_activity(step, task, **STEP) for task in ("hlr", "pcrf", "ocs"))
        )
        await workflow.wait_condition(lambda: self.ready)
        await workflow.execute_local_activity(step, "complete", **STEP)
        return "done"


@workflow.defn
class FloorOrder:
    @workflow.run
    async def run(self, order_id: str) -> str:
        me = workflow.info().workflow_id
        await workflow.execute_local_activity(step, "create_service_order", **STEP)
        await workflow.execute_child_workflow(FloorService.run, order_id, id=f"{me}-som")
        await workflow.execute_local_activity(step, "charge", **STEP)
        await workflow.execute_local_activity(step, "create_line", **STEP)
        await workflow.start_child_workflow(
            FloorLine.run,
            order_id,
            id=f"{me}-line",
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )
        await workflow.execute_local_activity(step, "complete", **STEP)
        return "completed"


FLOOR_WORKFLOWS = [FloorOrder, FloorService, FloorEsim, FloorLine]


def floor_worker(client, queue: str, sandboxed: bool = True):
    """A worker of the floor's workflows on `queue`, with the product's sandbox (worker.py), or
    without any (`sandboxed=False`: only to measure what the sandbox costs; the product keeps it)."""
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker

    from worker import workflow_runner

    return Worker(
        client,
        task_queue=queue,
        workflows=FLOOR_WORKFLOWS,
        activities=[step],
        workflow_runner=workflow_runner() if sandboxed else UnsandboxedWorkflowRunner(),
    )

"""A provisioning task's three attempts are the network element's: attempts lost with our worker
(killed or hung mid-call, so Temporal times them out start-to-close) do not use them up, while the
element's own failures still do. On the dev server with the real workflows."""

from __future__ import annotations

import asyncio

import pytest
from temporalio import activity

from activities.provisioning import ProvisioningActivities, TaskOutcome, TaskRequest
from tests.saga_harness import running_saga

pytestmark = pytest.mark.slow

LOST = 3  # the whole budget of the old code


def _lost_with_the_worker(box: dict, task_type: str, lost: int):
    """`run_task`, whose first `lost` attempts at `task_type` never answer (as if the worker died
    mid-call: the server times them out start-to-close), then the real activity."""
    calls = {"n": 0}

    async def run_task(req: TaskRequest) -> TaskOutcome:
        if req.task_type == task_type and calls["n"] < lost:
            calls["n"] += 1
            await asyncio.sleep(3600)
        return await box["real"](req)

    return activity.defn(name="run_task")(run_task), calls


async def test_attempts_lost_with_the_worker_do_not_use_up_the_task_budget(temporal_dev, runtime, settings):
    box: dict = {}
    run_task, calls = _lost_with_the_worker(box, "HLR_PROVISION", LOST)
    async for saga in running_saga(
        temporal_dev, runtime, settings, replace_activities={"run_task": run_task}
    ):
        box["real"] = ProvisioningActivities(saga.runtime, saga.network).run_task
        order = await saga.order(await saga.customer())
        result = await asyncio.wait_for(saga.handle(order.id).result(), 180)
        assert calls["n"] == LOST, "every lost attempt was timed out by the server"
        assert result.state == "completed", result.reason
        assert result.msisdn in saga.network.hlr.subscribers


async def test_the_element_s_own_failures_still_end_the_task_after_three_attempts(saga):
    saga.fault("HLR_PROVISION", "fail_always")
    order = await saga.order(await saga.customer())
    result = await asyncio.wait_for(saga.handle(order.id).result(), 60)
    assert result.state == "failed"
    assert "HLR_PROVISION" in (result.reason or "")

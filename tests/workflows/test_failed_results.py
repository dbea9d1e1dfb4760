"""A failed order is an expected business outcome, not a workflow failure: the service order and
its eSIM flow compensate and *complete* with a `failed` result (reason and rule code), and the order
reads it exactly as it read their failure before (same note with the rule code, same undo). No
workflow of the saga ends Failed in the Temporal UI. On the dev server with the real workflows."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus

from tests.saga_harness import Saga


async def scalar(saga: Saga, sql: str, **params):
    async with saga.runtime.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def _statuses(saga: Saga, order_id: str) -> dict[str, WorkflowExecutionStatus]:
    so = await scalar(saga, "select service_order_id from ordering.product_order where id = :o", o=order_id)
    iccid = await scalar(
        saga,
        "select characteristics->>'iccid' from service_ordering.service where service_order_id = :s "
        "and type = 'CFS'",
        s=so,
    )
    ids = [f"order-{order_id}", f"service-order-{so}"] + [f"esim-{iccid}"] * bool(iccid)
    out = {}
    for wf_id in ids:
        handle = saga.client.get_workflow_handle(wf_id)
        for _ in range(150):  # the eSIM flow ends a moment after the service order reads it
            status = (await handle.describe()).status
            if status != WorkflowExecutionStatus.RUNNING:
                break
            await asyncio.sleep(0.2)
        out[wf_id.split("-")[0]] = status
    return out


@pytest.mark.parametrize(
    ("task_type", "failed_child"),
    [("PCRF_POLICY_PUSH", "service order"), ("ESIM_PROFILE_PREPARE", "eSIM flow")],
)
async def test_a_task_failing_for_good_fails_the_order_with_no_workflow_ended_failed(
    saga: Saga, task_type: str, failed_child: str
):
    saga.fault(task_type, "fail_always")
    cust = await saga.customer()
    order = await saga.order(cust)
    result = await asyncio.wait_for(saga.handle(order.id).result(), 90)
    # The order: failed, its note the innermost reason with its rule code, as before.
    assert result.state == "failed"
    assert f"{task_type} rejected by the network" in result.reason
    assert result.reason.endswith("[PermanentNetworkError]"), result.reason  # the innermost rule code
    so = await scalar(saga, "select service_order_id from ordering.product_order where id = :o", o=order.id)
    assert (
        await scalar(saga, "select state from service_ordering.service_order where id = :s", s=so) == "failed"
    )
    # The same compensation: nothing held, nothing charged.
    assert await scalar(saga, "select count(*) from inventory.msisdn where reserved_for = :s", s=so) == 0
    assert await scalar(saga, "select count(*) from payment.payment where customer_id = :c", c=cust) == 0
    # No workflow ended Failed: each completed with its result.
    statuses = await _statuses(saga, order.id)
    assert set(statuses) == {"order", "service", "esim"}
    assert all(s == WorkflowExecutionStatus.COMPLETED for s in statuses.values()), (failed_child, statuses)
    so_result = await saga.client.get_workflow_handle(f"service-order-{so}").result()
    assert so_result["state"] == "failed"
    assert so_result["rule_code"] == "PermanentNetworkError"
    assert result.reason == f"{so_result['reason']} [{so_result['rule_code']}]"

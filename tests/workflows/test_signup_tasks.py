"""A signup's orchestration (issue 12): the activation charge, the network tasks and the eSIM
preparation run as local activities, so the order, its service order and the eSIM flow schedule no
activity task on the happy path and take at most 4, 3 and 2 workflow tasks; the provisioning tasks
still keep their rows, the charge its key. On the dev server with the real workflows."""

from __future__ import annotations

from sqlalchemy import text
from temporalio.api.enums.v1 import EventType

from tests.saga_harness import Saga
from tests.workflows.test_order_saga import scalar


async def _events(saga: Saga, workflow_id: str) -> list:
    return [e async for e in saga.client.get_workflow_handle(workflow_id).fetch_history_events()]


def _count(events: list, kind: int) -> int:
    return sum(1 for e in events if e.event_type == kind)


async def test_a_signup_runs_its_steps_as_local_activities_in_few_workflow_tasks(saga: Saga):
    cust = await saga.customer()
    order = await saga.order(cust)
    result = await saga.handle(order.id).result()
    assert result.state == "completed", result.reason
    so_id = await scalar(
        saga, "select service_order_id from ordering.product_order where id = :o", o=order.id
    )
    histories = {
        "order": (await _events(saga, f"order-{order.id}"), 4),
        "service order": (await _events(saga, f"service-order-{so_id}"), 3),
        "eSIM flow": (await _events(saga, f"esim-{result.iccid}"), 2),
    }
    for name, (events, most) in histories.items():
        assert _count(events, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == 0, name
        assert _count(events, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) <= most, name
    # Each network task and the eSIM preparation still has its row, done in one attempt; the
    # profile was marked prepared by the preparation's own transaction; the card charged once.
    async with saga.runtime.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "select task_type, state, attempts from service_ordering.provisioning_task "
                "where service_order_id = :s"
            ),
            {"s": so_id},
        )
        tasks = {task_type: (state, attempts) for task_type, state, attempts in rows}
    assert tasks == {
        t: ("completed", 1)
        for t in ("HLR_PROVISION", "PCRF_POLICY_PUSH", "OCS_BALANCE_INIT", "ESIM_PROFILE_PREPARE")
    }
    assert await scalar(
        saga, "select prepared_at is not null from inventory.esim_profile where iccid = :i", i=result.iccid
    )
    assert (
        await scalar(
            saga,
            "select count(*) from payment.payment where customer_id = :c and status = 'approved' "
            "and idempotency_key = :k",
            c=cust,
            k=f"order-{order.id}/activation",
        )
        == 1
    )

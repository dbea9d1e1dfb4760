"""Stuck provisioning tasks: a stuck eSIM preparation gives way when its order fails for another
reason (the profile comes back only once its flow has ended, so it never poisons the pool), and a
stuck task's ticket is resolved when the task is resolved or retried to success, under the
operator who asked (as are device events)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.saga_harness import CTX, Saga
from tests.workflows.test_saga_undo import _not_running, eventually, scalar


async def _stuck_task(saga: Saga, order_id: str, task_type: str) -> tuple[str, str]:
    async def find():
        async with saga.runtime.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "select t.id, t.ticket_id from service_ordering.provisioning_task t "
                        "join ordering.product_order o on o.service_order_id = t.service_order_id "
                        "where o.id = :o and t.task_type = :t and t.state = 'stuck'"
                    ),
                    {"o": order_id, "t": task_type},
                )
            ).first()
        return tuple(row) if row else None

    return await eventually(find, what=f"{task_type} stuck")


async def test_a_stuck_esim_flow_of_a_failed_order_ends_and_does_not_poison_the_pool(saga: Saga):
    saga.fault("ESIM_PROFILE_PREPARE", "stuck")
    saga.fault("OCS_BALANCE_INIT", "fail_always")
    order = await saga.order(await saga.customer())
    result = await asyncio.wait_for(saga.handle(order.id).result(), 60)
    assert result.state == "failed"
    so = await scalar(saga, "select service_order_id from ordering.product_order where id = :o", o=order.id)
    iccid = await scalar(
        saga,
        "select characteristics->>'iccid' from service_ordering.service where service_order_id = :s "
        "and type = 'CFS'",
        s=so,
    )
    # The stuck preparation honoured the cancel: the flow ended, and only then was the profile back.
    assert await _not_running(saga, f"esim-{iccid}")
    assert (
        await scalar(saga, "select profile_state from inventory.esim_profile where iccid = :i", i=iccid)
        == "available"
    )
    ticket = await scalar(
        saga,
        "select ticket_id from service_ordering.provisioning_task where service_order_id = :s "
        "and task_type = 'ESIM_PROFILE_PREPARE'",
        s=so,
    )
    if ticket:  # it was stuck before the order failed: its ticket is closed with it
        assert await scalar(saga, "select state from crm.ticket where id = :t", t=ticket) == "resolved"
    # The next orders take that lowest ICCID again and complete.
    saga.faults.faults.clear()
    saga.network.smdp.reset()
    for _ in range(2):
        nxt = await saga.order(await saga.customer())
        done = await asyncio.wait_for(saga.handle(nxt.id).result(), 60)
        assert done.state == "completed", done.reason


async def test_a_stuck_esim_flow_cancelled_while_waiting_for_the_operator_gives_back_its_profile(saga: Saga):
    """The flow is stuck (ticket open) before the order fails: cancel ends it without an operator."""
    saga.fault("ESIM_PROFILE_PREPARE", "stuck")
    saga.fault("HLR_PROVISION", "stuck")
    order = await saga.order(await saga.customer())
    _, esim_ticket = await _stuck_task(saga, order.id, "ESIM_PROFILE_PREPARE")
    hlr_task, hlr_ticket = await _stuck_task(saga, order.id, "HLR_PROVISION")
    # Now the HLR task fails for good: the order fails while the eSIM flow waits on its operator.
    from ops.orders import retry_task

    saga.faults.faults.clear()
    saga.fault("ESIM_PROFILE_PREPARE", "stuck")
    saga.fault("HLR_PROVISION", "fail_always")
    await retry_task(saga.runtime, CTX, hlr_task)
    result = await asyncio.wait_for(saga.handle(order.id).result(), 60)
    assert result.state == "failed"
    iccid = await scalar(
        saga,
        "select characteristics->>'iccid' from service_ordering.service s join ordering.product_order o "
        "on o.service_order_id = s.service_order_id where o.id = :o and s.type = 'CFS'",
        o=order.id,
    )
    await eventually(lambda: _not_running(saga, f"esim-{iccid}"), what="stuck eSIM flow ended")
    assert (
        await scalar(saga, "select profile_state from inventory.esim_profile where iccid = :i", i=iccid)
        == "available"
    )
    assert await scalar(saga, "select state from crm.ticket where id = :t", t=esim_ticket) == "resolved"


async def test_a_stuck_task_retried_to_success_resolves_its_ticket_under_the_operator(saga: Saga):
    from ops.orders import device_event, retry_task

    saga.fault("PCRF_POLICY_PUSH", "stuck")
    order = await saga.order(await saga.customer())
    task, ticket = await _stuck_task(saga, order.id, "PCRF_POLICY_PUSH")
    saga.faults.faults.clear()
    await retry_task(saga.runtime, CTX, task)
    result = await asyncio.wait_for(saga.handle(order.id).result(), 60)
    assert result.state == "completed", result.reason
    assert await scalar(saga, "select state from crm.ticket where id = :t", t=ticket) == "resolved"
    resolved_by = await scalar(
        saga,
        "select actor from audit.domain_event where aggregate_id = :t and event_type = 'ticket.resolved'",
        t=ticket,
    )
    assert resolved_by == CTX.actor

    # A device event sent by an operator is audited under that operator.
    await device_event(saga.runtime, CTX, result.iccid, "downloaded")
    actor = await eventually(
        lambda: scalar(
            saga,
            "select actor from audit.domain_event where aggregate_id = :i "
            "and event_type like 'inventory.esim.download%'",
            i=result.iccid,
        ),
        what="download recorded",
    )
    assert actor == CTX.actor


async def test_a_stuck_task_resolved_by_hand_resolves_its_ticket_under_the_operator(saga: Saga):
    from ops.orders import resolve_task

    saga.fault("OCS_BALANCE_INIT", "stuck")
    order = await saga.order(await saga.customer())
    task, ticket = await _stuck_task(saga, order.id, "OCS_BALANCE_INIT")
    await resolve_task(saga.runtime, CTX, task, "initialised by hand")
    result = await asyncio.wait_for(saga.handle(order.id).result(), 60)
    assert result.state == "completed", result.reason
    assert await scalar(saga, "select state from crm.ticket where id = :t", t=ticket) == "resolved"
    actors = {
        await scalar(
            saga,
            "select actor from audit.domain_event where aggregate_id = :t and event_type = 'ticket.resolved'",
            t=ticket,
        ),
        await scalar(
            saga,
            "select actor from audit.domain_event where aggregate_id = :k "
            "and event_type = 'provisioning.task.resolved'",
            k=task,
        ),
    }
    assert actors == {CTX.actor}

"""Every step of the order saga has its undo: an order that fails after any step leaves nothing held
(numbers and eSIMs back in the pool, no charge kept, no live line, no running line or eSIM flow, the
network deprovisioned). On the dev server with the real workflows, faults injected step by step."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import text
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ordering import NewSubscription, OrderCompleted
from tests.saga_harness import Saga, running_saga

INJECTED = "test.injected_failure"


async def scalar(saga: Saga, sql: str, **params):
    async with saga.runtime.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def eventually(check: Callable, seconds: float = 40, what: str = "condition"):
    """Poll an async check (visibility and the eSIM flow's own give-back are asynchronous)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never true: {what}")
        await asyncio.sleep(0.2)


def _raising_after(saga_box: dict | None, name: str, arg_type):
    """The real activity (when `saga_box` gives it), then a non-retryable failure, as an integrity
    or programming error now is: the step happened (or not), the order fails."""

    async def impl(req):
        if saga_box is not None:
            await saga_box["real"][name](req)
        raise ApplicationError(f"{name} failed on purpose", type=INJECTED, non_retryable=True)

    impl.__annotations__ = {"req": arg_type, "return": None}
    return activity.defn(name=name)(impl)


def _hanging(name: str, arg_type):
    async def impl(req):
        await asyncio.sleep(3600)

    impl.__annotations__ = {"req": arg_type, "return": None}
    return activity.defn(name=name)(impl)


async def _real_activities(saga: Saga) -> dict:
    from activities.ordering import OrderActivities

    orders = OrderActivities(saga.runtime, saga.gateway)
    return {"create_subscription": orders.create_subscription, "complete_order": orders.complete_order}


async def _pools(saga: Saga) -> tuple[int, int]:
    numbers = await scalar(
        saga, "select count(*) from inventory.msisdn where status in ('reserved','assigned')"
    )
    esims = await scalar(
        saga, "select count(*) from inventory.esim_profile where profile_state <> 'available'"
    )
    return numbers, esims


async def _assert_nothing_held(saga: Saga, order_id: str, customer: str, before: tuple[int, int]):
    so = await scalar(saga, "select service_order_id from ordering.product_order where id = :o", o=order_id)
    assert (
        await scalar(saga, "select state from ordering.product_order where id = :o", o=order_id) == "failed"
    )
    # Pools: the eSIM comes back once its flow has ended (it gives its profile back itself).
    await eventually(lambda: _same(_pools(saga), before), what="numbers and eSIMs back in the pool")
    if so:
        assert await scalar(saga, "select count(*) from inventory.msisdn where reserved_for = :s", s=so) == 0
    # Charges: none kept.
    assert (
        await scalar(
            saga,
            "select count(*) from payment.payment where customer_id = :c and status = 'approved'",
            c=customer,
        )
        == 0
    )
    # Lines: none live.
    assert (
        await scalar(
            saga,
            "select count(*) from subscription.subscription where order_id = :o and state <> 'terminated'",
            o=order_id,
        )
        == 0
    )
    sub = await scalar(saga, "select id from subscription.subscription where order_id = :o", o=order_id)
    iccid = await scalar(
        saga,
        "select characteristics->>'iccid' from service_ordering.service where service_order_id = :s "
        "and type = 'CFS'",
        s=so or "",
    )
    # Workflows: no line workflow, no eSIM flow still running for it.
    for wf_id in [f"subscription-{sub}"] * bool(sub) + [f"esim-{iccid}"] * bool(iccid):
        await eventually(lambda wf_id=wf_id: _not_running(saga, wf_id), what=f"{wf_id} ended")
    # Network: whatever was provisioned for the number is gone.
    msisdn = await scalar(
        saga,
        "select characteristics->>'msisdn' from service_ordering.service where service_order_id = :s "
        "and type = 'CFS'",
        s=so or "",
    )
    if msisdn:
        net = saga.network
        assert msisdn not in net.hlr.subscribers
        assert msisdn not in net.pcrf.policies
        assert msisdn not in net.ocs.lines
    if sub:
        assert (
            await scalar(saga, "select status from inventory.msisdn where msisdn = :m", m=msisdn)
            == "available"
        ), "a number of a line that never went live goes straight back on sale"


async def _same(counts, before) -> bool:
    return (await counts) == before


async def _not_running(saga: Saga, wf_id: str) -> bool:
    from temporalio.service import RPCError

    try:
        desc = await saga.client.get_workflow_handle(wf_id).describe()
    except RPCError:
        return True
    return desc.status.name != "RUNNING"


STEPS = ["network", "esim", "charge", "create_subscription", "complete_order", "cancelled_from_ui"]


@pytest.mark.parametrize("step", STEPS)
async def test_an_order_failing_after_each_step_leaves_nothing_held(step, temporal_dev, runtime, settings):
    box: dict = {}
    replace = {}
    if step == "create_subscription":
        replace["create_subscription"] = _raising_after(box, "create_subscription", NewSubscription)
    if step == "complete_order":
        replace["complete_order"] = _raising_after(None, "complete_order", OrderCompleted)
    if step == "cancelled_from_ui":
        replace["complete_order"] = _hanging("complete_order", OrderCompleted)
    async for saga in running_saga(temporal_dev, runtime, settings, replace_activities=replace):
        await _play(saga, step, box)


async def _play(saga: Saga, step: str, box: dict) -> None:
    box["real"] = await _real_activities(saga)
    if step == "network":
        saga.fault("OCS_BALANCE_INIT", "fail_always")
    if step == "esim":
        saga.fault("ESIM_PROFILE_PREPARE", "fail_always")
    customer = await saga.customer(card="4000000000000002" if step == "charge" else "4242424242424242")
    before = await _pools(saga)
    order = await saga.order(customer)
    if step == "cancelled_from_ui":
        # The line and its workflow exist; the order hangs completing: an operator cancels it.
        sub = await eventually(
            lambda: scalar(saga, "select id from subscription.subscription where order_id = :o", o=order.id),
            what="line created",
        )
        await eventually(lambda: _running(saga, f"subscription-{sub}"), what="line workflow running")
        await saga.handle(order.id).cancel()
    result = await asyncio.wait_for(saga.handle(order.id).result(), 90)
    assert result.state == "failed", result
    if step in ("create_subscription", "complete_order"):
        assert "on purpose" in result.reason
    await _assert_nothing_held(saga, order.id, customer, before)
    if step in ("create_subscription", "complete_order", "cancelled_from_ui"):
        reason = await scalar(
            saga, "select state_reason from subscription.subscription where order_id = :o", o=order.id
        )
        assert reason == "order_failed"
    # The pool is whole: the next order gets a line (no poisoned profile, no stale SM-DP+ order).
    saga.faults.faults.clear()
    if step in ("create_subscription", "complete_order", "cancelled_from_ui"):
        return  # this worker's activities are still broken on purpose
    nxt = await saga.order(await saga.customer())
    assert (await asyncio.wait_for(saga.handle(nxt.id).result(), 60)).state == "completed"


async def _running(saga: Saga, wf_id: str) -> bool:
    return not await _not_running(saga, wf_id)


# --- the refund is durable: the order is failed only once the money is back ------------------


async def _order_waiting_on_refund(saga: Saga):
    saga.fault("PAYMENT_REFUND", "unavailable")
    customer = await saga.customer()
    order = await saga.order(customer)
    # Charged, then the line step fails: the refund is due and the gateway refuses it.
    await eventually(
        lambda: scalar(
            saga,
            "select count(*) from payment.payment where customer_id = :c and status = 'approved'",
            c=customer,
        ),
        what="charged",
    )
    return customer, order


async def _refund_outage(saga: Saga, patience: float | None = None) -> None:
    from ops.attention import decide
    from tests.saga_harness import CTX

    customer, order = await _order_waiting_on_refund(saga)
    if patience is None:
        # An outage shorter than the patience: the refund retries alone and goes through.
        await asyncio.sleep(3)
        from workflows.product_order import ProductOrderWorkflow

        status = await saga.handle(order.id).query(ProductOrderWorkflow.status)
        assert status.state == "failing"
        assert (
            await scalar(saga, "select state from ordering.product_order where id = :o", o=order.id)
            != "failed"
        )
        saga.faults.faults.clear()
    else:
        ticket = await eventually(
            lambda: scalar(
                saga,
                "select id from crm.ticket where waiting_workflow_id = :w and waiting_topic = 'refund' "
                "and state = 'open'",
                w=f"order-{order.id}",
            ),
            what="refund ticket opened",
        )
        # Still holding the customer's money: the order is not failed-and-done.
        assert (
            await scalar(saga, "select state from ordering.product_order where id = :o", o=order.id)
            != "failed"
        )
        assert (
            await scalar(
                saga,
                "select count(*) from payment.payment where customer_id = :c and status = 'approved'",
                c=customer,
            )
            == 1
        )
        saga.faults.faults.clear()
        await decide(saga.runtime, CTX, ticket, "retry")
    result = await asyncio.wait_for(saga.handle(order.id).result(), 60)
    assert result.state == "failed"
    assert (
        await scalar(saga, "select state from ordering.product_order where id = :o", o=order.id) == "failed"
    )
    assert (
        await scalar(saga, "select status from payment.payment where customer_id = :c", c=customer)
        == "refunded"
    )
    tickets = await scalar(
        saga,
        "select count(*) from crm.ticket where waiting_workflow_id = :w and state = 'open'",
        w=f"order-{order.id}",
    )
    assert tickets == 0


async def test_a_refund_waits_out_a_gateway_outage(temporal_dev, runtime, settings):
    replace = {"create_subscription": _raising_after(None, "create_subscription", NewSubscription)}
    async for saga in running_saga(temporal_dev, runtime, settings, replace_activities=replace):
        await _refund_outage(saga)


async def test_a_refund_that_keeps_failing_asks_an_operator_and_waits(temporal_dev, runtime, settings):
    settings.compensation_patience_seconds = 3
    replace = {"create_subscription": _raising_after(None, "create_subscription", NewSubscription)}
    async for saga in running_saga(temporal_dev, runtime, settings, replace_activities=replace):
        await _refund_outage(saga, patience=3)


async def test_an_integrity_error_fails_the_order_fast_into_its_compensation(saga: Saga):
    """A local step the database refuses (integrity error) is not retried forever: the order fails
    at once and undoes everything, the line and its workflow included."""
    customer = await saga.customer()
    before = await _pools(saga)
    async with saga.refusing_order_completion():
        order = await saga.order(customer)
        result = await asyncio.wait_for(saga.handle(order.id).result(), 60)
    assert result.state == "failed"
    assert "activity.database.integrity_error" in result.reason
    await _assert_nothing_held(saga, order.id, customer, before)


async def test_a_profile_whose_validity_expires_uninstalled_goes_back_to_the_pool(saga: Saga):
    """No line owns it (its order failed while the flow waited): expired, it is given back."""
    from core.db import transaction
    from domains.inventory import services as inventory
    from domains.service_ordering import services as som
    from tests.saga_harness import CTX
    from workflows.esim_provisioning import EsimInput, EsimProvisioningWorkflow

    customer = await saga.customer()
    async with transaction(saga.runtime.db) as s:
        so = await som.create_service_order(
            s, CTX, order_id="ORD-expiring", customer_id=customer, offering_id="PLAN_S"
        )
        esim = await inventory.reserve_esim(s, CTX, reserved_for=so.id)
        iccid, matching, so_id = esim.iccid, esim.matching_id, so.id
    # Validity 0 days: prepared, then at once past its validity with no device event.
    handle = await saga.client.start_workflow(
        EsimProvisioningWorkflow.run,
        EsimInput(iccid, so_id, "ORD-expiring", customer, "0", "0", matching, "", "PLAN_S", 2.0, 0),
        id=f"esim-{iccid}",
        task_queue=saga.task_queue,
    )
    status = await asyncio.wait_for(handle.result(), 30)
    assert status.state == "expired"
    assert (
        await scalar(saga, "select profile_state from inventory.esim_profile where iccid = :i", i=iccid)
        == "available"
    )
    assert saga.network.smdp.state_of(iccid) is None  # its SM-DP+ order is cancelled


# --- terminated from the Temporal UI: no compensation runs there, the sweeper's undo run does ----


@pytest.mark.parametrize("when", ["provisioning", "line_exists"])
async def test_an_order_terminated_from_the_ui_is_undone_by_the_sweeper(
    when, temporal_dev, runtime, settings
):
    replace = {"complete_order": _hanging("complete_order", OrderCompleted)} if when == "line_exists" else {}
    async for saga in running_saga(temporal_dev, runtime, settings, replace_activities=replace):
        await _terminated(saga, when)


async def _terminated(saga: Saga, when: str) -> None:
    from ops.som import undo_abandoned_orders

    if when == "provisioning":
        saga.fault("HLR_PROVISION", "stuck")
    customer = await saga.customer()
    before = await _pools(saga)
    order = await saga.order(customer)
    if when == "provisioning":
        await eventually(
            lambda: scalar(
                saga,
                "select count(*) from service_ordering.provisioning_task t join ordering.product_order o "
                "on o.service_order_id = t.service_order_id where o.id = :o and t.task_type = 'HLR_PROVISION' "
                "and t.state = 'stuck'",
                o=order.id,
            ),
            what="HLR task stuck",
        )
    else:
        sub = await eventually(
            lambda: scalar(saga, "select id from subscription.subscription where order_id = :o", o=order.id),
            what="line created",
        )
        await eventually(lambda: _running(saga, f"subscription-{sub}"), what="line workflow running")
    await saga.handle(order.id).terminate("terminated from the UI")
    saga.faults.faults.clear()
    assert await undo_abandoned_orders(saga.runtime) == [order.id]
    assert await undo_abandoned_orders(saga.runtime) == []  # a running undo is not started twice
    result = await asyncio.wait_for(saga.handle(order.id).result(), 60)
    assert result.state == "failed"
    assert "terminated" in result.reason
    await _assert_nothing_held(saga, order.id, customer, before)


async def test_a_network_undo_the_element_refuses_keeps_the_number_and_asks_an_operator(saga: Saga):
    """HLR provisioned, OCS fails, the HLR refuses to deprovision: the number is not released
    (another order could be provisioned on it) until an operator retries and the HLR forgets it."""
    from ops.attention import decide
    from tests.saga_harness import CTX

    saga.fault("OCS_BALANCE_INIT", "fail_always")
    saga.fault("HLR_DEPROVISION", "fail_always")
    customer = await saga.customer()
    before = await _pools(saga)
    order = await saga.order(customer)
    so = await eventually(
        lambda: scalar(saga, "select service_order_id from ordering.product_order where id = :o", o=order.id),
        what="service order",
    )
    ticket = await eventually(
        lambda: scalar(
            saga,
            "select id from crm.ticket where waiting_workflow_id = :w and waiting_topic = 'network_undo' "
            "and state = 'open'",
            w=f"service-order-{so}",
        ),
        what="network undo ticket",
    )
    msisdn = await scalar(saga, "select msisdn from inventory.msisdn where reserved_for = :s", s=so)
    assert msisdn in saga.network.hlr.subscribers  # still on the HLR, so still held
    assert (
        await scalar(saga, "select state from ordering.product_order where id = :o", o=order.id) != "failed"
    )
    saga.faults.faults.clear()
    await decide(saga.runtime, CTX, ticket, "retry")
    result = await asyncio.wait_for(saga.handle(order.id).result(), 60)
    assert result.state == "failed"
    await _assert_nothing_held(saga, order.id, customer, before)
    assert await scalar(saga, "select state from crm.ticket where id = :t", t=ticket) == "resolved"

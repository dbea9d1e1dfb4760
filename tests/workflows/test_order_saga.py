"""The order-to-activation saga on a real Temporal dev server and a real Postgres."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.api.subscription_flow import workflow_ready
from tests.saga_harness import Saga


async def scalar(saga: Saga, sql: str, **params):
    async with saga.runtime.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def test_happy_path_activates_a_line(saga: Saga):
    cust = await saga.customer()
    order = await saga.order(cust)
    result = await saga.handle(order.id).result()
    assert result.state == "completed", result.reason
    assert (
        await scalar(saga, "select state from ordering.product_order where id = :o", o=order.id)
        == "completed"
    )
    sub = await scalar(saga, "select id from subscription.subscription where order_id = :o", o=order.id)
    assert sub == result.subscription_id
    assert await scalar(saga, "select state from subscription.subscription where id = :s", s=sub) == "active"
    assert (
        await scalar(saga, "select status from inventory.msisdn where msisdn = :m", m=result.msisdn)
        == "assigned"
    )
    assert (
        await scalar(
            saga,
            "select count(*) from payment.payment where customer_id = :c and status = 'approved'",
            c=cust,
        )
        == 1
    )
    # The order completes as soon as it has started the line's workflow, which then reads its line.
    status = await workflow_ready(saga, sub)
    assert status.state == "active"


async def test_preferred_number_is_honoured(saga: Saga):
    cust = await saga.customer()
    order = await saga.order(cust, msisdn_preference="90000777")
    result = await saga.handle(order.id).result()
    assert result.state == "completed", result.reason
    assert result.msisdn == "90000777"


async def test_taken_preference_fails_the_order_with_a_clear_reason(saga: Saga):
    first = await saga.order(await saga.customer(), msisdn_preference="90000555")
    assert (await saga.handle(first.id).result()).state == "completed"
    second = await saga.order(await saga.customer(), msisdn_preference="90000555")
    result = await saga.handle(second.id).result()
    assert result.state == "failed"
    assert "90000555" in result.reason
    # Nothing held: no eSIM reserved for the failed service order, no charge.
    so = await scalar(saga, "select service_order_id from ordering.product_order where id = :o", o=second.id)
    assert (
        await scalar(saga, "select count(*) from inventory.esim_profile where reserved_for = :k", k=so) == 0
    )


async def test_declined_card_releases_everything_and_fails_the_order(saga: Saga):
    cust = await saga.customer(card="4000000000000002")
    available_before = await scalar(saga, "select count(*) from inventory.msisdn where status = 'available'")
    esims_before = await scalar(
        saga, "select count(*) from inventory.esim_profile where profile_state = 'available'"
    )
    order = await saga.order(cust)
    result = await saga.handle(order.id).result()
    assert result.state == "failed"
    assert "declined" in result.reason
    row = await scalar(saga, "select failure_reason from ordering.product_order where id = :o", o=order.id)
    assert "declined" in row
    assert (
        await scalar(saga, "select count(*) from subscription.subscription where order_id = :o", o=order.id)
        == 0
    )
    assert (
        await scalar(saga, "select count(*) from inventory.msisdn where status = 'available'")
        == available_before
    )
    assert (
        await scalar(saga, "select count(*) from inventory.esim_profile where profile_state = 'available'")
        == esims_before
    )
    assert (
        await scalar(
            saga,
            "select count(*) from payment.payment where customer_id = :c and status = 'approved'",
            c=cust,
        )
        == 0
    )


async def test_fail_first_attempt_completes_after_a_second_attempt(saga: Saga):
    saga.fault("HLR_PROVISION", "fail_first_attempt")
    order = await saga.order(await saga.customer())
    result = await saga.handle(order.id).result()
    assert result.state == "completed", result.reason
    so = await scalar(saga, "select service_order_id from ordering.product_order where id = :o", o=order.id)
    attempts = await scalar(
        saga,
        "select attempts from service_ordering.provisioning_task where service_order_id = :s "
        "and task_type = 'HLR_PROVISION'",
        s=so,
    )
    assert attempts == 2


async def test_fail_always_is_compensated(saga: Saga):
    saga.fault("PCRF_POLICY_PUSH", "fail_always")
    cust = await saga.customer()
    order = await saga.order(cust)
    result = await saga.handle(order.id).result()
    assert result.state == "failed"
    so = await scalar(saga, "select service_order_id from ordering.product_order where id = :o", o=order.id)
    assert (
        await scalar(saga, "select state from service_ordering.service_order where id = :s", s=so) == "failed"
    )
    assert await scalar(saga, "select count(*) from inventory.msisdn where reserved_for = :s", s=so) == 0
    assert await scalar(saga, "select count(*) from payment.payment where customer_id = :c", c=cust) == 0


async def test_stuck_task_waits_for_the_operator_then_completes(saga: Saga):
    import asyncio

    from ops.orders import resolve_task, stuck_orders
    from tests.saga_harness import CTX

    saga.fault("OCS_BALANCE_INIT", "stuck")
    order = await saga.order(await saga.customer())
    so = None
    for _ in range(100):
        so = await scalar(
            saga, "select service_order_id from ordering.product_order where id = :o", o=order.id
        )
        state = (
            await scalar(
                saga,
                "select state from service_ordering.provisioning_task where service_order_id = :s "
                "and task_type = 'OCS_BALANCE_INIT'",
                s=so,
            )
            if so
            else None
        )
        if state == "stuck":
            break
        await asyncio.sleep(0.1)
    assert state == "stuck"
    ticket = await scalar(
        saga,
        "select ticket_id from service_ordering.provisioning_task where service_order_id = :s "
        "and task_type = 'OCS_BALANCE_INIT'",
        s=so,
    )
    assert await scalar(saga, "select related_order_id from crm.ticket where id = :t", t=ticket) == order.id
    for _ in range(50):  # visibility is eventually consistent
        if any(r["orderId"] == order.id for r in await stuck_orders(saga.runtime)):
            break
        await asyncio.sleep(0.2)
    assert any(r["orderId"] == order.id for r in await stuck_orders(saga.runtime))
    task_id = await scalar(
        saga,
        "select id from service_ordering.provisioning_task where service_order_id = :s "
        "and task_type = 'OCS_BALANCE_INIT'",
        s=so,
    )
    await resolve_task(saga.runtime, CTX, task_id, "balance initialised by hand on the OCS console")
    result = await saga.handle(order.id).result()
    assert result.state == "completed", result.reason
    assert (
        await scalar(saga, "select state from service_ordering.provisioning_task where id = :t", t=task_id)
        == "completed"
    )


async def test_cancel_before_som_starts_is_allowed(saga: Saga):
    from datetime import timedelta

    from core.clock import clock
    from ops.orders import cancel_order
    from tests.saga_harness import CTX

    order = await saga.order(await saga.customer(), requested_start=clock.now() + timedelta(hours=1))
    cancelled = await cancel_order(saga.runtime, CTX, order.id, "changed my mind")
    assert cancelled.state == "cancelled"
    result = await saga.handle(order.id).result()
    assert result.state == "cancelled"


async def test_cancel_after_som_started_is_refused(saga: Saga):
    import pytest

    from core.errors import PolicyViolation
    from ops.orders import cancel_order
    from tests.saga_harness import CTX

    saga.fault("HLR_PROVISION", "stuck")
    order = await saga.order(await saga.customer())
    import asyncio

    for _ in range(50):
        if await scalar(saga, "select som_started_at from ordering.product_order where id = :o", o=order.id):
            break
        await asyncio.sleep(0.1)
    with pytest.raises(PolicyViolation) as err:
        await cancel_order(saga.runtime, CTX, order.id)
    assert err.value.code == "order.cancel.forbidden_after_som_started"
    await saga.handle(order.id).terminate("test over")


async def test_a_failed_order_leaves_its_esim_orderable_again(saga: Saga):
    """The released profile is cancelled at the SM-DP+, so the next order can prepare it afresh."""
    declined = await saga.order(await saga.customer(card="4000000000000002"))
    assert (await saga.handle(declined.id).result()).state == "failed"
    first, second = [await saga.order(await saga.customer()) for _ in range(2)]
    for order in (first, second):
        result = await saga.handle(order.id).result()
        assert result.state == "completed", result.reason


async def test_an_order_with_a_start_date_waits_for_it_then_completes(saga: Saga):
    from datetime import timedelta

    from core.clock import clock

    order = await saga.order(await saga.customer(), requested_start=clock.now() + timedelta(seconds=2))
    result = await saga.handle(order.id).result()
    assert result.state == "completed", result.reason


async def test_a_refused_step_fails_the_order_with_its_rule_code(saga: Saga):
    """The rule code of a domain refusal inside an activity reaches the order's reason."""
    first = await saga.order(await saga.customer(), msisdn_preference="90000444")
    assert (await saga.handle(first.id).result()).state == "completed"
    second = await saga.order(await saga.customer(), msisdn_preference="90000444")
    result = await saga.handle(second.id).result()
    assert result.state == "failed"
    assert "[msisdn.reserve.status_must_be_available]" in result.reason


async def test_an_order_waits_for_the_earlier_esim_flow_of_its_profile_to_close(saga: Saga):
    """A profile released by a failed order can be reserved again while that order's eSIM flow is
    still closing: the service order tells it to stop, waits, and starts its own."""
    iccid, earlier = await saga.earlier_esim_flow()
    order = await saga.order(await saga.customer())

    await saga.until_signalled(earlier)  # told to stop
    assert (await saga.handle(order.id).describe()).status.name == "RUNNING"
    await earlier.terminate("closed on its cancel")  # what the earlier flow does once it runs

    result = await asyncio.wait_for(saga.handle(order.id).result(), 30)
    assert result.state == "completed", result.reason
    assert result.iccid == iccid

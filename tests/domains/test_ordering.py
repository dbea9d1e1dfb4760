"""Commercial ordering (COM) against the real Postgres: the order lifecycle, the create rules with
their codes, the price snapshot, and idempotency of every write the order workflow makes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from core.context import RequestContext
from core.db import transaction
from core.errors import InvalidInput, NotFound, PolicyViolation
from domains.audit.services import events_for
from domains.ordering import rules, services
from domains.ordering.rules import ACKNOWLEDGED, CANCELLED, COMPLETED, FAILED, IN_PROGRESS

CSR = RequestContext(actor="csr-bob", channel="cli")
ALL_STATES = (ACKNOWLEDGED, IN_PROGRESS, COMPLETED, FAILED, CANCELLED)
LEGAL = {
    ("start", ACKNOWLEDGED): IN_PROGRESS,
    ("complete", IN_PROGRESS): COMPLETED,
    ("fail", IN_PROGRESS): FAILED,
    ("cancel", ACKNOWLEDGED): CANCELLED,
    ("cancel", IN_PROGRESS): CANCELLED,
}


async def _customer(runtime, *, status: str = "active", card: bool = True, email: str | None = None) -> str:
    from domains.crm.services import create_customer
    from domains.payment.services import add_payment_method

    async with transaction(runtime.db) as s:
        customer = await create_customer(
            s, CSR, given_name="Ada", family_name="Tan", email=email, phone="+6591234567", status=status
        )
        if card:
            await add_payment_method(
                s, CSR, customer_id=customer.id, card_number="4242424242424242", exp_month=12, exp_year=2030
            )
        return customer.id


async def _order(runtime, customer_id: str, **kwargs) -> str:
    async with transaction(runtime.db) as s:
        order = await services.create_order(s, CSR, customer_id=customer_id, offering_id="PLAN_S", **kwargs)
        return order.id


async def _count(runtime, sql: str) -> int:
    async with runtime.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def _order_rows(runtime) -> tuple[int, int, int, int]:
    return (
        await _count(runtime, "SELECT count(*) FROM ordering.product_order"),
        await _count(runtime, "SELECT count(*) FROM ordering.product_order_item"),
        await _count(runtime, "SELECT count(*) FROM ordering.order_state_history"),
        await _count(
            runtime, "SELECT count(*) FROM audit.domain_event WHERE aggregate_type = 'ProductOrder'"
        ),
    )


# ---- lifecycle table ----------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", sorted(rules.TARGET))
@pytest.mark.parametrize("state", ALL_STATES)
def test_order_lifecycle_allows_exactly_the_reference_moves(trigger: str, state: str) -> None:
    expected = LEGAL.get((trigger, state))
    if expected is None:
        with pytest.raises(PolicyViolation) as exc:
            rules.order_lifecycle.next(trigger, state, code=rules.TRANSITION_CODE)
        assert exc.value.code == "order.transition.invalid"
        assert exc.value.context["current"] == state
    else:
        assert rules.order_lifecycle.next(trigger, state) == expected


def test_terminal_states_have_no_way_out() -> None:
    for state in rules.TERMINAL:
        assert not any(rules.order_lifecycle.can(t, state) for t in rules.TARGET)


# ---- create -------------------------------------------------------------------------------------


async def test_create_order_acknowledges_with_a_price_snapshot_item_history_and_audit(runtime) -> None:
    customer_id = await _customer(runtime)
    async with transaction(runtime.db) as s:
        order = await services.create_order(
            s,
            CSR,
            customer_id=customer_id,
            offering_id="PLAN_S",
            msisdn_preference="90000042",
            promo_code="HELLO",
        )
    async with transaction(runtime.db) as s:
        order = await services.get_order(s, order.id)
        items = await services.order_items(s, order.id)
        history = await services.order_history(s, order.id)
        events = await events_for(s, "ProductOrder", order.id)
    assert order.id.startswith("ORD-") and len(order.id) == 10
    assert order.state == ACKNOWLEDGED
    assert (order.price_id, order.price_amount, order.price_currency) == (
        "PRICE_PLAN_S",
        Decimal("10.00"),
        "SGD",
    )
    assert (order.msisdn_preference, order.promo_code) == ("90000042", "HELLO")
    assert [(i.id[:3], i.action, i.offering_id, i.state) for i in items] == [
        ("OI-", "add", "PLAN_S", ACKNOWLEDGED)
    ]
    assert [(h.from_state, h.to_state, h.actor) for h in history] == [(None, ACKNOWLEDGED, "csr-bob")]
    assert [e.event_type for e in events] == ["order.acknowledged"]
    assert events[0].channel == "cli" and events[0].payload["priceAmount"] == "10.00"


async def test_unknown_customer_is_refused_and_nothing_is_written(runtime) -> None:
    before = await _order_rows(runtime)
    with pytest.raises(PolicyViolation) as exc:
        await _order(runtime, "CUST-00000000")
    assert exc.value.code == "order.create.customer_not_found"
    assert await _order_rows(runtime) == before


async def test_customer_not_active_is_refused(runtime) -> None:
    customer_id = await _customer(runtime, status="pending")
    before = await _order_rows(runtime)
    with pytest.raises(PolicyViolation) as exc:
        await _order(runtime, customer_id)
    assert exc.value.code == "order.create.customer_not_active"
    assert await _order_rows(runtime) == before


async def test_unknown_offering_is_refused(runtime) -> None:
    customer_id = await _customer(runtime)
    before = await _order_rows(runtime)
    with pytest.raises(PolicyViolation) as exc:
        async with transaction(runtime.db) as s:
            await services.create_order(s, CSR, customer_id=customer_id, offering_id="PLAN_XL")
    assert exc.value.code == "order.create.offering_not_found"
    assert await _order_rows(runtime) == before


async def test_retired_offering_is_not_sellable_now(runtime) -> None:
    from domains.catalog.services import retire_offering

    customer_id = await _customer(runtime)
    async with transaction(runtime.db) as s:
        await retire_offering(s, CSR, "PLAN_S")
    before = await _order_rows(runtime)
    with pytest.raises(PolicyViolation) as exc:
        await _order(runtime, customer_id)
    assert exc.value.code == "policy.offering.not_sellable_now"
    assert await _order_rows(runtime) == before


async def test_offering_without_an_active_price_is_not_sellable_now(runtime) -> None:
    from datetime import timedelta

    from core.clock import clock
    from domains.catalog.services import add_offering

    customer_id = await _customer(runtime)
    async with transaction(runtime.db) as s:
        start = clock.now() + timedelta(days=7)
        await add_offering(
            s,
            CSR,
            offering_id="PLAN_SOON",
            name="Soon",
            amount=Decimal("9.00"),
            allowances={"data": 1024},
        )
        # Only a future price: the offering exists but cannot be sold today.
        await s.execute(
            text(
                "UPDATE catalog.product_offering_price SET valid_from = :at WHERE offering_id = 'PLAN_SOON'"
            ),
            {"at": start},
        )
    with pytest.raises(PolicyViolation) as exc:
        async with transaction(runtime.db) as s:
            await services.create_order(s, CSR, customer_id=customer_id, offering_id="PLAN_SOON")
    assert exc.value.code == "policy.offering.not_sellable_now"


async def test_customer_without_a_card_is_refused(runtime) -> None:
    customer_id = await _customer(runtime, card=False)
    before = await _order_rows(runtime)
    with pytest.raises(PolicyViolation) as exc:
        await _order(runtime, customer_id)
    assert exc.value.code == "order.create.no_payment_method"
    assert await _order_rows(runtime) == before


@pytest.mark.parametrize("msisdn", ["9000004", "900000421", "9000004x", "", "+6590000042"])
async def test_preferred_number_must_be_eight_digits(runtime, msisdn: str) -> None:
    customer_id = await _customer(runtime)
    before = await _order_rows(runtime)
    with pytest.raises(InvalidInput) as exc:
        await _order(runtime, customer_id, msisdn_preference=msisdn)
    assert exc.value.code == "order.create.invalid_msisdn_preference"
    assert await _order_rows(runtime) == before


async def test_price_snapshot_survives_a_later_catalogue_price_change(runtime) -> None:
    from domains.catalog.services import add_price

    customer_id = await _customer(runtime)
    first = await _order(runtime, customer_id)
    async with transaction(runtime.db) as s:
        await add_price(s, CSR, "PLAN_S", "PRICE_PLAN_S_PROMO", Decimal("7.50"))
    second = await _order(runtime, customer_id)
    async with transaction(runtime.db) as s:
        a, b = await services.get_order(s, first), await services.get_order(s, second)
    assert (a.price_id, a.price_amount) == ("PRICE_PLAN_S", Decimal("10.00"))
    assert (b.price_id, b.price_amount) == ("PRICE_PLAN_S_PROMO", Decimal("7.50"))


async def test_same_idempotency_key_returns_the_existing_order(runtime) -> None:
    customer_id = await _customer(runtime)
    first = await _order(runtime, customer_id, idempotency_key="signup-42")
    rows = await _order_rows(runtime)
    again = await _order(runtime, customer_id, idempotency_key="signup-42")
    assert again == first
    assert await _order_rows(runtime) == rows


async def test_idempotency_key_of_another_customer_is_refused(runtime) -> None:
    alice = await _customer(runtime)
    bob = await _customer(runtime)
    await _order(runtime, alice, idempotency_key="shared-key")
    with pytest.raises(PolicyViolation) as exc:
        await _order(runtime, bob, idempotency_key="shared-key")
    assert exc.value.code == "order.create.idempotency_key_reused"


# ---- the workflow's writes ----------------------------------------------------------------------


async def _call(runtime, fn, *args):
    async with transaction(runtime.db) as s:
        return await fn(s, CSR, *args)


async def test_happy_path_runs_each_step_twice_without_effect(runtime) -> None:
    order_id = await _order(runtime, await _customer(runtime))
    for _ in range(2):
        await _call(runtime, services.start_order, order_id)
    for _ in range(2):
        await _call(runtime, services.mark_som_started, order_id, "SO-000001")
    for _ in range(2):
        await _call(runtime, services.complete_order, order_id, "SUB-000001")
    async with transaction(runtime.db) as s:
        order = await services.get_order(s, order_id)
        items = await services.order_items(s, order_id)
        history = await services.order_history(s, order_id)
        events = await events_for(s, "ProductOrder", order_id)
    assert order.state == COMPLETED and order.completed_at is not None
    assert (order.service_order_id, order.subscription_id) == ("SO-000001", "SUB-000001")
    assert order.som_started_at is not None
    assert [(i.state, i.subscription_id) for i in items] == [(COMPLETED, "SUB-000001")]
    assert [h.to_state for h in history] == [ACKNOWLEDGED, IN_PROGRESS, COMPLETED]
    assert [e.event_type for e in events] == [
        "order.acknowledged",
        "order.in_progress",
        "order.som_started",
        "order.completed",
    ]


async def test_fail_is_idempotent_and_keeps_the_reason(runtime) -> None:
    order_id = await _order(runtime, await _customer(runtime))
    await _call(runtime, services.start_order, order_id)
    await _call(runtime, services.fail_order, order_id, "payment declined")
    await _call(runtime, services.fail_order, order_id, "payment declined")
    async with transaction(runtime.db) as s:
        order = await services.get_order(s, order_id)
        history = await services.order_history(s, order_id)
    assert (order.state, order.failure_reason) == (FAILED, "payment declined")
    assert [(h.to_state, h.reason) for h in history][-1] == (FAILED, "payment declined")
    assert len(history) == 3


async def test_cancel_before_som_is_allowed_and_idempotent(runtime) -> None:
    order_id = await _order(runtime, await _customer(runtime))
    await _call(runtime, services.start_order, order_id)
    await _call(runtime, services.cancel_order, order_id, "changed my mind")
    await _call(runtime, services.cancel_order, order_id, "changed my mind")
    async with transaction(runtime.db) as s:
        order = await services.get_order(s, order_id)
        history = await services.order_history(s, order_id)
    assert order.state == CANCELLED and order.failure_reason == "changed my mind"
    assert [h.to_state for h in history] == [ACKNOWLEDGED, IN_PROGRESS, CANCELLED]


async def test_cancel_after_som_started_is_forbidden_and_changes_nothing(runtime) -> None:
    order_id = await _order(runtime, await _customer(runtime))
    await _call(runtime, services.start_order, order_id)
    await _call(runtime, services.mark_som_started, order_id, "SO-000009")
    before = await _order_rows(runtime)
    with pytest.raises(PolicyViolation) as exc:
        await _call(runtime, services.cancel_order, order_id, "too late")
    assert exc.value.code == "order.cancel.forbidden_after_som_started"
    assert await _order_rows(runtime) == before
    async with transaction(runtime.db) as s:
        assert (await services.get_order(s, order_id)).state == IN_PROGRESS


async def test_terminal_orders_refuse_other_moves(runtime) -> None:
    order_id = await _order(runtime, await _customer(runtime))
    await _call(runtime, services.start_order, order_id)
    await _call(runtime, services.complete_order, order_id, "SUB-000007")
    for fn, args in (
        (services.cancel_order, ("late",)),
        (services.fail_order, ("late",)),
        (services.start_order, ()),
    ):
        with pytest.raises(PolicyViolation) as exc:
            await _call(runtime, fn, order_id, *args)
        assert exc.value.code == "order.transition.invalid"


async def test_an_acknowledged_order_cannot_complete_or_fail(runtime) -> None:
    order_id = await _order(runtime, await _customer(runtime))
    with pytest.raises(PolicyViolation) as exc:
        await _call(runtime, services.complete_order, order_id, "SUB-000001")
    assert exc.value.code == "order.transition.invalid"
    with pytest.raises(PolicyViolation) as exc:
        await _call(runtime, services.mark_som_started, order_id, "SO-000001")
    assert exc.value.code == "order.transition.invalid"
    async with transaction(runtime.db) as s:
        order = await services.get_order(s, order_id)
    assert (order.state, order.subscription_id, order.som_started_at) == (ACKNOWLEDGED, None, None)


async def test_unknown_order_is_not_found(runtime) -> None:
    async with transaction(runtime.db) as s:
        with pytest.raises(NotFound) as exc:
            await services.get_order(s, "ORD-999999")
    assert exc.value.code == "order.not_found"
    with pytest.raises(NotFound):
        await _call(runtime, services.start_order, "ORD-999999")


async def test_list_orders_filters_by_state_and_customer_with_a_total(runtime) -> None:
    alice = await _customer(runtime)
    bob = await _customer(runtime)
    a1 = await _order(runtime, alice)
    a2 = await _order(runtime, alice)
    b1 = await _order(runtime, bob)
    await _call(runtime, services.start_order, a2)
    async with transaction(runtime.db) as s:
        rows, total = await services.list_orders(s, customer_id=alice)
        assert total == 2 and {r.id for r in rows} == {a1, a2}
        rows, total = await services.list_orders(s, state=ACKNOWLEDGED)
        assert total == 2 and {r.id for r in rows} == {a1, b1}
        rows, total = await services.list_orders(s, offset=1, limit=1)
        assert total == 3 and len(rows) == 1

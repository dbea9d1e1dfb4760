"""Subscription domain against the real Postgres: the lifecycle (renew unblocks a blocked line),
activation from a completed order with balances from the plan and the number and eSIM assigned,
idempotency per order, and the contract view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from core.errors import NotFound, PolicyViolation
from domains.audit.services import events_for
from domains.subscription import rules, services

WORKER = RequestContext(actor="temporal-worker", channel="workflow", service_identity="worker")
T0 = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
STATES = (rules.PENDING, rules.ACTIVE, rules.BLOCKED, rules.TERMINATED)
LEGAL = {
    ("activate", "pending"): "active",
    ("fail_activate", "pending"): "terminated",
    ("exhaust", "active"): "blocked",
    ("top_up", "active"): "active",
    ("top_up", "blocked"): "active",
    ("renew", "active"): "active",
    ("renew", "blocked"): "active",
    ("renew_fail", "active"): "blocked",
    ("terminate", "active"): "terminated",
    ("terminate", "blocked"): "terminated",
}
TRIGGERS = sorted({t for t, _ in LEGAL})


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("state", STATES)
def test_subscription_lifecycle_allows_exactly_the_listed_moves(trigger: str, state: str) -> None:
    expected = LEGAL.get((trigger, state))
    if expected is None:
        with pytest.raises(PolicyViolation) as exc:
            rules.subscription_lifecycle.next(trigger, state)
        assert exc.value.code == "subscription.transition.invalid"
    else:
        assert rules.subscription_lifecycle.next(trigger, state) == expected


def test_renew_brings_a_blocked_line_back() -> None:
    # the reference's bug: it had no renew out of blocked
    assert rules.subscription_lifecycle.next("renew", rules.BLOCKED) == rules.ACTIVE


@pytest.mark.parametrize(
    ("total", "consumed", "left"),
    [(5120, 0, 5120), (5120, 5000, 120), (5120, 6000, 0), (-1, 99999, -1), (0, 0, 0)],
)
def test_remaining_is_never_negative_and_unlimited_stays_unlimited(
    total: int, consumed: int, left: int
) -> None:
    assert rules.remaining(total, consumed) == left


async def _reserve(runtime, order_id: str) -> tuple[str, str]:
    from domains.inventory.services import reserve_esim, reserve_msisdn

    async with transaction(runtime.db) as s:
        msisdn = await reserve_msisdn(s, WORKER, reserved_for=order_id)
        profile = await reserve_esim(s, WORKER, reserved_for=order_id)
        return msisdn, profile.iccid


async def _create(runtime, order_id: str, msisdn: str, iccid: str, offering_id: str = "PLAN_S", **kw):
    args = {
        "order_id": order_id,
        "customer_id": "CUST-0a0b0c0d",
        "offering_id": offering_id,
        "msisdn": msisdn,
        "iccid": iccid,
        "service_order_id": "SO-000001",
        "price_id": f"PRICE_{offering_id}",
        "price_amount": Decimal("10.00"),
        "price_currency": "SGD",
        **kw,
    }
    async with transaction(runtime.db) as s:
        return (await services.create_subscription(s, WORKER, **args)).id


async def _rows(runtime) -> dict[str, int]:
    counts = {}
    async with runtime.engine.connect() as conn:
        for table in ("subscription", "bundle_balance", "subscription_state_history"):
            counts[table] = (
                await conn.execute(text(f"SELECT count(*) FROM subscription.{table}"))
            ).scalar_one()
        counts["audit"] = (await conn.execute(text("SELECT count(*) FROM audit.domain_event"))).scalar_one()
    return counts


async def test_create_subscription_activates_the_line_for_thirty_days(runtime) -> None:
    clock.freeze(T0)
    msisdn, iccid = await _reserve(runtime, "ORD-000001")
    sub_id = await _create(runtime, "ORD-000001", msisdn, iccid)
    async with transaction(runtime.db) as s:
        sub = await services.get_subscription(s, sub_id)
        history = await services.subscription_history(s, sub_id)
        events = await events_for(s, "Subscription", sub_id)
    assert sub_id.startswith("SUB-") and len(sub_id) == 10
    assert (sub.state, sub.msisdn, sub.iccid, sub.order_id) == ("active", msisdn, iccid, "ORD-000001")
    assert (sub.activated_at, sub.current_period_start, sub.current_period_end) == (
        T0,
        T0,
        T0 + timedelta(days=30),
    )
    assert (sub.price_id, sub.price_amount, sub.price_currency) == ("PRICE_PLAN_S", Decimal("10.00"), "SGD")
    assert [(h.from_state, h.to_state, h.actor) for h in history] == [
        ("pending", "active", "temporal-worker")
    ]
    assert [e.event_type for e in events] == ["subscription.activated"]


async def test_balances_follow_the_catalogue_allowances_of_the_plan(runtime) -> None:
    from domains.catalog.services import allowances

    msisdn, iccid = await _reserve(runtime, "ORD-000001")
    sub_id = await _create(runtime, "ORD-000001", msisdn, iccid)
    async with transaction(runtime.db) as s:
        plan = {(a.allowance_type, a.quantity, a.unit) for a in await allowances(s, "PLAN_S")}
        found = await services.balances(s, sub_id)
    assert {(b.allowance_type, b.total, b.unit) for b in found} == plan
    got = {b.allowance_type: (b.total, b.consumed, b.remaining) for b in found}
    assert got["data"] == (5120, 0, 5120)
    assert got["voice"] == (100, 0, 100)
    assert got["sms"] == (100, 0, 100)
    assert got.get("data_roaming", (0, 0, 0)) == (0, 0, 0)
    assert [b.allowance_type for b in found][:3] == ["data", "voice", "sms"]


async def test_unlimited_allowances_stay_unlimited(runtime) -> None:
    msisdn, iccid = await _reserve(runtime, "ORD-000002")
    sub_id = await _create(runtime, "ORD-000002", msisdn, iccid, offering_id="PLAN_M")
    async with transaction(runtime.db) as s:
        got = {b.allowance_type: (b.total, b.remaining) for b in await services.balances(s, sub_id)}
    assert got["voice"] == (-1, -1) and got["sms"] == (-1, -1)
    assert got["data"] == (30720, 30720) and got["data_roaming"] == (500, 500)


async def test_create_subscription_assigns_the_number_and_the_esim(runtime) -> None:
    from domains.inventory.services import get_esim, get_msisdn

    msisdn, iccid = await _reserve(runtime, "ORD-000001")
    sub_id = await _create(runtime, "ORD-000001", msisdn, iccid)
    async with transaction(runtime.db) as s:
        number = await get_msisdn(s, msisdn)
        profile = await get_esim(s, iccid)
    assert (number.status, number.assigned_to_subscription_id) == ("assigned", sub_id)
    assert (profile.assigned_to_subscription_id, profile.assigned_msisdn) == (sub_id, msisdn)


async def test_create_subscription_twice_for_an_order_returns_the_first(runtime) -> None:
    msisdn, iccid = await _reserve(runtime, "ORD-000001")
    first = await _create(runtime, "ORD-000001", msisdn, iccid)
    before = await _rows(runtime)
    assert await _create(runtime, "ORD-000001", msisdn, iccid) == first
    assert await _rows(runtime) == before


async def test_an_unreserved_number_refuses_activation_and_writes_nothing(runtime) -> None:
    _, iccid = await _reserve(runtime, "ORD-000001")
    before = await _rows(runtime)
    with pytest.raises(PolicyViolation) as exc:
        await _create(runtime, "ORD-000001", "90000999", iccid)
    assert exc.value.code == "msisdn.assign.must_be_reserved"
    assert await _rows(runtime) == before


async def test_a_number_on_a_live_line_cannot_start_another(runtime) -> None:
    msisdn, iccid = await _reserve(runtime, "ORD-000001")
    await _create(runtime, "ORD-000001", msisdn, iccid)
    before = await _rows(runtime)
    with pytest.raises(PolicyViolation) as exc:
        await _create(runtime, "ORD-000002", msisdn, iccid)
    assert exc.value.code == "subscription.create.msisdn_and_esim_reserved"
    assert await _rows(runtime) == before


async def test_subscription_view_has_the_contract_shape(runtime) -> None:
    clock.freeze(T0)
    msisdn, iccid = await _reserve(runtime, "ORD-000001")
    sub_id = await _create(runtime, "ORD-000001", msisdn, iccid)
    async with transaction(runtime.db) as s:
        view = await services.subscription_view(s, sub_id)
    assert {"state", "stateReason", "msisdn", "iccid", "offeringId", "currentPeriodEnd", "balances"} <= set(
        view
    )
    assert (view["state"], view["stateReason"], view["msisdn"], view["iccid"], view["offeringId"]) == (
        "active",
        None,
        msisdn,
        iccid,
        "PLAN_S",
    )
    assert view["currentPeriodEnd"] == (T0 + timedelta(days=30)).isoformat()
    data = next(b for b in view["balances"] if b["allowanceType"] == "data")
    assert data == {"allowanceType": "data", "total": 5120, "consumed": 0, "remaining": 5120, "unit": "mb"}


async def test_unknown_subscription_is_not_found(runtime) -> None:
    async with transaction(runtime.db) as s:
        for call in (services.get_subscription, services.balances, services.subscription_view):
            with pytest.raises(NotFound) as exc:
                await call(s, "SUB-999999")
            assert exc.value.code == "subscription.not_found"


async def test_list_subscriptions_filters_by_customer_and_state(runtime) -> None:
    m1, i1 = await _reserve(runtime, "ORD-000001")
    m2, i2 = await _reserve(runtime, "ORD-000002")
    a = await _create(runtime, "ORD-000001", m1, i1)
    b = await _create(runtime, "ORD-000002", m2, i2, customer_id="CUST-99999999")
    async with transaction(runtime.db) as s:
        assert [x.id for x in await services.list_subscriptions(s, customer_id="CUST-0a0b0c0d")] == [a]
        assert [x.id for x in await services.list_subscriptions(s, state="active")] == [a, b]
        assert await services.list_subscriptions(s, state="blocked") == []

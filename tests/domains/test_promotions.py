"""Promotions against the real Postgres: discount math, the soft checks of a code at order time
(full price and a note, never a refusal), concurrent claims of a capped code, revoke giving the use
back, and the line's discount counting down and ending with a plan change."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from domains.audit.services import events_for
from domains.catalog import promotions as promos
from domains.ordering import services as ordering
from tests.domains.test_subscription_lifecycle import new_customer, sql

ADMIN = RequestContext(actor="admin-ann", channel="cli")


async def promo(runtime, code: str, **kw) -> None:
    terms = {
        "name": code.title(),
        "discount_type": "percent",
        "discount_value": Decimal("50"),
        "periods": 3,
        "code_kind": "multi_use",
    } | kw
    async with transaction(runtime.db) as s:
        await promos.create_promotion(s, ADMIN, code=code, **terms)


async def order(runtime, customer_id: str, code: str | None, offering: str = "PLAN_S"):
    async with transaction(runtime.db) as s:
        return await ordering.create_order(
            s, ADMIN, customer_id=customer_id, offering_id=offering, promo_code=code
        )


@pytest.mark.parametrize(
    ("kind", "value", "base", "expected"),
    [
        ("percent", "25", "10.00", "7.50"),
        ("percent", "33.33", "10.00", "6.67"),  # half-up
        ("percent", "100", "25.00", "0.00"),
        ("absolute", "3.50", "10.00", "6.50"),
        ("absolute", "12", "10.00", "0.00"),  # never below 0
    ],
)
def test_discount_math(kind, value, base, expected):
    assert promos.discounted(Decimal(base), kind, Decimal(value)) == Decimal(expected)


async def test_a_valid_code_is_snapshotted_with_the_lowest_active_price(runtime):
    await promo(runtime, "HALF3")
    customer = await new_customer(runtime)
    o = await order(runtime, customer, "half3")
    assert (o.price_amount, o.promo_amount, o.promo_code, o.promo_periods) == (
        Decimal("10.00"),
        Decimal("5.00"),
        "HALF3",
        3,
    )
    assert o.note is None


async def test_invalid_ineligible_expired_codes_go_at_full_price_with_a_note_and_an_event(runtime):
    now = clock.now()
    await promo(runtime, "OLD", valid_from=now - timedelta(days=10), valid_to=now - timedelta(days=1))
    await promo(runtime, "SOON", valid_from=now + timedelta(days=1))
    await promo(runtime, "VIP", eligible_customer_ids=[])
    customer = await new_customer(runtime)
    for code, reason in [
        ("NOPE", "unknown_code"),
        ("OLD", "expired"),
        ("SOON", "not_yet_valid"),
        ("VIP", "not_eligible"),
    ]:
        o = await order(runtime, customer, code)
        assert o.state == "acknowledged"  # never refused for its code
        assert o.promo_amount is None and o.price_amount == Decimal("10.00")
        assert f"[{reason}]" in o.note and "full price" in o.note
        async with runtime.db() as s:
            events = [
                e
                for e in await events_for(s, "product_order", o.id)
                if e.event_type == "order.promo_rejected"
            ]
        assert [e.payload for e in events] == [{"customer_id": customer, "code": code, "reason": reason}]
    # assigned, the targeted code applies
    async with transaction(runtime.db) as s:
        await promos.assign(s, ADMIN, "VIP", customer)
    assert (await order(runtime, customer, "VIP")).promo_amount == Decimal("5.00")


async def _claim(runtime, order_id: str):
    async with transaction(runtime.db) as s:
        return await promos.claim_for_order(s, ADMIN, order_id)


async def test_concurrent_claims_of_the_last_use_only_one_wins(runtime):
    await promo(runtime, "LAST1", max_uses=1)
    orders = [await order(runtime, await new_customer(runtime), "LAST1") for _ in range(4)]
    assert all(o.promo_amount == Decimal("5.00") for o in orders)  # each valid when placed
    outcomes = await asyncio.gather(*(_claim(runtime, o.id) for o in orders))
    assert sorted(o.state for o in outcomes) == ["claimed", "refused", "refused", "refused"]
    async with runtime.db() as s:
        p = await promos.get_promotion(s, "LAST1")
        assert (p.uses, p.state) == (1, "exhausted")
        losers = [
            await ordering.get_order(s, o.id)
            for o, c in zip(orders, outcomes, strict=True)
            if c.state == "refused"
        ]
    assert all(o.promo_amount is None and "[no_active_promotion]" in o.note for o in losers)
    # asked again, a claim answers as the first time
    assert [(await _claim(runtime, o.id)).state for o in orders] == [c.state for c in outcomes]


async def test_revoke_gives_the_use_back_and_redeem_keeps_the_periods(runtime):
    await promo(runtime, "ONCE", code_kind="single_use_per_customer", max_uses=2, periods=3)
    customer = await new_customer(runtime)
    first = await order(runtime, customer, "ONCE")
    assert (await _claim(runtime, first.id)).state == "claimed"
    async with transaction(runtime.db) as s:
        await promos.revoke_for_order(s, ADMIN, first.id, "card declined")
        p = await promos.get_promotion(s, "ONCE")
        assert (p.uses, p.state) == (0, "active")  # a failed activation never burns a code
    second = await order(runtime, customer, "ONCE")
    assert (await _claim(runtime, second.id)).state == "claimed"
    async with transaction(runtime.db) as s:
        claim = await promos.redeem_for_order(s, ADMIN, second.id, "SUB-999999")
        assert (claim.state, claim.periods_remaining) == ("redeemed", 2)  # activation was period 1
    third = await order(runtime, customer, "ONCE")  # the customer used it: full price
    assert third.promo_amount is None and "[already_used]" in third.note


async def test_operator_exhaust_stops_new_orders(runtime):
    await promo(runtime, "STOP")
    async with transaction(runtime.db) as s:
        await promos.exhaust(s, ADMIN, "STOP")
    o = await order(runtime, await new_customer(runtime), "STOP")
    assert o.promo_amount is None and "[no_active_promotion]" in o.note
    rows = await sql(runtime, "SELECT state, state_reason FROM catalog.promotion WHERE code = 'STOP'")
    assert rows == [("exhausted", "operator")]

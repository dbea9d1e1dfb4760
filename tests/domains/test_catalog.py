"""Catalog domain against the real Postgres: reference seed, lowest-active-price rule, sellability,
admin writes and their audit rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from core.errors import InvalidInput, NotFound, PolicyViolation
from domains.audit.services import events_for
from domains.catalog import rules, seed, services
from domains.catalog.models import ProductOffering

OPS = RequestContext(actor="ops-alice", channel="cli", service_identity="default")
T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
CATALOG_TABLES = (
    "product_specification",
    "product_offering",
    "product_offering_price",
    "bundle_allowance",
    "vas_offering",
    "service_specification",
    "product_to_service_mapping",
)


async def _plan(runtime, offering_id: str = "PLAN_T", amount: str = "20.00", **kwargs) -> None:
    async with transaction(runtime.db) as s:
        await services.add_offering(
            s,
            OPS,
            offering_id=offering_id,
            name="Test plan",
            amount=Decimal(amount),
            allowances={"data": 1024, "voice": -1},
            **kwargs,
        )


async def _price(
    runtime, price_id: str, amount: str, start=None, end=None, offering_id: str = "PLAN_T"
) -> None:
    async with transaction(runtime.db) as s:
        await services.add_price(s, OPS, offering_id, price_id, Decimal(amount), start, end)


async def _snapshot(runtime) -> dict[str, list]:
    async with runtime.engine.connect() as conn:
        return {
            t: [tuple(r) for r in await conn.execute(text(f"SELECT * FROM catalog.{t} ORDER BY 1"))]
            for t in CATALOG_TABLES
        }


# --- reference data --------------------------------------------------------------------------


async def test_seed_holds_the_three_reference_plans_with_exact_prices_and_allowances(runtime):
    async with runtime.db() as s:
        expected = {
            "PLAN_S": ("Lite", "10.00", {"data": 5120, "voice": 100, "sms": 100, "data_roaming": 0}),
            "PLAN_M": ("Standard", "25.00", {"data": 30720, "voice": -1, "sms": -1, "data_roaming": 500}),
            "PLAN_L": ("Max", "45.00", {"data": 153600, "voice": -1, "sms": -1, "data_roaming": 2048}),
        }
        for plan_id, (name, amount, bundle) in expected.items():
            offering, price = await services.require_sellable(s, plan_id)
            assert offering.name == name and offering.spec_id == "SPEC_MOBILE_PREPAID"
            assert (price.id, price.amount, price.currency) == (f"PRICE_{plan_id}", Decimal(amount), "SGD")
            assert (price.price_type, price.recurring_period_length) == ("recurring", 30)
            rows = await services.allowances(s, plan_id)
            assert {a.allowance_type: a.quantity for a in rows} == bundle
        ids = {a.id for a in await services.allowances(s, "PLAN_S")}
        assert ids == {"BA_S_DATA", "BA_S_VOICE", "BA_S_SMS", "BA_S_ROAM"}


async def test_seed_holds_the_four_vas_top_ups(runtime):
    async with runtime.db() as s:
        vas = {v.id: v for v in await services.list_vas(s)}
    assert set(vas) == {"VAS_DATA_1GB", "VAS_DATA_5GB", "VAS_UNLIMITED_DAY", "VAS_ROAMING_1GB"}
    assert (vas["VAS_DATA_1GB"].price_amount, vas["VAS_DATA_1GB"].allowance_quantity) == (
        Decimal("3.00"),
        1024,
    )
    assert (vas["VAS_DATA_5GB"].price_amount, vas["VAS_DATA_5GB"].allowance_quantity) == (
        Decimal("12.00"),
        5120,
    )
    day = vas["VAS_UNLIMITED_DAY"]
    assert (day.price_amount, day.allowance_quantity, day.expiry_hours) == (Decimal("5.00"), -1, 24)
    roaming = vas["VAS_ROAMING_1GB"]
    assert (roaming.allowance_type, roaming.price_amount, roaming.expiry_hours) == (
        "data_roaming",
        Decimal("8.00"),
        None,
    )


async def test_every_plan_maps_to_the_mobile_broadband_cfs_with_data_and_voice_rfs(runtime):
    async with runtime.db() as s:
        for plan_id in ("PLAN_S", "PLAN_M", "PLAN_L"):
            mapping = await services.service_mapping(s, plan_id)
            assert mapping.cfs_spec_id == "SSPEC_CFS_MOBILE_BROADBAND"
            assert mapping.rfs_spec_ids == ["SSPEC_RFS_DATA_BEARER", "SSPEC_RFS_VOICE_BEARER"]


async def test_seeding_twice_changes_nothing(runtime):
    before = await _snapshot(runtime)
    clock.advance(timedelta(days=3))  # a later run must not even touch the timestamps
    async with transaction(runtime.db) as s:
        await seed.seed(s)
    async with transaction(runtime.db) as s:
        await seed.seed(s)
    assert await _snapshot(runtime) == before
    assert sum(len(rows) for rows in before.values()) == 1 + 3 + 3 + 12 + 4 + 3 + 3


async def test_seeding_keeps_an_operators_later_price_change(runtime):
    async with transaction(runtime.db) as s:
        await s.exec(text("UPDATE catalog.product_offering_price SET amount = 11 WHERE id = 'PRICE_PLAN_S'"))
    async with transaction(runtime.db) as s:
        await seed.seed(s)
    async with runtime.db() as s:
        assert (await services.active_price(s, "PLAN_S")).amount == Decimal("11.00")


# --- price windows ---------------------------------------------------------------------------


def test_windows_are_half_open_and_a_missing_bound_is_open():
    assert rules.in_window(T0, T0 + DAY, T0)
    assert not rules.in_window(T0, T0 + DAY, T0 + DAY)
    assert not rules.in_window(T0, None, T0 - timedelta(microseconds=1))
    assert rules.in_window(None, None, T0)
    assert rules.in_window(None, T0, T0 - DAY) and not rules.in_window(None, T0, T0)


async def test_overlapping_windows_the_lowest_active_price_wins(runtime):
    await _plan(runtime)
    await _price(runtime, "PRICE_PLAN_T_PROMO", "15.00", T0, T0 + 10 * DAY)
    await _price(runtime, "PRICE_PLAN_T_FLASH", "12.50", T0 + 2 * DAY, T0 + 3 * DAY)
    async with runtime.db() as s:
        assert (await services.active_price(s, "PLAN_T", T0 - DAY)).id == "PRICE_PLAN_T"
        assert (await services.active_price(s, "PLAN_T", T0)).id == "PRICE_PLAN_T_PROMO"
        assert (await services.active_price(s, "PLAN_T", T0 + 2 * DAY)).amount == Decimal("12.50")
        assert (await services.active_price(s, "PLAN_T", T0 + 3 * DAY)).id == "PRICE_PLAN_T_PROMO"
        # valid_to is exclusive: at the promo's end the base price is back
        assert (await services.active_price(s, "PLAN_T", T0 + 10 * DAY)).id == "PRICE_PLAN_T"


async def test_the_business_clock_decides_the_price_when_no_moment_is_given(runtime):
    await _plan(runtime)
    await _price(runtime, "PRICE_PLAN_T_PROMO", "15.00", T0, T0 + 10 * DAY)
    clock.freeze(T0 + 5 * DAY)
    async with runtime.db() as s:
        _, price = await services.require_sellable(s, "PLAN_T")
    assert price.id == "PRICE_PLAN_T_PROMO"
    clock.freeze(T0 + 11 * DAY)
    async with runtime.db() as s:
        _, price = await services.require_sellable(s, "PLAN_T")
    assert price.id == "PRICE_PLAN_T"


async def test_a_price_whose_window_starts_in_the_future_is_not_sellable_yet(runtime):
    await _plan(runtime, valid_from=T0)
    async with runtime.db() as s:
        with pytest.raises(PolicyViolation) as err:
            await services.active_price(s, "PLAN_T", T0 - DAY)
        assert err.value.code == "catalog.price.no_active_row"
        with pytest.raises(PolicyViolation) as err:
            await services.require_sellable(s, "PLAN_T", T0 - DAY)
        assert err.value.code == "policy.offering.not_sellable_now"
        _, price = await services.require_sellable(s, "PLAN_T", T0)
        assert price.id == "PRICE_PLAN_T"


async def test_an_expired_price_no_longer_sells(runtime):
    await _plan(runtime)
    async with transaction(runtime.db) as s:
        await s.exec(
            text("UPDATE catalog.product_offering_price SET valid_to = :t WHERE id = 'PRICE_PLAN_T'"),
            params={"t": T0},
        )
    await _price(runtime, "PRICE_PLAN_T_LATER", "30.00", T0 + DAY)
    async with runtime.db() as s:
        assert (await services.active_price(s, "PLAN_T", T0 - DAY)).id == "PRICE_PLAN_T"
        with pytest.raises(PolicyViolation) as err:
            await services.require_sellable(s, "PLAN_T", T0 + timedelta(hours=1))
        assert err.value.code == "catalog.price.no_active_row"
        assert (await services.active_price(s, "PLAN_T", T0 + 2 * DAY)).id == "PRICE_PLAN_T_LATER"


async def test_an_offering_past_its_own_window_is_not_sellable(runtime):
    await _plan(runtime, valid_from=T0, valid_to=T0 + DAY)
    await _price(runtime, "PRICE_PLAN_T_OPEN", "25.00")  # a price alone does not reopen the sale
    async with runtime.db() as s:
        with pytest.raises(PolicyViolation) as err:
            await services.require_sellable(s, "PLAN_T", T0 + DAY)
        assert err.value.code == "policy.offering.not_sellable_now"


async def test_a_retired_offering_is_not_sellable_but_keeps_its_price_rows(runtime):
    await _plan(runtime)
    async with transaction(runtime.db) as s:
        retired = await services.retire_offering(s, OPS, "PLAN_T")
    assert retired.lifecycle_status == "Retired"
    async with runtime.db() as s:
        with pytest.raises(PolicyViolation) as err:
            await services.require_sellable(s, "PLAN_T")
        assert err.value.code == "policy.offering.not_sellable_now"
        assert (await services.active_price(s, "PLAN_T")).id == "PRICE_PLAN_T"


async def test_an_offering_not_sold_on_its_own_is_not_sellable(runtime):
    await _plan(runtime)
    async with transaction(runtime.db) as s:
        offering = await s.get(ProductOffering, "PLAN_T")
        offering.is_sellable = False
        s.add(offering)
    async with runtime.db() as s:
        with pytest.raises(PolicyViolation) as err:
            await services.require_sellable(s, "PLAN_T")
        assert err.value.code == "policy.offering.not_sellable_now"


async def test_unknown_offering_and_vas_are_not_found(runtime):
    async with runtime.db() as s:
        for call, code in (
            (services.get_offering(s, "PLAN_X"), "catalog.offering.not_found"),
            (services.active_price(s, "PLAN_X"), "catalog.offering.not_found"),
            (services.require_sellable(s, "PLAN_X"), "catalog.offering.not_found"),
            (services.allowances(s, "PLAN_X"), "catalog.offering.not_found"),
            (services.service_mapping(s, "PLAN_X"), "catalog.offering.not_found"),
            (services.get_vas(s, "VAS_X"), "catalog.vas.not_found"),
        ):
            with pytest.raises(NotFound) as err:
                await call
            assert err.value.code == code


# --- admin writes ----------------------------------------------------------------------------


async def test_add_offering_creates_price_allowances_mapping_and_an_audit_row(runtime):
    await _plan(runtime, description="for tests")
    async with runtime.db() as s:
        offering, price = await services.require_sellable(s, "PLAN_T")
        assert (offering.name, offering.lifecycle_status, price.amount) == (
            "Test plan",
            "Active",
            Decimal("20.00"),
        )
        bundle = await services.allowances(s, "PLAN_T")
        assert {(a.id, a.quantity, a.unit) for a in bundle} == {
            ("BA_PLAN_T_DATA", 1024, "mb"),
            ("BA_PLAN_T_VOICE", -1, "minutes"),
        }
        assert (await services.service_mapping(s, "PLAN_T")).cfs_spec_id == "SSPEC_CFS_MOBILE_BROADBAND"
        events = await events_for(s, "ProductOffering", "PLAN_T")
    assert [(e.event_type, e.actor, e.channel) for e in events] == [
        ("catalog.offering.added", "ops-alice", "cli")
    ]


async def test_add_offering_refuses_an_existing_id_and_writes_nothing(runtime):
    before = await _snapshot(runtime)
    with pytest.raises(PolicyViolation) as err:
        await _plan(runtime, offering_id="PLAN_S")
    assert err.value.code == "catalog.offering.already_exists"
    with pytest.raises(PolicyViolation) as err:
        await _plan(runtime, price_id="PRICE_PLAN_M")
    assert err.value.code == "catalog.price.already_exists"
    assert await _snapshot(runtime) == before


@pytest.mark.parametrize(
    ("allowances", "code"),
    [
        ({}, "catalog.offering.no_allowances"),
        ({"video": 10}, "catalog.allowance.invalid_type"),
        ({"data": -2}, "catalog.allowance.invalid_quantity"),
    ],
)
async def test_add_offering_needs_valid_allowances(runtime, allowances, code):
    before = await _snapshot(runtime)
    async with transaction(runtime.db) as s:
        with pytest.raises(InvalidInput) as err:
            await services.add_offering(
                s, OPS, offering_id="PLAN_T", name="T", amount=Decimal("5"), allowances=allowances
            )
    assert err.value.code == code
    assert await _snapshot(runtime) == before


async def test_add_price_refuses_duplicates_bad_amounts_and_inverted_windows(runtime):
    before = await _snapshot(runtime)
    for price_id, amount, start, end, code in (
        ("PRICE_PLAN_S", "9.00", None, None, "catalog.price.already_exists"),
        ("PRICE_PLAN_S_NEG", "-1.00", None, None, "catalog.price.invalid_amount"),
        ("PRICE_PLAN_S_FRAC", "1.001", None, None, "catalog.price.invalid_amount"),
        ("PRICE_PLAN_S_BACK", "9.00", T0, T0, "catalog.price.invalid_window"),
    ):
        with pytest.raises((PolicyViolation, InvalidInput)) as err:
            await _price(runtime, price_id, amount, start, end, offering_id="PLAN_S")
        assert err.value.code == code
    with pytest.raises(NotFound):
        await _price(runtime, "PRICE_PLAN_X", "9.00", offering_id="PLAN_X")
    assert await _snapshot(runtime) == before


async def test_add_price_is_audited(runtime):
    await _price(runtime, "PRICE_PLAN_S_CNY", "8.00", T0, T0 + DAY, offering_id="PLAN_S")
    async with runtime.db() as s:
        (event,) = await events_for(s, "ProductOffering", "PLAN_S")
    assert event.event_type == "catalog.price.added"
    assert event.payload["price_id"] == "PRICE_PLAN_S_CNY" and event.payload["amount"] == "8.00"


async def test_retiring_twice_is_refused(runtime):
    async with transaction(runtime.db) as s:
        await services.retire_offering(s, OPS, "PLAN_S")
    with pytest.raises(PolicyViolation) as err:
        async with transaction(runtime.db) as s:
            await services.retire_offering(s, OPS, "PLAN_S")
    assert err.value.code == "catalog.offering.already_retired"
    with pytest.raises(PolicyViolation) as err:
        await _price(runtime, "PRICE_PLAN_S_NEW", "9.00", offering_id="PLAN_S")
    assert err.value.code == "catalog.offering.already_retired"
    async with runtime.db() as s:
        events = await events_for(s, "ProductOffering", "PLAN_S")
    assert [e.event_type for e in events] == ["catalog.offering.retired"]

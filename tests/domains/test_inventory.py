"""Inventory domain against a real Postgres: state machines, reservations, quarantine, recycling, seed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from core.clock import clock
from core.context import RequestContext
from core.db import make_engine, make_session_factory, transaction
from core.errors import InvalidInput, NotFound, PolicyViolation
from domains.audit.services import events_for
from domains.inventory import services as inv
from domains.inventory.rules import ESIM, ESIM_STATES, MSISDN, MSISDN_STATUSES
from domains.inventory.seed import seed

CTX = RequestContext(actor="tester", channel="system")
FIRST_ICCID = "8910101000000000000"


@pytest.fixture
def db(runtime):
    return runtime.db


async def run(db, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    """One service call in its own committed transaction, as an activity would make it."""
    async with transaction(db) as s:
        return await fn(s, CTX, *args, **kwargs)


async def scalar(db, sql: str, **params: Any) -> Any:
    async with db() as s:
        return (await s.exec(text(sql), params=params)).one()[0]


async def msisdn_row(db, msisdn: str):
    async with db() as s:
        return await inv.get_msisdn(s, msisdn)


async def esim_row(db, iccid: str):
    async with db() as s:
        return await inv.get_esim(s, iccid)


# ---------------------------------------------------------------- the transition tables

EXPECTED_MSISDN = {
    ("reserve", "available"): "reserved",
    ("release", "reserved"): "available",
    ("assign", "reserved"): "assigned",
    ("quarantine", "assigned"): "quarantine",
    ("end_quarantine", "quarantine"): "available",
    ("port_out", "available"): "ported_out",
    ("port_out", "reserved"): "ported_out",
    ("port_out", "assigned"): "ported_out",
    ("port_out", "quarantine"): "ported_out",
    ("hold", "available"): "held",
    ("release_hold", "held"): "available",
    ("take_hold", "held"): "reserved",
    ("port_out", "held"): "ported_out",
}
HELD = ("reserved", "prepared", "downloaded", "installed")
EXPECTED_ESIM = {
    ("reserve", "available"): "reserved",
    ("prepare", "reserved"): "prepared",
    ("download", "prepared"): "downloaded",
    ("install", "prepared"): "installed",
    ("install", "downloaded"): "installed",
    ("release", "reserved"): "available",
    ("release", "prepared"): "available",
    ("rearm", "downloaded"): "prepared",
    ("rearm", "installed"): "prepared",
    **{("recycle", s): "available" for s in HELD},
    **{("assign", s): s for s in HELD},
}


@pytest.mark.parametrize("status", MSISDN_STATUSES)
@pytest.mark.parametrize("trigger", sorted({t for t, _ in EXPECTED_MSISDN}))
def test_msisdn_transition_table_allows_exactly_the_designed_moves(trigger: str, status: str) -> None:
    expected = EXPECTED_MSISDN.get((trigger, status))
    if expected is None:
        with pytest.raises(PolicyViolation) as exc:
            MSISDN.next(trigger, status)
        assert exc.value.code == "msisdn.transition.invalid"
    else:
        assert MSISDN.next(trigger, status) == expected


@pytest.mark.parametrize("state", ESIM_STATES)
@pytest.mark.parametrize("trigger", sorted({t for t, _ in EXPECTED_ESIM}))
def test_esim_transition_table_allows_exactly_the_designed_moves(trigger: str, state: str) -> None:
    expected = EXPECTED_ESIM.get((trigger, state))
    if expected is None:
        with pytest.raises(PolicyViolation) as exc:
            ESIM.next(trigger, state)
        assert exc.value.code == "esim.transition.invalid"
    else:
        assert ESIM.next(trigger, state) == expected


def test_ported_out_is_terminal_and_nothing_leaves_it() -> None:
    assert not any(source == "ported_out" for _, source in MSISDN.table)


# ---------------------------------------------------------------- MSISDN services


async def number_in(db, status: str, msisdn: str = "90000500") -> str:
    """Drive one number through the real services to `status`."""
    if status == "available":
        return msisdn
    if status == "ported_out":
        await run(db, inv.port_out_msisdn, msisdn=msisdn)
        return msisdn
    await run(db, inv.reserve_msisdn, reserved_for="SO-setup", preferred=msisdn)
    if status in ("assigned", "quarantine"):
        await run(db, inv.assign_msisdn, msisdn=msisdn, subscription_id="SUB-setup")
    if status == "quarantine":
        await run(db, inv.quarantine_msisdn, msisdn=msisdn)
    assert (await msisdn_row(db, msisdn)).status == status
    return msisdn


async def test_reserve_takes_the_lowest_free_number_and_audits_it(db) -> None:
    number = await run(db, inv.reserve_msisdn, reserved_for="SO-000001")
    assert number == "90000000"
    row = await msisdn_row(db, number)
    assert (row.status, row.reserved_for) == ("reserved", "SO-000001")
    async with db() as s:
        events = await events_for(s, "msisdn", number)
    assert [e.event_type for e in events] == ["inventory.msisdn.reserved"]
    assert events[0].actor == "tester" and events[0].payload == {"reserved_for": "SO-000001"}


async def test_reserve_twice_for_the_same_holder_returns_the_same_number(db) -> None:
    first = await run(db, inv.reserve_msisdn, reserved_for="SO-000001")
    again = await run(db, inv.reserve_msisdn, reserved_for="SO-000001")
    preferred_again = await run(db, inv.reserve_msisdn, reserved_for="SO-000001", preferred=first)
    assert first == again == preferred_again
    assert await scalar(db, "select count(*) from inventory.msisdn where status = 'reserved'") == 1


async def test_reserve_honours_a_preferred_number(db) -> None:
    assert await run(db, inv.reserve_msisdn, reserved_for="SO-1", preferred="90000777") == "90000777"
    assert (await msisdn_row(db, "90000777")).reserved_for == "SO-1"


@pytest.mark.parametrize("status", ["reserved", "assigned", "quarantine", "ported_out"])
async def test_a_preferred_number_that_is_not_available_is_refused_by_name(db, status: str) -> None:
    number = await number_in(db, status)
    with pytest.raises(PolicyViolation) as exc:
        await run(db, inv.reserve_msisdn, reserved_for="SO-2", preferred=number)
    assert exc.value.code == "msisdn.reserve.status_must_be_available"
    assert number in exc.value.message
    assert (await msisdn_row(db, number)).status == status


async def test_a_preferred_number_outside_the_pool_is_not_found(db) -> None:
    with pytest.raises(NotFound) as exc:
        await run(db, inv.reserve_msisdn, reserved_for="SO-2", preferred="81234567")
    assert exc.value.code == "msisdn.reserve.not_found"


async def test_a_holder_cannot_swap_its_number_by_asking_for_another(db) -> None:
    await run(db, inv.reserve_msisdn, reserved_for="SO-1")
    with pytest.raises(PolicyViolation) as exc:
        await run(db, inv.reserve_msisdn, reserved_for="SO-1", preferred="90000900")
    assert exc.value.code == "msisdn.reserve.already_holding"


async def test_an_empty_pool_answers_no_available(db) -> None:
    async with transaction(db) as s:
        await s.exec(text("update inventory.msisdn set status = 'ported_out'"))
    with pytest.raises(PolicyViolation) as exc:
        await run(db, inv.reserve_msisdn, reserved_for="SO-1")
    assert exc.value.code == "msisdn.reserve.no_available"


@pytest.mark.parametrize("key", ["", "x" * 65])
async def test_reserve_refuses_a_missing_or_overlong_holder_key(db, key: str) -> None:
    with pytest.raises(InvalidInput):
        await run(db, inv.reserve_msisdn, reserved_for=key)
    assert await scalar(db, "select count(*) from inventory.msisdn where status <> 'available'") == 0


async def test_release_then_re_reserve_gets_the_number_back(db) -> None:
    number = await run(db, inv.reserve_msisdn, reserved_for="SO-1")
    assert await run(db, inv.release_msisdn, msisdn=number, reserved_for="SO-1") is True
    row = await msisdn_row(db, number)
    assert (row.status, row.reserved_for, row.reserved_at) == ("available", None, None)
    assert await run(db, inv.release_msisdn, msisdn=number, reserved_for="SO-1") is False
    assert await run(db, inv.reserve_msisdn, reserved_for="SO-2") == number


async def test_release_by_another_holder_is_a_no_op(db) -> None:
    number = await run(db, inv.reserve_msisdn, reserved_for="SO-1")
    assert await run(db, inv.release_msisdn, msisdn=number, reserved_for="SO-9") is False
    assert (await msisdn_row(db, number)).reserved_for == "SO-1"


@pytest.mark.parametrize("status", ["available", "assigned", "quarantine"])
async def test_release_of_a_number_not_reserved_changes_nothing(db, status: str) -> None:
    number = await number_in(db, status)
    assert await run(db, inv.release_msisdn, msisdn=number, reserved_for="SO-setup") is False
    assert (await msisdn_row(db, number)).status == status


async def test_a_ported_out_number_is_never_released(db) -> None:
    number = await number_in(db, "ported_out")
    with pytest.raises(PolicyViolation) as exc:
        await run(db, inv.release_msisdn, msisdn=number, reserved_for="SO-setup")
    assert exc.value.code == "msisdn.release.terminal_status"


async def test_assign_moves_reserved_to_assigned_and_is_idempotent(db) -> None:
    number = await number_in(db, "reserved")
    row = await run(db, inv.assign_msisdn, msisdn=number, subscription_id="SUB-000001")
    assert (row.status, row.assigned_to_subscription_id) == ("assigned", "SUB-000001")
    again = await run(db, inv.assign_msisdn, msisdn=number, subscription_id="SUB-000001")
    assert again.status == "assigned"
    async with db() as s:
        assigned = [e for e in await events_for(s, "msisdn", number) if e.event_type.endswith("assigned")]
    assert len(assigned) == 1


@pytest.mark.parametrize("status", ["available", "assigned", "quarantine", "ported_out"])
async def test_assign_refuses_a_number_that_is_not_reserved(db, status: str) -> None:
    number = await number_in(db, status)
    with pytest.raises(PolicyViolation) as exc:
        await run(db, inv.assign_msisdn, msisdn=number, subscription_id="SUB-other")
    assert exc.value.code == "msisdn.assign.must_be_reserved"
    assert (await msisdn_row(db, number)).status == status


async def test_assign_of_an_unknown_number_is_not_found(db) -> None:
    with pytest.raises(NotFound) as exc:
        await run(db, inv.assign_msisdn, msisdn="81234567", subscription_id="SUB-1")
    assert exc.value.code == "msisdn.assign.not_found"


@pytest.mark.parametrize("status", ["available", "reserved", "ported_out"])
async def test_only_an_assigned_number_goes_into_quarantine(db, status: str) -> None:
    number = await number_in(db, status)
    with pytest.raises(PolicyViolation) as exc:
        await run(db, inv.quarantine_msisdn, msisdn=number)
    assert exc.value.code == "msisdn.quarantine.must_be_assigned"
    assert (await msisdn_row(db, number)).status == status


@pytest.mark.parametrize("status", ["available", "reserved", "assigned", "quarantine"])
async def test_port_out_is_final_from_every_live_status(db, status: str) -> None:
    number = await number_in(db, status)
    assert (await run(db, inv.port_out_msisdn, msisdn=number)).status == "ported_out"
    assert (await run(db, inv.port_out_msisdn, msisdn=number)).status == "ported_out"
    with pytest.raises(PolicyViolation):
        await run(db, inv.reserve_msisdn, reserved_for="SO-x", preferred=number)


async def test_quarantine_blocks_resale_for_90_days_then_frees_the_number(db) -> None:
    start = clock.freeze(datetime(2026, 1, 1, 9, tzinfo=UTC))
    number = await run(db, inv.reserve_msisdn, reserved_for="SO-1")
    assert number == "90000000"
    await run(db, inv.assign_msisdn, msisdn=number, subscription_id="SUB-1")
    row = await run(db, inv.quarantine_msisdn, msisdn=number)
    assert (row.status, row.quarantine_until, row.reserved_for) == (
        "quarantine",
        start + timedelta(days=90),
        None,
    )
    # A second termination call (a retried activity) does not extend the quarantine.
    clock.advance(timedelta(days=1))
    assert (await run(db, inv.quarantine_msisdn, msisdn=number)).quarantine_until == start + timedelta(
        days=90
    )

    # The lowest number is quarantined: the picker passes over it, and asking for it is refused.
    assert await run(db, inv.reserve_msisdn, reserved_for="SO-2") == "90000001"
    with pytest.raises(PolicyViolation):
        await run(db, inv.reserve_msisdn, reserved_for="SO-3", preferred=number)

    clock.advance(timedelta(days=88, hours=23))
    assert await run(db, inv.release_expired_quarantine) == 0
    assert (await msisdn_row(db, number)).status == "quarantine"

    clock.advance(timedelta(hours=1))
    assert await run(db, inv.release_expired_quarantine) == 1
    row = await msisdn_row(db, number)
    assert (row.status, row.quarantine_until, row.assigned_to_subscription_id) == ("available", None, None)
    assert await run(db, inv.reserve_msisdn, reserved_for="SO-3") == number
    async with db() as s:
        kinds = [e.event_type for e in await events_for(s, "msisdn", number)]
    assert "inventory.msisdn.quarantine_ended" in kinds


async def test_quarantine_days_cannot_be_negative(db) -> None:
    number = await number_in(db, "assigned")
    with pytest.raises(InvalidInput):
        await run(db, inv.quarantine_msisdn, msisdn=number, days=-1)
    assert (await msisdn_row(db, number)).status == "assigned"


async def test_a_ported_in_number_joins_the_pool_held_for_its_port(db) -> None:
    assert await run(db, inv.add_ported_in_msisdn, msisdn="98007777", reserved_for="PORT-1") == "98007777"
    row = await msisdn_row(db, "98007777")
    assert (row.status, row.reserved_for) == ("reserved", "PORT-1")
    assert await run(db, inv.add_ported_in_msisdn, msisdn="98007777", reserved_for="PORT-1") == "98007777"


# ---------------------------------------------------------------- concurrency


@pytest.fixture
async def wide_db(db_url):
    """A session factory with room for 20 transactions at once."""
    engine = make_engine(db_url, pool_size=22)
    yield make_session_factory(engine)
    await engine.dispose()


async def test_twenty_concurrent_orders_get_twenty_distinct_numbers_and_profiles(wide_db) -> None:
    async def one_order(i: int) -> tuple[str, str]:
        async with transaction(wide_db) as s:
            number = await inv.reserve_msisdn(s, CTX, reserved_for=f"SO-{i:06d}")
            profile = await inv.reserve_esim(s, CTX, reserved_for=f"SO-{i:06d}")
            await asyncio.sleep(0.05)  # hold the row locks so the reservations overlap
            return number, profile.iccid

    results = await asyncio.gather(*(one_order(i) for i in range(20)))
    numbers = {n for n, _ in results}
    iccids = {i for _, i in results}
    assert len(numbers) == 20 and len(iccids) == 20
    # SKIP LOCKED walks up from the lowest free row, so nothing is skipped for good.
    assert numbers == {str(90000000 + i) for i in range(20)}
    assert iccids == {f"8910101{i:012d}" for i in range(20)}


async def test_concurrent_retries_for_one_holder_share_one_number_and_profile(wide_db) -> None:
    async def attempt() -> tuple[str, str]:
        async with transaction(wide_db) as s:
            number = await inv.reserve_msisdn(s, CTX, reserved_for="SO-000042")
            profile = await inv.reserve_esim(s, CTX, reserved_for="SO-000042")
            await asyncio.sleep(0.05)
            return number, profile.iccid

    results = set(await asyncio.gather(*(attempt() for _ in range(5))))
    assert len(results) == 1
    async with wide_db() as s:
        counts = await inv.pool_counts(s)
    assert counts["msisdn"]["reserved"] == 1 and counts["esim"]["reserved"] == 1


# ---------------------------------------------------------------- eSIM services


async def profile_in(db, state: str, key: str = "SO-setup") -> str:
    """Drive the lowest free profile through the real services to `state`."""
    if state == "available":
        return FIRST_ICCID
    iccid = (await run(db, inv.reserve_esim, reserved_for=key)).iccid
    steps = {"prepared": 1, "downloaded": 2, "installed": 3}.get(state, 0)
    for fn in (inv.mark_esim_prepared, inv.mark_esim_downloaded, inv.mark_esim_installed)[:steps]:
        await run(db, fn, iccid=iccid)
    assert (await esim_row(db, iccid)).profile_state == state
    return iccid


async def test_reserve_esim_is_idempotent_per_holder(db) -> None:
    first = await run(db, inv.reserve_esim, reserved_for="SO-1")
    again = await run(db, inv.reserve_esim, reserved_for="SO-1")
    other = await run(db, inv.reserve_esim, reserved_for="SO-2")
    assert first.iccid == again.iccid == FIRST_ICCID
    assert other.iccid != first.iccid
    assert (first.profile_state, first.reserved_for) == ("reserved", "SO-1")


async def test_reserve_esim_after_prepare_still_returns_the_same_profile(db) -> None:
    iccid = await profile_in(db, "prepared", key="SO-7")
    assert (await run(db, inv.reserve_esim, reserved_for="SO-7")).iccid == iccid


async def test_an_empty_esim_pool_answers_no_available(db) -> None:
    async with transaction(db) as s:
        await s.exec(text("update inventory.esim_profile set profile_state = 'installed'"))
    with pytest.raises(PolicyViolation) as exc:
        await run(db, inv.reserve_esim, reserved_for="SO-1")
    assert exc.value.code == "esim.reserve.no_available"


async def test_the_full_provisioning_path_stamps_each_step(db) -> None:
    iccid = await profile_in(db, "installed")
    p = await esim_row(db, iccid)
    assert p.reserved_at and p.prepared_at and p.downloaded_at and p.installed_at
    async with db() as s:
        kinds = [e.event_type for e in await events_for(s, "esim", iccid)]
    assert kinds == [f"inventory.esim.{k}" for k in ("reserved", "prepared", "downloaded", "installed")]


ADVANCES = {
    "prepare": (inv.mark_esim_prepared, {"reserved": "prepared"}, ("prepared", "downloaded", "installed")),
    "download": (inv.mark_esim_downloaded, {"prepared": "downloaded"}, ("downloaded", "installed")),
    "install": (
        inv.mark_esim_installed,
        {"prepared": "installed", "downloaded": "installed"},
        ("installed",),
    ),
}


@pytest.mark.parametrize("state", ESIM_STATES)
@pytest.mark.parametrize("trigger", sorted(ADVANCES))
async def test_each_sm_dp_step_moves_forward_repeats_quietly_or_is_refused(
    db, trigger: str, state: str
) -> None:
    fn, moves, already = ADVANCES[trigger]
    iccid = await profile_in(db, state)
    if state in moves:
        assert (await run(db, fn, iccid=iccid)).profile_state == moves[state]
    elif state in already:
        assert (await run(db, fn, iccid=iccid)).profile_state == state
    else:
        with pytest.raises(PolicyViolation) as exc:
            await run(db, fn, iccid=iccid)
        assert exc.value.code == "esim.transition.invalid"
        assert (await esim_row(db, iccid)).profile_state == state


async def test_a_late_prepare_from_an_earlier_order_leaves_the_new_holder_alone(db) -> None:
    iccid = await profile_in(db, "reserved", key="SO-1")
    await run(db, inv.release_esim, iccid=iccid, reserved_for="SO-1")
    assert (await run(db, inv.reserve_esim, reserved_for="SO-2")).iccid == iccid

    await run(db, inv.mark_esim_prepared, iccid=iccid, for_service_order="SO-1")
    assert (await esim_row(db, iccid)).profile_state == "reserved"
    await run(db, inv.mark_esim_prepared, iccid=iccid, for_service_order="SO-2")
    assert (await esim_row(db, iccid)).profile_state == "prepared"


async def test_an_unknown_profile_is_not_found(db) -> None:
    with pytest.raises(NotFound) as exc:
        await run(db, inv.mark_esim_prepared, iccid="8910101999999999999")
    assert exc.value.code == "esim.not_found"


@pytest.mark.parametrize("state", HELD)
async def test_a_failed_order_gives_its_profile_back(db, state: str) -> None:
    iccid = await profile_in(db, state, key="SO-9")
    before = await esim_row(db, iccid)
    assert await run(db, inv.release_esim, iccid=iccid, reserved_for="SO-9") is True
    after = await esim_row(db, iccid)
    assert (after.profile_state, after.reserved_for, after.prepared_at) == ("available", None, None)
    # A code that may have been handed out (prepared or later) never works again.
    assert (after.matching_id == before.matching_id) is (state == "reserved")
    assert after.activation_code == f"LPA:1${after.smdp_server}${after.matching_id}"
    assert await run(db, inv.release_esim, iccid=iccid, reserved_for="SO-9") is False
    assert (await run(db, inv.reserve_esim, reserved_for="SO-10")).iccid == iccid


async def test_release_by_another_holder_or_of_a_free_profile_is_a_no_op(db) -> None:
    iccid = await profile_in(db, "prepared", key="SO-1")
    assert await run(db, inv.release_esim, iccid=iccid, reserved_for="SO-2") is False
    assert (await esim_row(db, iccid)).profile_state == "prepared"
    assert await run(db, inv.release_esim, iccid="8910101000000000500", reserved_for="SO-1") is False


async def test_a_profile_bound_to_a_line_is_not_released_by_an_order(db) -> None:
    iccid = await profile_in(db, "prepared", key="SO-1")
    number = await run(db, inv.reserve_msisdn, reserved_for="SO-1")
    await run(db, inv.assign_esim, iccid=iccid, msisdn=number, subscription_id="SUB-1")
    with pytest.raises(PolicyViolation) as exc:
        await run(db, inv.release_esim, iccid=iccid, reserved_for="SO-1")
    assert exc.value.code == "esim.release.assigned_to_line"


@pytest.mark.parametrize("state", HELD)
async def test_assign_binds_a_held_profile_to_the_line_without_moving_it(db, state: str) -> None:
    iccid = await profile_in(db, state, key="SO-1")
    number = await run(db, inv.reserve_msisdn, reserved_for="SO-1")
    p = await run(db, inv.assign_esim, iccid=iccid, msisdn=number, subscription_id="SUB-1")
    assert (p.profile_state, p.assigned_msisdn, p.assigned_to_subscription_id) == (state, number, "SUB-1")
    await run(db, inv.assign_msisdn, msisdn=number, subscription_id="SUB-1")
    again = await run(db, inv.assign_esim, iccid=iccid, msisdn=number, subscription_id="SUB-1")
    assert again.assigned_to_subscription_id == "SUB-1"


async def test_assign_refuses_a_free_profile_a_free_number_an_unknown_number_and_a_second_line(db) -> None:
    number = await run(db, inv.reserve_msisdn, reserved_for="SO-1")
    with pytest.raises(PolicyViolation) as exc:
        await run(db, inv.assign_esim, iccid=FIRST_ICCID, msisdn=number, subscription_id="SUB-1")
    assert exc.value.code == "esim.assign_msisdn.esim_must_be_reserved"

    iccid = await profile_in(db, "reserved", key="SO-1")
    with pytest.raises(PolicyViolation) as exc:
        await run(db, inv.assign_esim, iccid=iccid, msisdn="90000999", subscription_id="SUB-1")
    assert exc.value.code == "esim.assign_msisdn.msisdn_must_be_reserved"
    with pytest.raises(NotFound) as nf:
        await run(db, inv.assign_esim, iccid=iccid, msisdn="81234567", subscription_id="SUB-1")
    assert nf.value.code == "esim.assign_msisdn.msisdn_not_found"

    await run(db, inv.assign_esim, iccid=iccid, msisdn=number, subscription_id="SUB-1")
    with pytest.raises(PolicyViolation) as exc:
        await run(db, inv.assign_esim, iccid=iccid, msisdn=number, subscription_id="SUB-2")
    assert exc.value.code == "esim.assign_msisdn.already_assigned"
    assert (await esim_row(db, iccid)).assigned_to_subscription_id == "SUB-1"


@pytest.mark.parametrize("state", HELD)
async def test_a_recycled_profile_returns_to_the_pool_with_a_new_matching_id(db, state: str) -> None:
    iccid = await profile_in(db, state, key="SO-1")
    number = await run(db, inv.reserve_msisdn, reserved_for="SO-1")
    await run(db, inv.assign_esim, iccid=iccid, msisdn=number, subscription_id="SUB-1")
    before = await esim_row(db, iccid)
    after = await run(db, inv.recycle_esim, iccid=iccid)
    assert after.profile_state == "available"
    assert after.matching_id != before.matching_id
    assert re.fullmatch(r"[0-9A-F]{16}", after.matching_id)
    assert after.activation_code == f"LPA:1${after.smdp_server}${after.matching_id}"
    assert (after.reserved_for, after.assigned_msisdn, after.assigned_to_subscription_id) == (
        None,
        None,
        None,
    )
    assert after.imsi == before.imsi and after.ki_ref == before.ki_ref
    assert after.recycled_at is not None
    # Recycling again is a no-op, and the profile is on sale again.
    assert (await run(db, inv.recycle_esim, iccid=iccid)).matching_id == after.matching_id
    assert (await run(db, inv.reserve_esim, reserved_for="SO-2")).iccid == iccid


async def test_a_retried_recycle_leaves_a_profile_sold_again_alone(db) -> None:
    iccid = await profile_in(db, "installed", key="SO-1")
    number = await run(db, inv.reserve_msisdn, reserved_for="SO-1")
    await run(db, inv.assign_esim, iccid=iccid, msisdn=number, subscription_id="SUB-1")
    await run(db, inv.recycle_esim, iccid=iccid, subscription_id="SUB-1")
    await run(db, inv.reserve_esim, reserved_for="SO-2")
    late = await run(db, inv.recycle_esim, iccid=iccid, subscription_id="SUB-1")
    assert (late.profile_state, late.reserved_for) == ("reserved", "SO-2")


@pytest.mark.parametrize("state", ESIM_STATES)
async def test_rearm_issues_a_new_code_for_a_downloaded_profile_only(db, state: str) -> None:
    iccid = await profile_in(db, state)
    before = await esim_row(db, iccid)
    if state in ("downloaded", "installed"):
        after = await run(db, inv.rearm_esim, iccid=iccid)
        assert (after.profile_state, after.installed_at) == ("prepared", None)
        assert after.matching_id != before.matching_id
    elif state == "prepared":
        assert (await run(db, inv.rearm_esim, iccid=iccid)).matching_id == before.matching_id
    else:
        with pytest.raises(PolicyViolation):
            await run(db, inv.rearm_esim, iccid=iccid)


# ---------------------------------------------------------------- seed, counts, ranges


async def test_seed_is_idempotent_and_fills_both_pools_with_1000(db) -> None:
    events_before = await scalar(db, "select count(*) from audit.domain_event")
    async with transaction(db) as s:
        await seed(s)
    async with db() as s:
        counts = await inv.pool_counts(s)
    assert counts["msisdn"] == {
        "available": 1000,
        "held": 0,
        "reserved": 0,
        "assigned": 0,
        "quarantine": 0,
        "ported_out": 0,
    }
    assert counts["esim"]["available"] == 1000 and sum(counts["esim"].values()) == 1000
    assert await scalar(db, "select count(*) from audit.domain_event") == events_before


async def test_seed_on_empty_pools_builds_the_reference_numbering(db) -> None:
    async with transaction(db) as s:
        await s.exec(text("delete from inventory.msisdn"))
        await s.exec(text("delete from inventory.esim_profile"))
        await seed(s)
    assert (
        await scalar(db, "select min(msisdn) || '-' || max(msisdn) from inventory.msisdn")
        == "90000000-90000999"
    )
    assert await scalar(db, "select count(distinct matching_id) from inventory.esim_profile") == 1000
    assert await scalar(db, "select count(distinct ki_ref) from inventory.esim_profile") == 1000
    p = await esim_row(db, "8910101000000000042")
    assert p.imsi == "525010000000042"
    assert re.fullmatch(r"hsm://ref/[0-9a-f-]{36}", p.ki_ref)
    assert p.smdp_server == "smdp.bss.local"
    assert p.activation_code == f"LPA:1$smdp.bss.local${p.matching_id}"
    async with db() as s:
        seeded = await events_for(s, "msisdn", "90000000-90000999")
    assert seeded[-1].payload == {"added": 1000}


async def test_add_range_adds_new_numbers_once_with_one_audit_row_per_call(db) -> None:
    assert await run(db, inv.add_msisdn_range, prefix="9100", count=10) == 10
    assert await run(db, inv.add_msisdn_range, prefix="9100", count=12) == 2
    assert await run(db, inv.add_msisdn_range, prefix="9000", count=5) == 0  # the seeded range
    async with db() as s:
        total, rows = await inv.list_msisdns(s, prefix="9100")
        events = await events_for(s, "msisdn", "9100*")
    assert total == 12 and rows[0].msisdn == "91000000" and rows[-1].msisdn == "91000011"
    assert {r.status for r in rows} == {"available"}
    assert [e.payload["added"] for e in events] == [10, 2]


async def test_add_range_of_the_largest_size_with_a_seven_digit_prefix(db) -> None:
    assert await run(db, inv.add_msisdn_range, prefix="8123456", count=10_000) == 10_000
    assert (await msisdn_row(db, "81234569999")).status == "available"


@pytest.mark.parametrize(
    ("prefix", "count"),
    [("910", 10), ("91234567", 10), ("91a0", 10), ("", 10), ("9100", 0), ("9100", 10_001), ("9100", -5)],
)
async def test_add_range_refuses_insane_prefixes_and_counts(db, prefix: str, count: int) -> None:
    before = await scalar(db, "select count(*) from inventory.msisdn")
    events = await scalar(db, "select count(*) from audit.domain_event")
    with pytest.raises(PolicyViolation) as exc:
        await run(db, inv.add_msisdn_range, prefix=prefix, count=count)
    assert exc.value.code == "msisdn.add_range.sane_prefix"
    assert await scalar(db, "select count(*) from inventory.msisdn") == before
    assert await scalar(db, "select count(*) from audit.domain_event") == events


async def test_pool_counts_follow_every_move(db) -> None:
    await number_in(db, "quarantine", "90000001")
    await number_in(db, "ported_out", "90000002")
    await profile_in(db, "downloaded")
    async with db() as s:
        counts = await inv.pool_counts(s)
    assert counts["msisdn"] == {
        "available": 998,
        "held": 0,
        "reserved": 0,
        "assigned": 0,
        "quarantine": 1,
        "ported_out": 1,
    }
    assert counts["esim"] == {"available": 999, "reserved": 0, "prepared": 0, "downloaded": 1, "installed": 0}

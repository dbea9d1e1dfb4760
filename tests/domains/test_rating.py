"""Mediation and rating against the real Postgres: units and rules, exact fractional accounting,
the reference's behaviours (PLAN_S exhausts and blocks, PLAN_M roaming never blocks), exactly-once
counting by event id (resent, in bulk, concurrently), and in-order rating inside a batch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text

from core.context import RequestContext
from core.db import transaction
from core.errors import DomainError, InvalidInput, PolicyViolation
from domains.audit.services import events_for
from domains.subscription.services import subscription_history
from domains.usage.rating import Bucket, Line, StoredEvent, rate_in_order
from domains.usage.rules import FINE_UNIT, MediatedUsage, RawUsage, mediate, parse_quantity
from ops import usage as ops
from tests.usage_harness import active_line, balances, fine_balances, line_state, raw, snapshot

CTX = RequestContext(actor="switch-1", channel="api", service_identity="mediation")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


# ---- mediation (pure) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage_type", "quantity", "unit", "fine"),
    [
        ("data", 500, "MB", 512_000),
        ("data", "1", "GB", 1_048_576),
        ("data", 1.5, "gb", 1_572_864),
        ("data", 0.5, "KB", 1),  # part of a KB counts as a whole one
        ("voice", 3, "min", 180),
        ("voice", 90, "sec", 90),
        ("voice_minutes", 2, "min", 120),
        ("sms", 5, "count", 5),
        ("sms", 1, None, 1),
    ],
)
def test_mediation_converts_to_exact_fine_units(usage_type, quantity, unit, fine) -> None:
    m = mediate(raw("90000001", usage_type, quantity, unit), NOW)
    assert m.quantity == fine
    assert m.usage_type == ("voice" if usage_type == "voice_minutes" else usage_type)
    assert m.usage_date == NOW and m.roaming is False


@pytest.mark.parametrize(
    ("record", "code", "kind"),
    [
        (raw("90000001", quantity=0), "usage.record.positive_quantity", PolicyViolation),
        (raw("90000001", quantity=-5), "usage.record.positive_quantity", PolicyViolation),
        (raw("90000001", "video"), "usage.record.valid_event_type", PolicyViolation),
        (raw("90000001", "data", 5, "min"), "usage.record.unit_matches_type", PolicyViolation),
        (raw("90000001", "voice", 5, "MB"), "usage.record.unit_matches_type", PolicyViolation),
        (raw("90000001", "sms", 5, "KB"), "usage.record.unit_matches_type", PolicyViolation),
        (raw("90000001", "data", 5, None), "usage.record.unit_matches_type", PolicyViolation),
        (raw("90000001", quantity="lots"), "usage.record.quantity_not_a_number", InvalidInput),
        (raw("90000001", quantity="NaN"), "usage.record.quantity_not_a_number", InvalidInput),
        (raw("90000001", quantity=True), "usage.record.quantity_not_a_number", InvalidInput),
        (raw("90000001", quantity=10**9, unit="GB"), "usage.record.quantity_out_of_range", InvalidInput),
        (raw("90000001", roaming="maybe"), "usage.record.roaming_flag", InvalidInput),
        (raw(None), "usage.record.msisdn_required", InvalidInput),  # type: ignore[arg-type]
        (raw("90000001", id="UE-000001"), "usage.record.reserved_id", InvalidInput),
    ],
)
def test_mediation_refuses_with_the_rule(record: RawUsage, code: str, kind: type[DomainError]) -> None:
    with pytest.raises(kind) as exc:
        mediate(record, NOW)
    assert exc.value.code == code


@pytest.mark.parametrize(
    ("typed", "amount", "unit"),
    [
        ("500MB", "500", "MB"),
        ("1GB", "1", "GB"),
        ("1.5 GB", "1.5", "GB"),
        ("3min", "3", "min"),
        ("90sec", "90", "sec"),
        ("5", "5", None),
    ],
)
def test_parse_quantity_reads_what_people_type(typed: str, amount: str, unit: str | None) -> None:
    assert parse_quantity(typed) == (Decimal(amount), unit)


def test_parse_quantity_refuses_nonsense() -> None:
    for typed in ("MB", "5 parsecs", ""):
        with pytest.raises(InvalidInput):
            parse_quantity(typed)


# ---- rating (pure) -----------------------------------------------------------------------------


def _line(data_total: int = 10, roaming_total: int = 0) -> Line:
    line = Line("SUB-000001", "90000001", "active")
    line.buckets["data"] = Bucket(1, "data", data_total, 0, "mb", NOW)
    line.buckets["data_roaming"] = Bucket(2, "data_roaming", roaming_total, 0, "mb", NOW)
    line.buckets["voice"] = Bucket(3, "voice", -1, 0, "minutes", NOW)
    return line


def _events(*specs: tuple[str | None, str, int, bool]) -> list[MediatedUsage]:
    return [
        MediatedUsage(i, event_id, "90000001", kind, q, Decimal(q), FINE_UNIT[kind], roaming, NOW)
        for i, (event_id, kind, q, roaming) in enumerate(specs)
    ]


def test_ten_thousand_one_kb_events_add_up_exactly() -> None:
    bucket = Bucket(1, "data", 100, 0, "mb", NOW)
    for _ in range(10_000):
        assert bucket.consume(1) == 1
    assert (bucket.consumed, bucket.fine) == (9, 784)  # 10,000 KB = 9 MB + 784 KB
    assert bucket.remaining_fine() == 100 * 1024 - 10_000


def test_a_bucket_never_goes_past_its_total_and_unlimited_is_never_decremented() -> None:
    bucket = Bucket(1, "data", 1, 0, "mb", NOW)
    assert bucket.consume(1000) == 1000
    assert bucket.consume(100) == 24  # only what fitted counts in the bundle
    assert (bucket.consumed, bucket.fine, bucket.exhausted) == (1, 0, True)
    assert bucket.consume(5) == 0
    unlimited = Bucket(2, "voice", -1, 7, "minutes", NOW)
    assert unlimited.consume(600) == 600
    assert (unlimited.consumed, unlimited.fine, unlimited.touched) == (7, 0, False)


def test_events_after_exhaustion_in_the_same_batch_find_the_line_blocked() -> None:
    lines = {"90000001": _line(data_total=1)}
    run = rate_in_order(
        _events(
            ("a", "voice", 60, False),
            ("b", "data", 1024, False),
            ("c", "data", 1, False),
            ("d", "voice", 60, False),
        ),
        lines,
        {},
    )
    assert [r.event.id for r in run.rated] == ["a", "b"]
    assert [(r.id, r.error.code) for r in run.rejections] == [
        ("c", "usage.record.subscription_must_be_active"),
        ("d", "usage.record.subscription_must_be_active"),
    ]
    assert run.exhausted == [("SUB-000001", "data")] and lines["90000001"].state == "blocked"


def test_a_repeated_id_counts_once_in_a_batch_unless_the_first_was_refused() -> None:
    lines = {"90000001": _line(data_total=10, roaming_total=0)}
    events = _events(
        ("x", "data", 5, True), ("x", "data", 5, False), ("x", "data", 5, False), ("y", "data", 5, False)
    )
    run = rate_in_order(events, lines, {"y": StoredEvent.of(events[3])})
    assert [r.error.code for r in run.rejections] == ["subscription.usage_rated.roaming_balance_required"]
    assert [r.event.index for r in run.rated] == [1]
    assert [d.index for d in run.duplicates] == [2, 3]


def test_a_repeated_id_with_a_different_record_is_a_conflict_not_a_duplicate() -> None:
    lines = {"90000001": _line(data_total=10)}
    events = _events(("x", "data", 5, False), ("x", "data", 6, False), ("y", "data", 5, True))
    stored_y = StoredEvent.of(_events(("y", "data", 5, False))[0])  # stored without roaming
    run = rate_in_order(events, lines, {"y": stored_y})
    assert [r.event.index for r in run.rated] == [0] and run.duplicates == []
    assert [(r.index, r.id, r.error.code, r.error.status) for r in run.rejections] == [
        (1, "x", "usage.event_id.conflict", 409),
        (2, "y", "usage.event_id.conflict", 409),
    ]


# ---- against the database ----------------------------------------------------------------------


async def test_plan_s_burns_4gb_then_1gb_and_is_blocked(runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_S")
    first = await ops.record_usage(runtime, CTX, raw(msisdn, quantity=4, unit="GB", id="burn-4gb"))
    assert first.created and first.event.allowance_type == "data" and first.event.quantity == 4 * 1024 * 1024
    assert (await balances(runtime, sub))["data"] == (5120, 4096)
    assert await line_state(runtime, sub) == ("active", None)

    await ops.record_usage(runtime, CTX, raw(msisdn, quantity=1, unit="GB", id="burn-1gb"))
    assert (await balances(runtime, sub))["data"] == (5120, 5120)
    assert await line_state(runtime, sub) == ("blocked", "primary_allowance_exhausted")
    async with runtime.db() as s:
        history = await subscription_history(s, sub)
        audit = [e.event_type for e in await events_for(s, "Subscription", sub)]
    assert (history[-1].from_state, history[-1].to_state, history[-1].reason, history[-1].actor) == (
        "active",
        "blocked",
        "primary_allowance_exhausted",
        "switch-1",
    )
    assert "subscription.blocked" in audit

    before = await snapshot(runtime)
    for record in (raw(msisdn, quantity=1), raw(msisdn, "voice", 1, "min"), raw(msisdn, "sms", 1, "count")):
        with pytest.raises(PolicyViolation) as exc:
            await ops.record_usage(runtime, CTX, record)
        assert exc.value.code == "usage.record.subscription_must_be_active"
    assert await snapshot(runtime) == before


async def test_plan_m_roaming_uses_its_own_bucket_and_never_blocks(runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_M")
    await ops.record_usage(runtime, CTX, raw(msisdn, quantity=100, unit="MB", roaming=True))
    b = await balances(runtime, sub)
    assert b["data_roaming"] == (500, 100) and b["data"] == (30720, 0)

    await ops.record_usage(runtime, CTX, raw(msisdn, quantity=400, unit="MB", roaming="true"))
    assert (await balances(runtime, sub))["data_roaming"] == (500, 500)
    assert await line_state(runtime, sub) == ("active", None)

    before = await snapshot(runtime)
    with pytest.raises(PolicyViolation) as exc:
        await ops.record_usage(runtime, CTX, raw(msisdn, quantity=50, unit="MB", roaming=True))
    assert exc.value.code == "subscription.usage_rated.roaming_balance_required"
    assert await snapshot(runtime) == before
    # home data still flows, and unlimited voice is never decremented
    await ops.record_usage(runtime, CTX, raw(msisdn, quantity=10, unit="MB"))
    await ops.record_usage(runtime, CTX, raw(msisdn, "voice", 30, "min", roaming=True))
    b = await balances(runtime, sub)
    assert b["data"] == (30720, 10) and b["voice"] == (-1, 0)


async def test_plan_s_has_no_roaming_balance(runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_S")
    with pytest.raises(PolicyViolation) as exc:
        await ops.record_usage(runtime, CTX, raw(msisdn, quantity=1, roaming=True))
    assert exc.value.code == "subscription.usage_rated.roaming_balance_required"
    async with runtime.engine.begin() as conn:
        await conn.execute(
            text(
                "DELETE FROM subscription.bundle_balance WHERE subscription_id = :s AND allowance_type = 'data_roaming'"
            ),
            {"s": sub},
        )
    with pytest.raises(PolicyViolation) as exc:
        await ops.record_usage(runtime, CTX, raw(msisdn, quantity=1, roaming=True))
    assert exc.value.code == "rating.no_roaming_allowance"


async def test_unknown_number_and_terminated_line_are_refused_and_store_nothing(runtime) -> None:
    sub, msisdn = await active_line(runtime)
    async with runtime.engine.begin() as conn:
        await conn.execute(
            text("UPDATE subscription.subscription SET state = 'terminated' WHERE id = :s"), {"s": sub}
        )
    before = await snapshot(runtime)
    for number in ("99999999", msisdn, "not-a-number"):
        with pytest.raises(PolicyViolation) as exc:
            await ops.record_usage(runtime, CTX, raw(number))
        assert exc.value.code == "usage.record.subscription_must_exist"
    assert await snapshot(runtime) == before


async def test_fractions_of_a_megabyte_add_up_exactly_in_the_database(runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_S")
    records = [raw(msisdn, quantity=1, unit="KB", id=f"kb-{i}", index=i) for i in range(10_000)]
    result = await ops.record_bulk(runtime, CTX, records)
    assert len(result.rated) == 10_000
    assert (await fine_balances(runtime, sub))["data"] == (5120, 9, 784)
    # 240 KB more closes the 10th MB exactly
    await ops.record_usage(runtime, CTX, raw(msisdn, quantity=240, unit="KB"))
    assert (await fine_balances(runtime, sub))["data"] == (5120, 10, 0)


async def test_a_resent_event_is_counted_once_and_answers_the_original(runtime) -> None:
    sub, msisdn = await active_line(runtime)
    first = await ops.record_usage(runtime, CTX, raw(msisdn, quantity=7, unit="MB", id="cdr-42"))
    again = await ops.record_usage(runtime, CTX, raw(msisdn, quantity=7 * 1024, unit="KB", id="cdr-42"))
    assert first.created and not again.created
    assert again.event.id == "cdr-42" and again.event.quantity == 7 * 1024
    with pytest.raises(DomainError) as refused:
        await ops.record_usage(runtime, CTX, raw(msisdn, quantity=9, unit="GB", id="cdr-42"))
    assert (refused.value.code, refused.value.status) == ("usage.event_id.conflict", 409)
    assert (await balances(runtime, sub))["data"] == (5120, 7)
    async with runtime.db() as s:
        audit = await events_for(s, "Usage", "cdr-42")
    assert [(a.event_type, a.actor, a.channel, a.service_identity) for a in audit] == [
        ("usage.rated", "switch-1", "api", "mediation")
    ]
    assert audit[0].payload == {
        "subscriptionId": sub,
        "allowanceType": "data",
        "quantity": 7168,
        "inBundle": 7168,
    }


async def test_a_bulk_writes_one_audit_row(runtime) -> None:
    _, msisdn = await active_line(runtime)
    await ops.record_bulk(
        runtime, CTX, [raw(msisdn, id=f"au-{i}", index=i) for i in range(5)] + [raw("1", index=5)]
    )
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT aggregate_type, actor, payload FROM audit.domain_event WHERE event_type = 'usage.bulk_rated'"
            )
        )
        [(kind, actor, payload)] = rows.all()
    assert (kind, actor) == ("UsageBatch", "switch-1")
    assert payload["rated"] == 5 and payload["rejected"] == 1 and payload["firstEventId"] == "au-0"


async def test_the_same_ten_thousand_events_twice_and_from_four_clients_count_once(runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_M")
    events = [
        raw(
            msisdn,
            "data" if i % 3 else "sms",
            3 if i % 3 else 1,
            "KB" if i % 3 else "count",
            id=f"ev-{i}",
            index=i,
        )
        for i in range(10_000)
    ]
    once = await ops.record_bulk(runtime, CTX, events)
    assert (len(once.rated), len(once.duplicates), len(once.rejections)) == (10_000, 0, 0)
    after_once = await fine_balances(runtime, sub)
    data_kb = sum(3 for i in range(10_000) if i % 3)
    assert after_once["data"] == (30720, data_kb // 1024, data_kb % 1024)

    twice = await ops.record_bulk(runtime, CTX, events)
    assert (len(twice.rated), len(twice.duplicates)) == (0, 10_000)
    assert await fine_balances(runtime, sub) == after_once

    # a fresh line, and four clients racing with overlapping slices of the same events
    sub2, msisdn2 = await active_line(runtime, "PLAN_M")
    events2 = [raw(msisdn2, quantity=3, unit="KB", id=f"race-{i}", index=i) for i in range(10_000)]
    slices = [events2, events2[::-1], events2[2_000:9_000], events2[:5_000]]
    results = await asyncio.gather(*(ops.record_bulk(runtime, CTX, s) for s in slices))
    assert sum(len(r.rated) for r in results) == 10_000
    assert (await fine_balances(runtime, sub2))["data"] == (30720, 30_000 // 1024, 30_000 % 1024)
    async with runtime.engine.connect() as conn:
        stored = await conn.execute(
            text("SELECT count(*) FROM usage.usage_event WHERE subscription_id = :s"), {"s": sub2}
        )
        assert stored.scalar_one() == 10_000


async def test_single_events_racing_on_one_line_each_count_once_to_the_kb(runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_M")
    # 700 KB each: every event moves the fraction below one MB, the part a lost update would lose
    records = [raw(msisdn, quantity=700, unit="KB", id=f"one-{i % 40}") for i in range(120)]
    outcomes = await asyncio.gather(*(ops.record_usage(runtime, CTX, r) for r in records))
    assert sum(o.created for o in outcomes) == 40
    assert (await fine_balances(runtime, sub))["data"] == (30720, 28_000 // 1024, 28_000 % 1024)


async def test_a_rater_that_waited_for_the_line_reads_the_fraction_written_meanwhile(runtime) -> None:
    """The lock statement also reads fractions and stored ids (one round trip); one that waited
    for another rater of the line must not use what it read from before that rater committed."""
    from domains.usage import services

    sub, msisdn = await active_line(runtime, "PLAN_M")
    async with transaction(runtime.db) as first:
        await services.rate_usage(first, CTX, [raw(msisdn, quantity=700, unit="KB", id="held-1")])
        second = asyncio.create_task(
            ops.record_usage(runtime, CTX, raw(msisdn, quantity=700, unit="KB", id="held-2"))
        )
        async with runtime.engine.connect() as conn:  # until the second rater waits for our lock
            # Generous on a loaded machine (the whole suite on two cores); a rater that ended
            # instead of waiting is reported by `await second` with its own error.
            deadline = asyncio.get_running_loop().time() + 30
            while not second.done():
                waiting = await conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                )
                if waiting.scalar_one():
                    break
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError("the second rater never waited for the line")
                await asyncio.sleep(0.01)
            else:
                await second  # it ended without waiting: its error, if any, says why
                raise AssertionError("the second rater did not wait for the line")
    assert (await second).created
    assert (await fine_balances(runtime, sub))["data"] == (30720, 1400 // 1024, 1400 % 1024)


async def test_singles_sent_together_are_rated_together_each_as_if_alone(runtime) -> None:
    """Group commit (ops/usage.py): singles arriving together share a transaction (one rating
    time), each under its own actor; a line's second event waits for the next transaction, so
    the line crosses 80 % and then 100 % as it would one event at a time."""
    (sub_a, a), (_, b) = [await active_line(runtime, "PLAN_S") for _ in range(2)]
    switch_a = RequestContext(actor="switch-a", channel="api", service_identity="mediation")
    switch_b = RequestContext(actor="switch-b", channel="api", service_identity="mediation")
    outcomes = await asyncio.gather(
        ops.record_usage(runtime, switch_a, raw(a, quantity=4.5, unit="GB", id="together-a1")),
        ops.record_usage(runtime, switch_b, raw(b, quantity=1, unit="GB", id="together-b1")),
        ops.record_usage(runtime, switch_a, raw(a, quantity=0.5, unit="GB", id="together-a2")),
    )
    a1, b1, a2 = (o.event for o in outcomes)
    assert all(o.created for o in outcomes)
    assert a1.rated_at == b1.rated_at != a2.rated_at
    async with runtime.db() as s:
        rated = await s.execute(
            text(
                "SELECT aggregate_id, actor FROM audit.domain_event "
                "WHERE event_type = 'usage.rated' AND aggregate_id LIKE 'together-%'"
            )
        )
        assert dict(rated.all()) == {
            "together-a1": "switch-a",
            "together-b1": "switch-b",
            "together-a2": "switch-a",
        }
        crossings = [
            (e.payload["percent"], e.actor)
            for e in await events_for(s, "Subscription", sub_a)
            if e.event_type == "balance.threshold_reached"
        ]
    assert crossings == [(80, "switch-a"), (100, "switch-a")]
    assert await line_state(runtime, sub_a) == ("blocked", "primary_allowance_exhausted")


async def test_bulks_racing_on_the_same_lines_lose_no_fraction(runtime) -> None:
    lines = [await active_line(runtime, "PLAN_M") for _ in range(3)]
    batches = [
        [raw(lines[i % 3][1], quantity=333, unit="KB", id=f"r{b}-{i}", index=i) for i in range(300)]
        for b in range(6)
    ]
    await asyncio.gather(*(ops.record_bulk(runtime, CTX, batch) for batch in batches))
    for sub, _ in lines:
        assert (await fine_balances(runtime, sub))["data"] == (
            30720,
            6 * 100 * 333 // 1024,
            6 * 100 * 333 % 1024,
        )


async def test_a_batch_blocks_mid_way_and_refuses_what_follows(runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_S")
    other, other_msisdn = await active_line(runtime, "PLAN_S")
    batch = [
        raw(msisdn, quantity=5000, unit="MB", id="a", index=0),
        raw(other_msisdn, quantity=1, unit="MB", id="b", index=1),
        raw(msisdn, quantity=200, unit="MB", id="c", index=2),  # exhausts (120 MB fit)
        raw(msisdn, "sms", 1, "count", id="d", index=3),
        raw(other_msisdn, quantity=1, unit="MB", id="e", index=4),
        raw(msisdn, "video", 1, "MB", id="f", index=5),
    ]
    result = await ops.record_bulk(runtime, CTX, batch)
    assert [e.id for e in result.rated] == ["a", "b", "c", "e"]
    assert result.rated[2].rated.in_bundle == 120 * 1024
    assert [(r.index, r.error.code) for r in result.rejections] == [
        (3, "usage.record.subscription_must_be_active"),
        (5, "usage.record.valid_event_type"),
    ]
    assert result.blocked == [(sub, "data")]
    assert await line_state(runtime, sub) == ("blocked", "primary_allowance_exhausted")
    assert await line_state(runtime, other) == ("active", None)
    assert (await balances(runtime, other))["data"] == (5120, 2)
    async with runtime.engine.connect() as conn:
        ids = await conn.execute(text("SELECT id FROM usage.usage_event ORDER BY seq"))
        assert [r[0] for r in ids] == ["a", "b", "c", "e"]


async def test_renewed_balances_do_not_inherit_an_old_fraction(runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_S")
    await ops.record_usage(runtime, CTX, raw(msisdn, quantity=1000, unit="KB"))
    async with runtime.engine.begin() as conn:  # what a renewal does to the balance
        await conn.execute(
            text(
                "UPDATE subscription.bundle_balance SET consumed = 0, period_start = period_start + interval '30 days' "
                "WHERE subscription_id = :s"
            ),
            {"s": sub},
        )
    await ops.record_usage(runtime, CTX, raw(msisdn, quantity=100, unit="KB"))
    assert (await fine_balances(runtime, sub))["data"] == (5120, 0, 100)


async def test_rating_signals_the_blocked_lines_workflow_after_commit(runtime, temporal_dev) -> None:
    from temporalio.worker import Worker

    from tests.usage_signal_probe import ExhaustedProbe
    from workflows.subscription import Exhausted, subscription_workflow_id

    sub, msisdn = await active_line(runtime, "PLAN_S")
    runtime.use_temporal(temporal_dev.client)
    async with Worker(temporal_dev.client, task_queue="usage-probe", workflows=[ExhaustedProbe]):
        handle = await temporal_dev.client.start_workflow(
            ExhaustedProbe.run, id=subscription_workflow_id(sub), task_queue="usage-probe"
        )
        await ops.record_usage(runtime, CTX, raw(msisdn, quantity=5, unit="GB"))
        received = await asyncio.wait_for(handle.result(), 20)
    assert [Exhausted(**r) if isinstance(r, dict) else r for r in received] == [Exhausted(sub, "data")]


async def test_a_failed_signal_does_not_undo_the_block(runtime, temporal_dev) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_S")
    runtime.use_temporal(temporal_dev.client)  # no workflow subscription-<sub> runs
    recorded = await ops.record_usage(runtime, CTX, raw(msisdn, quantity=6, unit="GB"))
    assert recorded.created
    assert await line_state(runtime, sub) == ("blocked", "primary_allowance_exhausted")


@pytest.mark.parametrize("change", ["balance", "line", "id"])
async def test_an_unlocked_rating_writes_nothing_when_the_line_changed_after_its_read(
    runtime, change
) -> None:
    """Single events are read without locks and written only if nothing read has changed
    (store.write_if_unchanged): a balance or the line updated meanwhile, or the id stored by
    another rater, fails the write as a whole, and the event is then rated under locks."""
    from domains.usage import services, store

    sub, msisdn = await active_line(runtime, "PLAN_M")
    event = raw(msisdn, quantity=700, unit="KB", id=f"unlocked-{change}")
    async with runtime.engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        real_write = store.write_if_unchanged

        async def meanwhile(*args, **kwargs):  # another writer commits between the read and the write
            async with runtime.engine.begin() as other:
                if change == "balance":
                    sql = "UPDATE subscription.bundle_balance SET consumed = consumed + 1 WHERE subscription_id = :s AND allowance_type = 'data'"
                elif change == "line":
                    sql = "UPDATE subscription.subscription SET updated_at = now() WHERE id = :s"
                else:
                    sql = (
                        "INSERT INTO usage.usage_event (id, msisdn, subscription_id, usage_type, quantity, "
                        "original_quantity, original_unit, roaming, usage_date, allowance_type, in_bundle, status, "
                        f"rated_at) VALUES ('unlocked-id', '{msisdn}', :s, 'data', 700, 700, 'KB', false, now(), "
                        "'data', 700, 'rated', now())"
                    )
                await other.execute(text(sql), {"s": sub})
            return await real_write(*args, **kwargs)

        store.write_if_unchanged = meanwhile
        try:
            assert await services.rate_unlocked(driver, CTX, [event]) is None
        finally:
            store.write_if_unchanged = real_write
    async with runtime.engine.connect() as conn:
        mine = await conn.execute(
            text("SELECT count(*) FROM usage.usage_event WHERE id = :i"), {"i": event.id}
        )
        assert mine.scalar_one() == (1 if change == "id" else 0)  # the id's own row, stored by the other
    moved = 1024 if change == "balance" else 0
    assert (await fine_balances(runtime, sub))["data"] == (30720, moved // 1024, 0)
    recorded = await ops.record_usage(runtime, CTX, event)  # under locks: against what is there now
    assert recorded.created is (change != "id")
    expected = moved + (0 if change == "id" else 700)
    assert (await fine_balances(runtime, sub))["data"][1:] == (expected // 1024, expected % 1024)

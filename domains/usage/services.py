"""Usage services: mediate, rate and record usage in the caller's transaction, and read it back.

One code path serves a single event and a bulk of fifty thousand: the lines are locked once
(subscription rows, then their balances, in id order, so concurrent raters never deadlock), the
events are rated in request order in memory, then written with one INSERT … ON CONFLICT DO NOTHING
of all rated events and one UPDATE of all touched balances. The event id is the idempotency key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import DomainError, NotFound
from core.ids import random_id
from domains.audit.services import record
from domains.subscription.models import BundleBalance, Subscription, SubscriptionStateHistory
from domains.subscription.rules import (
    ACTIVE,
    ALLOWANCE_ORDER,
    UNLIMITED,
    allowance_rank,
    subscription_lifecycle,
)
from domains.usage.models import BalanceFraction, UsageEvent
from domains.usage.rating import (
    BALANCE_UNIT_FACTORS,
    EXHAUSTED_REASON,
    Bucket,
    Line,
    Rated,
    Rejection,
    rate_in_order,
)
from domains.usage.rules import MediatedUsage, RawUsage, mediate

AGGREGATE = "Usage"
MSISDN_MAX = 15


class ConcurrentDuplicate(Exception):
    """Another transaction stored one of our event ids while we rated; rating again sees it."""


@dataclass(frozen=True, slots=True)
class RatedEvent:
    id: str
    rated: Rated
    rated_at: datetime

    def as_row(self) -> UsageEvent:
        e = self.rated.event
        return UsageEvent(
            id=self.id,
            msisdn=e.msisdn,
            subscription_id=self.rated.subscription_id,
            usage_type=e.usage_type,
            quantity=e.quantity,
            original_quantity=e.original_quantity,
            original_unit=e.original_unit,
            roaming=e.roaming,
            usage_date=e.usage_date,
            allowance_type=self.rated.allowance_type,
            in_bundle=self.rated.in_bundle,
            status="rated",
            rated_at=self.rated_at,
        )


@dataclass(slots=True)
class RatingResult:
    rated: list[RatedEvent] = field(default_factory=list)
    duplicates: list[MediatedUsage] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    # (subscription id, allowance type) of the lines this request blocked
    blocked: list[tuple[str, str]] = field(default_factory=list)


async def rate_usage(
    session: AsyncSession, ctx: RequestContext, records: Sequence[RawUsage], *, bulk: bool = False
) -> RatingResult:
    """Mediate and rate `records` in order. Rejected records are reported, never stored; the
    caller's transaction commits the events, the balances and any block together."""
    now = clock.now()
    result = RatingResult()
    mediated: list[MediatedUsage] = []
    for raw in records:
        try:
            mediated.append(mediate(raw, now))
        except DomainError as exc:
            result.rejections.append(Rejection(raw.index, raw.id, exc))
    if not mediated:
        return result

    lines = await _lock_lines(session, {m.msisdn for m in mediated})
    stored = await _stored_ids(session, [m.id for m in mediated if m.id is not None])
    run = rate_in_order(mediated, lines, stored)
    result.duplicates = run.duplicates
    result.rejections = sorted(result.rejections + run.rejections, key=lambda r: r.index)
    if not run.rated:
        return result

    ids = await _event_ids(session, run.rated)
    result.rated = [RatedEvent(i, r, now) for i, r in zip(ids, run.rated, strict=True)]
    if await _insert_events(session, result.rated) != len(result.rated):
        raise ConcurrentDuplicate()
    await _save_buckets(session, [b for line in lines.values() for b in line.buckets.values() if b.touched])
    if run.exhausted:
        await _block(session, ctx, run.exhausted, now)
        result.blocked = run.exhausted
    _audit(session, ctx, result, bulk=bulk)
    return result


# Subscriptions first, then their balances, each in id order: every rater takes the same locks in
# the same order. The fraction rows are only ever written under the balance's lock.
_LOCK_LINES = text(
    """
    SELECT s.id, s.msisdn, s.state, b.id, b.allowance_type, b.total, b.consumed, b.unit,
           b.period_start, f.period_start, f.fine
    FROM subscription.subscription AS s
    JOIN subscription.bundle_balance AS b ON b.subscription_id = s.id
    LEFT JOIN usage.balance_fraction AS f ON f.balance_id = b.id
    WHERE s.msisdn = ANY(CAST(:msisdns AS varchar[])) AND s.state <> 'terminated'
    ORDER BY s.id, b.id
    FOR UPDATE OF s, b
    """
)
_LOCK_BARE_LINES = text(
    """
    SELECT id, msisdn, state FROM subscription.subscription
    WHERE msisdn = ANY(CAST(:msisdns AS varchar[])) AND state <> 'terminated'
    ORDER BY id FOR UPDATE
    """
)


async def _lock_lines(session: AsyncSession, msisdns: set[str]) -> dict[str, Line]:
    lines: dict[str, Line] = {}
    # Only what could be a number is looked up; anything else has no line by definition.
    msisdns = {m for m in msisdns if m.isascii() and m.isdigit() and len(m) <= MSISDN_MAX}
    if not msisdns:
        return lines
    rows = await session.execute(_LOCK_LINES, {"msisdns": sorted(msisdns)})
    for sub_id, msisdn, state, bal_id, kind, total, consumed, unit, period, f_period, fine in rows:
        line = lines.get(msisdn)
        if line is None:
            line = lines[msisdn] = Line(sub_id, msisdn, state)
        # A fraction left from an earlier period does not carry into a renewed balance.
        line.buckets[kind] = Bucket(
            bal_id, kind, total, consumed, unit, period, fine if f_period == period else 0
        )
    missing = msisdns - lines.keys()
    if missing:  # a line without any balance row: it exists, but has nothing to rate against
        for sub_id, msisdn, state in await session.execute(_LOCK_BARE_LINES, {"msisdns": sorted(missing)}):
            lines[msisdn] = Line(sub_id, msisdn, state)
    return lines


async def _stored_ids(session: AsyncSession, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = await session.execute(
        text("SELECT id FROM usage.usage_event WHERE id = ANY(CAST(:ids AS varchar[]))"), {"ids": ids}
    )
    return {r[0] for r in rows}


async def _event_ids(session: AsyncSession, rated: list[Rated]) -> list[str]:
    """The client's ids, and UE-… from the sequence (one round trip) for events without one."""
    wanted = sum(1 for r in rated if r.event.id is None)
    numbers: list[int] = []
    if wanted:
        rows = await session.execute(
            text("SELECT nextval('usage.usage_event_seq') FROM generate_series(1, :n)"), {"n": wanted}
        )
        numbers = [r[0] for r in rows]
    fresh = iter(numbers)
    return [r.event.id if r.event.id is not None else f"UE-{next(fresh):06d}" for r in rated]


_INSERT_EVENTS = text(
    """
    INSERT INTO usage.usage_event (id, msisdn, subscription_id, usage_type, quantity, original_quantity,
        original_unit, roaming, usage_date, allowance_type, in_bundle, status, rated_at)
    SELECT u.id, u.msisdn, u.sub, u.kind, u.q, u.oq, u.ou, u.roaming, u.at, u.allowance, u.in_bundle,
        'rated', CAST(:now AS timestamptz)
    FROM unnest(CAST(:ids AS varchar[]), CAST(:msisdns AS varchar[]), CAST(:subs AS varchar[]),
        CAST(:kinds AS varchar[]), CAST(:qs AS bigint[]), CAST(:oqs AS numeric[]), CAST(:ous AS varchar[]),
        CAST(:roaming AS boolean[]), CAST(:ats AS timestamptz[]), CAST(:allowances AS varchar[]),
        CAST(:in_bundle AS bigint[]))
        AS u(id, msisdn, sub, kind, q, oq, ou, roaming, at, allowance, in_bundle)
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
    """
)


async def _insert_events(session: AsyncSession, events: list[RatedEvent]) -> int:
    """All rated events in one statement, in rating order; returns how many were new."""
    params: dict[str, Any] = {
        "now": events[0].rated_at,
        "ids": [e.id for e in events],
        "msisdns": [e.rated.event.msisdn for e in events],
        "subs": [e.rated.subscription_id for e in events],
        "kinds": [e.rated.event.usage_type for e in events],
        "qs": [e.rated.event.quantity for e in events],
        "oqs": [e.rated.event.original_quantity for e in events],
        "ous": [e.rated.event.original_unit for e in events],
        "roaming": [e.rated.event.roaming for e in events],
        "ats": [e.rated.event.usage_date for e in events],
        "allowances": [e.rated.allowance_type for e in events],
        "in_bundle": [e.rated.in_bundle for e in events],
    }
    return len((await session.execute(_INSERT_EVENTS, params)).all())


# Absolute values are safe to write: the rows are locked since _lock_lines.
_SAVE_BUCKETS = text(
    """
    WITH balances AS (
        UPDATE subscription.bundle_balance AS b SET consumed = v.consumed
        FROM unnest(CAST(:ids AS bigint[]), CAST(:consumed AS bigint[])) AS v(id, consumed)
        WHERE b.id = v.id
    )
    INSERT INTO usage.balance_fraction (balance_id, period_start, fine)
    SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:periods AS timestamptz[]), CAST(:fines AS bigint[]))
    ON CONFLICT (balance_id) DO UPDATE SET period_start = excluded.period_start, fine = excluded.fine
    """
)


async def _save_buckets(session: AsyncSession, buckets: list[Bucket]) -> None:
    if not buckets:
        return
    await session.execute(
        _SAVE_BUCKETS,
        {
            "ids": [b.balance_id for b in buckets],
            "consumed": [b.consumed for b in buckets],
            "periods": [b.period_start for b in buckets],
            "fines": [b.fine for b in buckets],
        },
    )


async def _block(
    session: AsyncSession, ctx: RequestContext, exhausted: list[tuple[str, str]], now: datetime
) -> None:
    """Active → blocked (primary_allowance_exhausted), with its history and audit rows."""
    blocked = subscription_lifecycle.next("exhaust", ACTIVE)
    await session.execute(
        text(
            "UPDATE subscription.subscription SET state = :state, state_reason = :reason, updated_at = :now "
            "WHERE id = ANY(CAST(:ids AS varchar[]))"
        ),
        {"state": blocked, "reason": EXHAUSTED_REASON, "now": now, "ids": [s for s, _ in exhausted]},
    )
    for sub_id, allowance in exhausted:
        session.add(
            SubscriptionStateHistory(
                subscription_id=sub_id,
                from_state=ACTIVE,
                to_state=blocked,
                at=now,
                actor=ctx.actor,
                reason=EXHAUSTED_REASON,
            )
        )
        record(
            session,
            ctx,
            "subscription.blocked",
            "Subscription",
            sub_id,
            {"reason": EXHAUSTED_REASON, "allowanceType": allowance},
        )


def _audit(session: AsyncSession, ctx: RequestContext, result: RatingResult, *, bulk: bool) -> None:
    if not bulk and len(result.rated) == 1:
        event = result.rated[0]
        record(
            session,
            ctx,
            "usage.rated",
            AGGREGATE,
            event.id,
            {
                "subscriptionId": event.rated.subscription_id,
                "allowanceType": event.rated.allowance_type,
                "quantity": event.rated.event.quantity,
                "inBundle": event.rated.in_bundle,
            },
        )
        return
    # One row per bulk request: the events themselves are the detailed, append-only record.
    record(
        session,
        ctx,
        "usage.bulk_rated",
        "UsageBatch",
        random_id("UB"),
        {
            "rated": len(result.rated),
            "duplicate": len(result.duplicates),
            "rejected": len(result.rejections),
            "subscriptions": len({e.rated.subscription_id for e in result.rated}),
            "firstEventId": result.rated[0].id,
            "lastEventId": result.rated[-1].id,
        },
    )


# ---- reads -------------------------------------------------------------------------------------


async def get_usage(session: AsyncSession, event_id: str) -> UsageEvent:
    event = await session.get(UsageEvent, event_id)
    if event is None:
        raise NotFound("usage.not_found", f"No usage event {event_id}.", id=event_id)
    return event


async def list_usage(
    session: AsyncSession,
    *,
    msisdn: str | None = None,
    subscription_id: str | None = None,
    usage_type: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[UsageEvent]]:
    """Newest first (in rating order)."""
    stmt = select(UsageEvent)
    if msisdn is not None:
        stmt = stmt.where(UsageEvent.msisdn == msisdn)
    if subscription_id is not None:
        stmt = stmt.where(UsageEvent.subscription_id == subscription_id)
    if usage_type is not None:
        stmt = stmt.where(UsageEvent.usage_type == usage_type)
    total = (await session.exec(select(func.count()).select_from(stmt.subquery()))).one()
    rows = await session.exec(stmt.order_by(col(UsageEvent.seq).desc()).offset(offset).limit(limit))
    return total, list(rows)


@dataclass(frozen=True, slots=True)
class BucketView:
    """A bundle balance as rating sees it: whole units plus the fraction below one unit."""

    balance: BundleBalance
    subscription: Subscription
    fine: int

    @property
    def id(self) -> str:
        return bucket_id(self.subscription.id, self.balance.allowance_type)

    @property
    def unlimited(self) -> bool:
        return self.balance.total == UNLIMITED

    @property
    def consumed(self) -> Decimal:
        """Exact consumption in the balance's unit (e.g. 9.765625 MB for 10,000 KB)."""
        factor = BALANCE_UNIT_FACTORS.get(self.balance.unit, 1)
        return self.balance.consumed + Decimal(self.fine) / factor

    @property
    def remaining(self) -> Decimal | None:
        """None when unlimited; never below zero."""
        if self.unlimited:
            return None
        return max(Decimal(self.balance.total) - self.consumed, Decimal(0))


def bucket_id(subscription_id: str, allowance_type: str) -> str:
    return f"{subscription_id}.{allowance_type}"


async def list_buckets(
    session: AsyncSession,
    *,
    subscription_id: str | None = None,
    customer_id: str | None = None,
    msisdn: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[BucketView]]:
    """Balances of live lines (and terminated ones when asked by subscription id)."""
    stmt = (
        select(BundleBalance, Subscription, BalanceFraction)
        .join(Subscription, col(Subscription.id) == col(BundleBalance.subscription_id))
        .outerjoin(BalanceFraction, col(BalanceFraction.balance_id) == col(BundleBalance.id))
    )
    if subscription_id is not None:
        stmt = stmt.where(Subscription.id == subscription_id)
    if customer_id is not None:
        stmt = stmt.where(Subscription.customer_id == customer_id)
    if msisdn is not None:
        stmt = stmt.where(Subscription.msisdn == msisdn, Subscription.state != "terminated")
    total = (await session.exec(select(func.count()).select_from(stmt.subquery()))).one()
    rank = case(
        {kind: allowance_rank(kind) for kind in ALLOWANCE_ORDER},
        value=col(BundleBalance.allowance_type),
        else_=len(ALLOWANCE_ORDER),
    )
    stmt = (
        stmt.order_by(col(Subscription.id), rank, col(BundleBalance.allowance_type))
        .offset(offset)
        .limit(limit)
    )
    views = [
        BucketView(b, s, f.fine if f is not None and f.period_start == b.period_start else 0)
        for b, s, f in await session.exec(stmt)
    ]
    return total, views


async def get_bucket(session: AsyncSession, bucket: str) -> BucketView:
    sub_id, _, allowance = bucket.rpartition(".")
    if sub_id:
        _, views = await list_buckets(session, subscription_id=sub_id, limit=100)
        for view in views:
            if view.balance.allowance_type == allowance:
                return view
    raise NotFound("bucket.not_found", f"No bucket {bucket}.", id=bucket)


async def usage_since(session: AsyncSession, subscription_id: str, since: datetime) -> dict[str, int]:
    """Fine units rated per allowance since `since` (counts unlimited buckets too)."""
    rows = await session.exec(
        select(UsageEvent.allowance_type, func.sum(UsageEvent.quantity))
        .where(UsageEvent.subscription_id == subscription_id, UsageEvent.rated_at >= since)
        .group_by(UsageEvent.allowance_type)
    )
    return {kind: int(total) for kind, total in rows}

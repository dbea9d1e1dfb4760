"""Usage services: mediate, rate and record usage in the caller's transaction, and read it back.

One code path serves a single event and a bulk of fifty thousand: the lines are locked once
(subscription rows, then their balances, in id order, so concurrent raters never deadlock), the
events are rated in request order in memory (domains/usage/rating.py), then written in one
statement (domains/usage/store.py). The event id is the idempotency key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import case, func, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import DomainError, NotFound
from core.ids import random_id
from domains.audit.models import DomainEvent
from domains.audit.services import audit_fields, record
from domains.notify.rules import crossed
from domains.subscription.models import BundleBalance, Subscription, SubscriptionStateHistory
from domains.subscription.rules import (
    ACTIVE,
    ALLOWANCE_ORDER,
    PRIMARY_ALLOWANCE,
    UNLIMITED,
    allowance_rank,
    subscription_lifecycle,
)
from domains.usage import store
from domains.usage.models import BalanceFraction, UsageEvent
from domains.usage.rating import (
    BALANCE_UNIT_FACTORS,
    EXHAUSTED_REASON,
    Bucket,
    Line,
    Rejection,
    rate_in_order,
)
from domains.usage.rules import MediatedUsage, RawUsage, mediate
from domains.usage.store import RatedEvent

AGGREGATE = "Usage"


class ConcurrentDuplicate(Exception):
    """Another transaction stored one of our event ids while we rated; rating again sees it."""


@dataclass(slots=True)
class RatingResult:
    rated: list[RatedEvent] = field(default_factory=list)
    duplicates: list[MediatedUsage] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    # (subscription id, allowance type) of the lines this request blocked
    blocked: list[tuple[str, str]] = field(default_factory=list)


async def rate_usage(
    session: AsyncSession,
    ctx: RequestContext,
    records: Sequence[RawUsage],
    *,
    bulk: bool = False,
    contexts: Sequence[RequestContext] | None = None,
) -> RatingResult:
    """Mediate and rate `records` in order. Rejected records are reported, never stored; the
    caller's transaction commits the events, the balances and any block together.

    `contexts` (one per record, by its index) rates single events of several requests together
    (ops/usage.py): each rated event gets its own `usage.rated` audit row, and a block or a
    threshold is recorded under the context of the line's event; the caller sends at most one
    event per line, so each line sees what it would have seen alone."""
    now = clock.now()
    result = RatingResult()
    mediated = _mediate_all(records, now, result)
    if not mediated:
        return result

    ids = [m.id for m in mediated if m.id is not None]
    lines, stored = await store.lock_lines(session, {m.msisdn for m in mediated}, ids)
    used_before = _primary_used(lines)
    run = rate_in_order(mediated, lines, stored)
    result.duplicates = run.duplicates
    result.rejections = sorted(result.rejections + run.rejections, key=lambda r: r.index)
    if not run.rated:
        return result

    event_ids = await store.event_ids(session, run.rated)
    result.rated = [RatedEvent(i, r, now) for i, r in zip(event_ids, run.rated, strict=True)]
    touched = [b for line in lines.values() for b in line.buckets.values() if b.touched]
    if contexts is None:
        audit = [_audit(session, ctx, result, bulk=bulk)]
        line_ctx: dict[str, RequestContext] = {}
    else:
        audit = [
            _detached(session, _audit_one(session, contexts[e.rated.event.index], e)) for e in result.rated
        ]
        line_ctx = {e.rated.subscription_id: contexts[e.rated.event.index] for e in result.rated}
    if await store.write(session, result.rated, touched, audit) != len(result.rated):
        # Another transaction stored one of these ids meanwhile: undo everything and rate again.
        raise ConcurrentDuplicate()
    if run.exhausted:
        await _block(session, ctx, run.exhausted, now, line_ctx)
        result.blocked = run.exhausted
    await _thresholds(session, ctx, lines, used_before, line_ctx)
    return result


def _mediate_all(records: Sequence[RawUsage], now: datetime, result: RatingResult) -> list[MediatedUsage]:
    """Each record mediated, in order; a record that cannot be is a rejection in `result`."""
    mediated: list[MediatedUsage] = []
    for raw in records:
        try:
            mediated.append(mediate(raw, now))
        except DomainError as exc:
            result.rejections.append(Rejection(raw.index, raw.id, exc))
    return mediated


async def rate_unlocked(
    conn: asyncpg.Connection,
    ctx: RequestContext,
    records: Sequence[RawUsage],
    *,
    contexts: Sequence[RequestContext] | None = None,
) -> RatingResult | None:
    """rate_usage for single events in two round trips and two short transactions, on a bare
    driver connection: read the lines without locks, rate, and write only if nothing read has
    changed (store.write_if_unchanged). None when it cannot decide alone: a record without an id (a
    retry after an unknown outcome must find it stored), a line it would block, a threshold it
    would cross, or a line that changed meanwhile; the caller then rates under locks (rate_usage),
    which writes the same rows. Nothing is written when it answers None."""
    now = clock.now()
    result = RatingResult()
    mediated = _mediate_all(records, now, result)
    if not mediated:
        return result
    if any(m.id is None for m in mediated):
        return None
    lines, stored, versions = await store.read_lines(
        conn, {m.msisdn for m in mediated}, [m.id for m in mediated if m.id is not None]
    )
    used_before = _primary_used(lines)
    run = rate_in_order(mediated, lines, stored)
    if run.exhausted or _crossings(lines, used_before):
        return None
    result.duplicates = run.duplicates
    result.rejections = sorted(result.rejections + run.rejections, key=lambda r: r.index)
    if not run.rated:
        return result
    result.rated = [RatedEvent(r.event.id, r, now) for r in run.rated]  # type: ignore[arg-type]
    touched = [b for line in lines.values() for b in line.buckets.values() if b.touched]
    audit = [_audit_dict(ctx if contexts is None else contexts[e.rated.event.index], e) for e in result.rated]
    try:
        await store.write_if_unchanged(conn, result.rated, touched, audit, versions)
    except store.Changed:
        return None
    return result


def _audit_dict(ctx: RequestContext, event: RatedEvent) -> dict[str, Any]:
    """The `usage.rated` row _audit_one would add, as the columns store.write takes."""
    return {
        "event_id": uuid.uuid4(),
        **audit_fields(ctx, "usage.rated", AGGREGATE, event.id, _rated_payload(event)),
    }


def _rated_payload(event: RatedEvent) -> dict[str, Any]:
    return {
        "subscriptionId": event.rated.subscription_id,
        "allowanceType": event.rated.allowance_type,
        "quantity": event.rated.event.quantity,
        "inBundle": event.rated.in_bundle,
    }


def _primary_used(lines: dict[str, Line]) -> dict[int, int]:
    """Fine units used of each line's limited primary allowance, by balance id."""
    return {
        b.balance_id: b.consumed * (b.factor or 1) + b.fine
        for line in lines.values()
        if (b := line.buckets.get(PRIMARY_ALLOWANCE)) is not None and not b.unlimited
    }


async def _thresholds(
    session: AsyncSession,
    ctx: RequestContext,
    lines: dict[str, Line],
    used_before: dict[int, int],
    line_ctx: dict[str, RequestContext],
) -> None:
    """`balance.threshold_reached` (80 / 100 %) for each primary allowance this rating moved across
    a threshold: once per crossing, in the rating's transaction (notifications read it)."""
    crossings = _crossings(lines, used_before)
    if not crossings:
        return
    owners = dict(
        (
            await session.execute(
                select(Subscription.id, Subscription.customer_id).where(
                    col(Subscription.id).in_([sub_id for sub_id, _, _ in crossings])
                )
            )
        ).all()
    )
    for sub_id, bucket, percent in crossings:
        record(
            session,
            line_ctx.get(sub_id, ctx),
            "balance.threshold_reached",
            "Subscription",
            sub_id,
            {
                "customer_id": owners.get(sub_id),
                "subscription_id": sub_id,
                "allowance_type": bucket.allowance_type,
                "percent": percent,
            },
        )


def _crossings(lines: dict[str, Line], used_before: dict[int, int]) -> list[tuple[str, Bucket, int]]:
    """(subscription id, bucket, percent) of each primary allowance the rating moved across a threshold."""
    crossings: list[tuple[str, Bucket, int]] = []
    for line in lines.values():
        b = line.buckets.get(PRIMARY_ALLOWANCE)
        if b is None or not b.touched or b.balance_id not in used_before:
            continue
        factor = b.factor or 1
        percent = crossed(used_before[b.balance_id], b.consumed * factor + b.fine, b.total * factor)
        if percent is not None:
            crossings.append((line.subscription_id, b, percent))
    return crossings


async def _block(
    session: AsyncSession,
    ctx: RequestContext,
    exhausted: list[tuple[str, str]],
    now: datetime,
    line_ctx: dict[str, RequestContext],
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
        by = line_ctx.get(sub_id, ctx)
        session.add(
            SubscriptionStateHistory(
                subscription_id=sub_id,
                from_state=ACTIVE,
                to_state=blocked,
                at=now,
                actor=by.actor,
                reason=EXHAUSTED_REASON,
            )
        )
        record(
            session,
            by,
            "subscription.blocked",
            "Subscription",
            sub_id,
            {"reason": EXHAUSTED_REASON, "allowanceType": allowance},
        )


def _audit(session: AsyncSession, ctx: RequestContext, result: RatingResult, *, bulk: bool) -> DomainEvent:
    """The audit row, built by the audit service and written with the events (store.write), so the
    hot path pays no ORM flush for it."""
    return _detached(session, _audit_row(session, ctx, result, bulk=bulk))


def _detached(session: AsyncSession, row: DomainEvent) -> DomainEvent:
    session.expunge(row)
    return row


def _audit_one(session: AsyncSession, ctx: RequestContext, event: RatedEvent) -> DomainEvent:
    """`usage.rated`: the audit row of one single event."""
    return record(session, ctx, "usage.rated", AGGREGATE, event.id, _rated_payload(event))


def _audit_row(
    session: AsyncSession, ctx: RequestContext, result: RatingResult, *, bulk: bool
) -> DomainEvent:
    if not bulk and len(result.rated) == 1:
        return _audit_one(session, ctx, result.rated[0])
    # One row per bulk request: the events themselves are the detailed, append-only record.
    return record(
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
        lines = select(Subscription.id).where(Subscription.msisdn == msisdn)
        stmt = stmt.where(col(UsageEvent.subscription_id).in_(lines), UsageEvent.msisdn == msisdn)
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

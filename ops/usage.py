"""Usage operations: record one event or a bulk of them (mediation and rating in one transaction),
signal the lines rating blocked, and read usage and balances back (TMF635 / TMF654 / TMF677)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.util import greenlet_spawn

from core.context import RequestContext
from core.db import transaction
from domains.usage import services
from domains.usage.models import UsageEvent
from domains.usage.rules import RawUsage
from domains.usage.services import BucketView, RatingResult
from domains.usage.store import UsageRecord
from ops.runtime import Runtime

log = logging.getLogger("bss.usage")

ATTEMPTS = 3
# Postgres: deadlock_detected, serialization_failure; both leave nothing behind and are safe to redo.
RETRYABLE = {"40P01", "40001"}
SIGNAL_TIMEOUT = 3.0
SIGNAL_CONCURRENCY = 16


@dataclass(frozen=True)
class Recorded:
    event: UsageEvent | UsageRecord
    created: bool  # False: the id was already rated; this is the original event


async def record_usage(rt: Runtime, ctx: RequestContext, raw: RawUsage) -> Recorded:
    """Mediate and rate one event. Raises the rule that refused it; a resent id returns the
    original event unchanged (counted once)."""
    singles = rt.extras.get(_SINGLES)
    if singles is None:
        singles = rt.extras[_SINGLES] = _Singles(rt)
    result = await singles.rate(ctx, raw)
    if result.rejections:
        raise result.rejections[0].error
    if result.duplicates:
        assert raw.id is not None
        return Recorded(await get_usage(rt, raw.id), created=False)
    return Recorded(result.rated[0].as_record(), created=True)


_SINGLES = "usage.singles"
MAX_SINGLES_TOGETHER = 256


@dataclass
class _Waiting:
    ctx: RequestContext
    raw: RawUsage
    line: str
    outcome: asyncio.Future[RatingResult]


class _Singles:
    """Group commit for single events. One that arrives while no rating of singles is under way
    is rated at once, alone; those that arrive meanwhile wait for it and are then rated together,
    in arrival order, in one transaction (a few round trips instead of a few each). At most one
    event per line goes in a transaction (a second waits for the next), so each line sees its
    events one after the other as if rated alone: the same blocks, thresholds and duplicates.
    Each keeps its own context (audit rows, actor); a transaction that fails rates its events
    again one by one, so an event only ever gets its own outcome."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.waiting: list[_Waiting] = []
        self.running: asyncio.Task[None] | None = None

    async def rate(self, ctx: RequestContext, raw: RawUsage) -> RatingResult:
        loop = asyncio.get_running_loop()
        if self.running is not None and self.running.get_loop() is not loop:  # a test's earlier loop
            self.waiting, self.running = [], None
        line = str(raw.msisdn).strip() if isinstance(raw.msisdn, (str, int)) else repr(raw.msisdn)
        waiting = _Waiting(ctx, raw, line, loop.create_future())
        self.waiting.append(waiting)
        if self.running is None:
            self.running = asyncio.create_task(self._run())
        return await waiting.outcome

    async def _run(self) -> None:
        try:
            while self.waiting:
                batch: list[_Waiting] = []
                later: list[_Waiting] = []
                lines: set[str] = set()
                for w in self.waiting:
                    if w.line in lines or len(batch) >= MAX_SINGLES_TOGETHER:
                        later.append(w)
                    else:
                        lines.add(w.line)
                        batch.append(w)
                self.waiting = later
                await self._rate_together(batch)
        finally:
            self.running = None

    async def _rate_together(self, batch: list[_Waiting]) -> None:
        if len(batch) > 1:
            records = [replace(w.raw, index=i) for i, w in enumerate(batch)]
            try:
                result = await _rate(
                    self.rt, batch[0].ctx, records, bulk=False, contexts=[w.ctx for w in batch]
                )
            except (DBAPIError, OSError) as exc:  # the database failed: alone, each would have too
                for w in batch:
                    _fail(w, exc)
                return
            except Exception:  # rolled back; rate each alone, for its own outcome
                log.warning(
                    "usage: %d singles rated together failed; rating each alone", len(batch), exc_info=True
                )
            else:
                for w, part in zip(batch, _parts(result, len(batch)), strict=True):
                    _settle(w, part)
                return
        for w in batch:
            try:
                _settle(w, await _rate(self.rt, w.ctx, [w.raw], bulk=False))
            except Exception as exc:
                _fail(w, exc)


def _parts(result: RatingResult, n: int) -> list[RatingResult]:
    """What rating together did with each of the n records, as rating it alone would report it."""
    parts = [RatingResult() for _ in range(n)]
    for e in result.rated:
        parts[e.rated.event.index].rated.append(e)
    for d in result.duplicates:
        parts[d.index].duplicates.append(d)
    for r in result.rejections:
        parts[r.index].rejections.append(r)
    blocked = set(result.blocked)
    for part in parts:
        part.blocked = [(e.rated.subscription_id, e.rated.allowance_type) for e in part.rated]
        part.blocked = [b for b in part.blocked if b in blocked]
    return parts


def _settle(waiting: _Waiting, result: RatingResult) -> None:
    if not waiting.outcome.done():  # its request may have gone (a client that hung up)
        waiting.outcome.set_result(result)


def _fail(waiting: _Waiting, exc: Exception) -> None:
    if not waiting.outcome.done():
        waiting.outcome.set_exception(exc)


async def record_bulk(rt: Runtime, ctx: RequestContext, records: Sequence[RawUsage]) -> RatingResult:
    """Mediate and rate many events in request order, in one transaction."""
    return await _rate(rt, ctx, records, bulk=True)


async def _rate(
    rt: Runtime,
    ctx: RequestContext,
    records: Sequence[RawUsage],
    *,
    bulk: bool,
    contexts: Sequence[RequestContext] | None = None,
) -> RatingResult:
    if not bulk:
        quick = await _rate_unlocked(rt, ctx, records, contexts)
        if quick is not None:
            return quick
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with transaction(rt.db) as s:
                result = await services.rate_usage(s, ctx, records, bulk=bulk, contexts=contexts)
            break
        except services.ConcurrentDuplicate:
            if attempt == ATTEMPTS:
                raise
        except DBAPIError as exc:
            if attempt == ATTEMPTS or _sqlstate(exc) not in RETRYABLE:
                raise
            log.warning("usage rating retried after %s (attempt %d)", _sqlstate(exc), attempt)
    if result.blocked:
        await signal_exhausted(rt, result.blocked)
    return result


async def _rate_unlocked(
    rt: Runtime, ctx: RequestContext, records: Sequence[RawUsage], contexts: Sequence[RequestContext] | None
) -> RatingResult | None:
    """Single events in two round trips instead of four (services.rate_unlocked), on the pool's
    driver connection. None: rate under locks. A failure of the database here is left to the
    locked rating, which meets it too, or finds the event stored if the write did commit (every
    event this path rates has an id)."""
    try:
        # The pool's connection itself (its checkout checks as for any other use), without a
        # Connection around it: nothing here runs through SQLAlchemy.
        pooled = await rt.engine.raw_connection()
    except (DBAPIError, OSError) as exc:
        log.info("usage: no connection for unlocked rating (%s); rating under locks", type(exc).__name__)
        return None
    try:
        return await services.rate_unlocked(pooled.driver_connection, ctx, records, contexts=contexts)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.info("usage: unlocked rating failed (%s); rating under locks", type(exc).__name__)
        return None
    finally:
        await greenlet_spawn(pooled.close)


async def signal_exhausted(rt: Runtime, blocked: Sequence[tuple[str, str]]) -> None:
    """Tell each blocked line's workflow, after the commit. The database is the truth: a missing
    workflow or an unreachable Temporal is logged, never the request's failure."""
    from workflows.subscription import Exhausted, subscription_workflow_id

    gate = asyncio.Semaphore(SIGNAL_CONCURRENCY)

    async def one(subscription_id: str, allowance_type: str) -> None:
        async with gate:
            try:
                client = await asyncio.wait_for(rt.temporal(), SIGNAL_TIMEOUT)
                handle = client.get_workflow_handle(subscription_workflow_id(subscription_id))
                await asyncio.wait_for(
                    handle.signal("exhausted", Exhausted(subscription_id, allowance_type)), SIGNAL_TIMEOUT
                )
            except Exception as exc:  # the block is committed whatever happens here
                log.warning("could not signal exhausted to %s: %s", subscription_id, exc)

    await asyncio.gather(*(one(s, a) for s, a in blocked))


def _sqlstate(exc: DBAPIError) -> str:
    for err in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if code:
            return str(code)
    return ""


async def get_usage(rt: Runtime, event_id: str) -> UsageEvent:
    async with rt.db() as s:
        return await services.get_usage(s, event_id)


async def list_usage(
    rt: Runtime,
    *,
    msisdn: str | None = None,
    subscription_id: str | None = None,
    usage_type: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[UsageEvent]]:
    async with rt.db() as s:
        return await services.list_usage(
            s,
            msisdn=msisdn,
            subscription_id=subscription_id,
            usage_type=usage_type,
            offset=offset,
            limit=limit,
        )


async def list_buckets(
    rt: Runtime,
    *,
    subscription_id: str | None = None,
    customer_id: str | None = None,
    msisdn: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[BucketView]]:
    async with rt.db() as s:
        return await services.list_buckets(
            s,
            subscription_id=subscription_id,
            customer_id=customer_id,
            msisdn=msisdn,
            offset=offset,
            limit=limit,
        )


async def get_bucket(rt: Runtime, bucket_id: str) -> BucketView:
    async with rt.db() as s:
        return await services.get_bucket(s, bucket_id)


@dataclass(frozen=True)
class Consumption:
    """A line's buckets and what was rated against each since its period started (fine units)."""

    buckets: list[BucketView]
    rated_since_period_start: dict[str, int]
    at: datetime


async def usage_consumption(
    rt: Runtime, *, subscription_id: str | None = None, msisdn: str | None = None
) -> Consumption:
    from core.clock import clock
    from core.errors import NotFound

    async with rt.db() as s:
        _, buckets = await services.list_buckets(s, subscription_id=subscription_id, msisdn=msisdn, limit=100)
        if not buckets:
            raise NotFound(
                "subscription.not_found",
                f"No line {subscription_id or msisdn} with balances.",
                subscriptionId=subscription_id,
                msisdn=msisdn,
            )
        sub = buckets[0].subscription
        totals = await services.usage_since(s, sub.id, sub.current_period_start)
    return Consumption(buckets, totals, clock.now())

"""Usage operations: record one event or a bulk of them (mediation and rating in one transaction),
signal the lines rating blocked, and read usage and balances back (TMF635 / TMF654 / TMF677)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import DBAPIError

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
    result = await _rate(rt, ctx, [raw], bulk=False)
    if result.rejections:
        raise result.rejections[0].error
    if result.duplicates:
        assert raw.id is not None
        return Recorded(await get_usage(rt, raw.id), created=False)
    return Recorded(result.rated[0].as_record(), created=True)


async def record_bulk(rt: Runtime, ctx: RequestContext, records: Sequence[RawUsage]) -> RatingResult:
    """Mediate and rate many events in request order, in one transaction."""
    return await _rate(rt, ctx, records, bulk=True)


async def _rate(rt: Runtime, ctx: RequestContext, records: Sequence[RawUsage], *, bulk: bool) -> RatingResult:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with transaction(rt.db) as s:
                result = await services.rate_usage(s, ctx, records, bulk=bulk)
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

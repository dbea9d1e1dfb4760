"""Inventory services: reserve, assign, release, quarantine and recycle numbers and eSIM profiles.

Every write is idempotent (a Temporal activity may run twice) and safe under concurrency: the
picker locks the lowest free row with FOR UPDATE SKIP LOCKED, and a unique index on `reserved_for`
means one holder gets one number and one profile, however many times it asks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import Conflict, InvalidInput, NotFound, PolicyViolation
from domains.audit.services import record
from domains.inventory.models import EsimProfile, Msisdn
from domains.inventory.rules import (
    DEFAULT_QUARANTINE_DAYS,
    ESIM,
    ESIM_ALREADY,
    ESIM_STATES,
    MSISDN,
    MSISDN_STATUSES,
    WATCHED_POOLS,
    activation_code,
    check_range,
    crossed_low_watermark,
    is_msisdn,
    new_matching_id,
    signup_hold_ref,
)

MAX_KEY = 64


def _check_key(reserved_for: str) -> None:
    if not reserved_for or len(reserved_for) > MAX_KEY:
        raise InvalidInput(
            "inventory.reserved_for.invalid",
            f"reserved_for must be a business key of 1 to {MAX_KEY} characters.",
        )


def _audit(
    session: AsyncSession, ctx: RequestContext, event: str, kind: str, key: str, **payload: Any
) -> None:
    record(session, ctx, f"inventory.{kind}.{event}", kind, key, payload)


async def _lock_holder(session: AsyncSession, reserved_for: str) -> None:
    """Serialise the reservations of one holder (until commit): a second, concurrent run for the
    same key waits here and then finds the first one's number and profile, with no savepoint
    around the reserving UPDATE (the unique index on `reserved_for` stays the last guard). Taken
    once per transaction (the number's and the profile's reservation share it)."""
    key = f"inventory.reserve:{reserved_for}"
    transaction = session.sync_session.get_transaction()
    if transaction is not None and session.info.get(key) is transaction:
        return
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})
    session.info[key] = transaction


async def _held_or_free(session: AsyncSession, model: Any, reserved_for: str) -> tuple[Any, bool]:
    """In one statement: the row `reserved_for` holds, else the lowest available one, locked
    (SKIP LOCKED). -> (row or None, held)."""
    table = model.__table__
    state, order = ("status", "msisdn") if model is Msisdn else ("profile_state", "iccid")
    name = f"{table.schema}.{table.name}"
    statement = (
        text(
            f"WITH held AS (SELECT * FROM {name} WHERE reserved_for = :k), "
            f"free AS (SELECT * FROM {name} WHERE {state} = 'available' AND NOT EXISTS (SELECT 1 FROM held) "
            f"ORDER BY {order} LIMIT 1 FOR UPDATE SKIP LOCKED) "
            "SELECT * FROM held UNION ALL SELECT * FROM free"
        )
        .bindparams(k=reserved_for)
        .columns(*table.c)
    )
    query = select(model).from_statement(statement).execution_options(populate_existing=True)
    row = (await session.execute(query)).scalars().first()
    return row, row is not None and row.reserved_for == reserved_for


# ---------------------------------------------------------------- MSISDN


async def _lock_msisdn(session: AsyncSession, msisdn: str) -> Msisdn | None:
    query = (
        select(Msisdn)
        .where(Msisdn.msisdn == msisdn)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.exec(query)).first()


async def _msisdn_held_by(session: AsyncSession, reserved_for: str) -> Msisdn | None:
    query = select(Msisdn).where(Msisdn.reserved_for == reserved_for)
    return (await session.exec(query.execution_options(populate_existing=True))).first()


async def get_msisdn(session: AsyncSession, msisdn: str) -> Msisdn:
    row = await session.get(Msisdn, msisdn)
    if row is None:
        raise NotFound("msisdn.not_found", f"Number {msisdn} is not in the pool.", msisdn=msisdn)
    return row


async def reserve_msisdn(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    reserved_for: str,
    preferred: str | None = None,
    reserved_until: datetime | None = None,
) -> str:
    """Hold a number for `reserved_for` (the preferred one, or the lowest free one) and return it.

    `reserved_until` marks a soft hold (the portal's 24 h number pick); the hold's own workflow
    releases it when the time is up.
    """
    _check_key(reserved_for)
    await _lock_holder(session, reserved_for)
    if preferred is None:
        row, already = await _held_or_free(session, Msisdn, reserved_for)
        if already:
            return row.msisdn
        if row is None:
            raise PolicyViolation("msisdn.reserve.no_available", "No number is left in the pool.")
        return await _reserve_row(session, ctx, row, reserved_for, "reserve", reserved_until)
    held = await _msisdn_held_by(session, reserved_for)
    if held is not None:
        if held.msisdn != preferred:
            raise PolicyViolation(
                "msisdn.reserve.already_holding",
                f"{reserved_for} already holds number {held.msisdn}; release it before asking for {preferred}.",
                held=held.msisdn,
            )
        return held.msisdn

    row = await _lock_msisdn(session, preferred)
    if row is None:
        raise NotFound("msisdn.reserve.not_found", f"Number {preferred} is not in the pool.")
    if row.status == "held":
        # A held number goes to the order that names it: the hold is its pick (a signup's, a
        # port-in's); the picker below never sees it.
        return await _take_hold(session, ctx, row, reserved_for)
    if row.status != "available":
        raise PolicyViolation(
            "msisdn.reserve.status_must_be_available",
            f"Number {preferred} is {row.status.replace('_', ' ')}, not available.",
            msisdn=preferred,
            status=row.status,
        )
    return await _reserve_row(session, ctx, row, reserved_for, "reserve", reserved_until)


async def _take_hold(session: AsyncSession, ctx: RequestContext, row: Msisdn, reserved_for: str) -> str:
    return await _reserve_row(session, ctx, row, reserved_for, "take_hold", None, hold_ref=row.reserved_for)


async def _reserve_row(
    session: AsyncSession,
    ctx: RequestContext,
    row: Msisdn,
    reserved_for: str,
    transition: str,
    reserved_until: datetime | None,
    **audit: Any,
) -> str:
    """Give the locked number to its holder (from available, or from a hold the holder named)."""
    now = clock.now()
    # No concurrent run for this holder can be past its own check: reserve_msisdn holds its lock.
    row.status = MSISDN.next(transition, row.status)
    row.reserved_for, row.reserved_at, row.reserved_until = reserved_for, now, reserved_until
    row.updated_at = now
    session.add(row)
    event = "reserved" if transition == "reserve" else "hold_taken"
    _audit(session, ctx, event, "msisdn", row.msisdn, **audit, reserved_for=reserved_for)
    return row.msisdn


# ---------------------------------------------------------------- holds


async def hold_msisdn(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    msisdn: str | None = None,
    until: datetime | None = None,
    hold_ref: str | None = None,
    customer_id: str | None = None,
    exclusive: bool = True,
) -> Msisdn:
    """Keep a number off sale for `hold_ref` (default `signup-hold-<MSISDN>`) until `until`, or until
    an order naming it takes it. No `msisdn`: a random available one. A number already held is
    refused (409), unless `exclusive=False` and the same reference holds it (a retried step):
    then the hold is returned as it is."""
    if msisdn is not None:
        if not is_msisdn(msisdn):
            raise InvalidInput("msisdn.invalid", f"{msisdn!r} is not a number of 8 to 15 digits.")
        row = await _lock_msisdn(session, msisdn)
        if row is None:
            raise NotFound("msisdn.hold.not_found", f"Number {msisdn} is not in the pool.", msisdn=msisdn)
        ref = hold_ref or signup_hold_ref(msisdn)
        if row.status == "held":
            if not exclusive and row.reserved_for == ref:
                return row
            raise Conflict(
                "msisdn.hold.already_held",
                f"Number {msisdn} is already held"
                + (f" until {row.reserved_until.isoformat()}." if row.reserved_until else "."),
                msisdn=msisdn,
            )
        if row.status != "available":
            raise PolicyViolation(
                "msisdn.hold.unavailable",
                f"Number {msisdn} is {row.status.replace('_', ' ')}, not available.",
                msisdn=msisdn,
                pool_status=row.status,
            )
    else:
        query = (
            select(Msisdn)
            .where(Msisdn.status == "available")
            .order_by(func.random())
            .limit(1)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        row = (await session.exec(query)).first()
        if row is None:
            raise PolicyViolation("msisdn.reserve.no_available", "No number is left in the pool.")
        ref = hold_ref or signup_hold_ref(row.msisdn)
    _check_key(ref)
    now = clock.now()
    try:
        async with session.begin_nested():
            row.status = MSISDN.next("hold", row.status)
            row.reserved_for, row.reserved_at, row.reserved_until = ref, now, until
            row.updated_at = now
            session.add(row)
    except IntegrityError:
        raise PolicyViolation(
            "msisdn.hold.already_holding", f"{ref} already holds another number.", hold_ref=ref
        ) from None
    _audit(
        session,
        ctx,
        "held",
        "msisdn",
        row.msisdn,
        hold_ref=ref,
        until=until.isoformat() if until else None,
        customer_id=customer_id,
    )
    return row


async def release_hold(
    session: AsyncSession, ctx: RequestContext, *, msisdn: str, hold_ref: str, reason: str
) -> bool:
    """The hold ends without an order (expired, cancelled): the number goes back on sale. False
    (nothing done) when `hold_ref` no longer holds it: an order took it, or it was released."""
    row = await _lock_msisdn(session, msisdn)
    if row is None or row.status != "held" or row.reserved_for != hold_ref:
        return False
    row.status = MSISDN.next("release_hold", row.status)
    row.reserved_for = row.reserved_at = row.reserved_until = None
    row.updated_at = clock.now()
    session.add(row)
    _audit(session, ctx, "hold_released", "msisdn", msisdn, hold_ref=hold_ref, reason=reason)
    return True


async def hold_of(session: AsyncSession, msisdn: str) -> Msisdn | None:
    """The number if it is held, else None."""
    row = await session.get(Msisdn, msisdn, populate_existing=True)
    return row if row is not None and row.status == "held" else None


# ---------------------------------------------------------------- low watermark


_POOLS = {"msisdn": ("inventory.msisdn", "status"), "esim": ("inventory.esim_profile", "profile_state")}


async def check_low_watermark(
    session: AsyncSession, ctx: RequestContext, *, resource: str, threshold: int
) -> bool:
    """After a reservation: when the pool is under `threshold` and was not already, write
    `inventory.low_watermark` and open an operator ticket (once per crossing); when it is back at
    or above it, arm the watermark again. True when this call reported a crossing."""
    if resource not in WATCHED_POOLS:
        raise InvalidInput("inventory.resource.invalid", f"Unknown pool {resource!r}.")
    if threshold <= 0:
        return False
    await session.flush()  # raw SQL below bypasses the ORM's autoflush
    conn = await session.connection()
    now = clock.now()
    table, column = _POOLS[resource]
    # Count (up to the threshold) and, when the pool is at or above it, arm the watermark again:
    # one statement (a data-modifying CTE always runs).
    result = await conn.execute(
        text(
            f"WITH n AS (SELECT count(*) AS available FROM (SELECT 1 FROM {table} "
            f"WHERE {column} = 'available' LIMIT :cap) t), "
            "rearm AS (UPDATE inventory.pool_watermark w SET low = false, available = n.available, "
            "changed_at = :now FROM n WHERE w.resource = :r AND w.low AND n.available >= :cap RETURNING 1) "
            "SELECT available FROM n"
        ),
        {"r": resource, "cap": threshold, "now": now},
    )
    available = int(result.scalar_one())
    if not crossed_low_watermark(available, threshold):
        return False
    flipped = await conn.execute(
        text(
            "INSERT INTO inventory.pool_watermark (resource, low, available, threshold, changed_at) "
            "VALUES (:r, true, :n, :t, :now) "
            "ON CONFLICT (resource) DO UPDATE SET low = true, available = :n, threshold = :t, "
            "changed_at = :now WHERE NOT inventory.pool_watermark.low RETURNING resource"
        ),
        {"r": resource, "n": available, "t": threshold, "now": now},
    )
    if flipped.first() is None:
        return False  # already reported for this crossing
    from domains.crm.tickets import open_ticket

    label = "Number (MSISDN)" if resource == "msisdn" else "eSIM profile"
    ticket = await open_ticket(
        session,
        ctx,
        ticket_type="inventory_low",
        subject=f"{label} pool low: {available} available (threshold {threshold})",
        description=(
            f"The {label.lower()} pool fell under its low watermark: {available} left available, "
            f"threshold {threshold}. Add stock (bss inventory add-range for numbers, new profiles "
            "from the SM-DP+ vendor for eSIMs)."
        ),
        priority="high",
    )
    await conn.execute(
        text("UPDATE inventory.pool_watermark SET ticket_id = :tkt WHERE resource = :r"),
        {"tkt": ticket.id, "r": resource},
    )
    record(
        session,
        ctx,
        "inventory.low_watermark",
        "inventory",
        resource,
        {"resource": resource, "available": available, "threshold": threshold, "ticket_id": ticket.id},
    )
    return True


async def release_msisdn(
    session: AsyncSession, ctx: RequestContext, *, msisdn: str, reserved_for: str
) -> bool:
    """Give a reserved number back to the pool; False (nothing done) unless `reserved_for` holds it."""
    row = await _lock_msisdn(session, msisdn)
    if row is None:
        raise NotFound("msisdn.release.not_found", f"Number {msisdn} is not in the pool.")
    if row.status == "ported_out":
        raise PolicyViolation(
            "msisdn.release.terminal_status", f"Number {msisdn} was ported out and never comes back."
        )
    if row.status != "reserved" or row.reserved_for != reserved_for:
        return False
    row.status = MSISDN.next("release", row.status)
    row.reserved_for = row.reserved_at = row.reserved_until = None
    row.updated_at = clock.now()
    session.add(row)
    _audit(session, ctx, "released", "msisdn", msisdn, reserved_for=reserved_for)
    return True


async def assign_msisdn(
    session: AsyncSession, ctx: RequestContext, *, msisdn: str, subscription_id: str
) -> Msisdn:
    row = await _lock_msisdn(session, msisdn)
    if row is None:
        raise NotFound("msisdn.assign.not_found", f"Number {msisdn} is not in the pool.")
    if row.status == "assigned" and row.assigned_to_subscription_id == subscription_id:
        return row
    if row.status != "reserved":
        raise PolicyViolation(
            "msisdn.assign.must_be_reserved",
            f"Number {msisdn} is {row.status.replace('_', ' ')}; only a reserved number can be assigned.",
            status=row.status,
        )
    row.status = MSISDN.next("assign", row.status)
    row.assigned_to_subscription_id = subscription_id
    row.reserved_until = None
    row.updated_at = clock.now()
    session.add(row)
    _audit(session, ctx, "assigned", "msisdn", msisdn, subscription_id=subscription_id)
    return row


async def unassign_msisdn(
    session: AsyncSession, ctx: RequestContext, *, msisdn: str, subscription_id: str
) -> bool:
    """The line of an order that failed gives its number straight back to the pool, without the
    quarantine a terminated line's number rests in: nobody was ever reachable on it (the order never
    completed), so there is nobody's caller to protect. False (nothing done) unless `subscription_id`
    holds the number."""
    row = await _lock_msisdn(session, msisdn)
    if row is None or row.status != "assigned" or row.assigned_to_subscription_id != subscription_id:
        return False
    row.status = MSISDN.next("unassign", row.status)
    row.assigned_to_subscription_id = None
    row.reserved_for = row.reserved_at = row.reserved_until = None
    row.updated_at = clock.now()
    session.add(row)
    _audit(session, ctx, "unassigned", "msisdn", msisdn, subscription_id=subscription_id)
    return True


async def quarantine_msisdn(
    session: AsyncSession, ctx: RequestContext, *, msisdn: str, days: int = DEFAULT_QUARANTINE_DAYS
) -> Msisdn:
    """A terminated line's number rests `days` before anyone else can buy it."""
    if days < 0:
        raise InvalidInput("msisdn.quarantine.days_invalid", "Quarantine days cannot be negative.")
    row = await _lock_msisdn(session, msisdn)
    if row is None:
        raise NotFound("msisdn.quarantine.not_found", f"Number {msisdn} is not in the pool.")
    if row.status == "quarantine":
        return row
    row.status = MSISDN.next("quarantine", row.status, code="msisdn.quarantine.must_be_assigned")
    now = clock.now()
    row.quarantine_until = now + timedelta(days=days)
    row.reserved_for = row.reserved_at = row.reserved_until = None
    row.updated_at = now
    session.add(row)
    _audit(
        session,
        ctx,
        "quarantined",
        "msisdn",
        msisdn,
        subscription_id=row.assigned_to_subscription_id,
        until=row.quarantine_until.isoformat(),
    )
    return row


async def release_expired_quarantine(session: AsyncSession, ctx: RequestContext) -> int:
    """Quarantined numbers whose time is up go back on sale; returns how many."""
    now = clock.now()
    statement = (
        update(Msisdn)
        .where(col(Msisdn.status) == "quarantine", col(Msisdn.quarantine_until) <= now)
        .values(
            status=MSISDN.next("end_quarantine", "quarantine"),
            quarantine_until=None,
            assigned_to_subscription_id=None,
            updated_at=now,
        )
        .returning(col(Msisdn.msisdn))
        .execution_options(synchronize_session=False)
    )
    freed = [r[0] for r in (await session.exec(statement)).all()]
    for msisdn in freed:
        _audit(session, ctx, "quarantine_ended", "msisdn", msisdn)
    return len(freed)


async def port_out_msisdn(session: AsyncSession, ctx: RequestContext, *, msisdn: str) -> Msisdn:
    """The number moved to another operator: it leaves the pool for good."""
    row = await _lock_msisdn(session, msisdn)
    if row is None:
        raise NotFound("msisdn.not_found", f"Number {msisdn} is not in the pool.")
    if row.status == "ported_out":
        return row
    row.status = MSISDN.next("port_out", row.status)
    row.reserved_for = row.reserved_at = row.reserved_until = row.quarantine_until = None
    row.updated_at = clock.now()
    session.add(row)
    _audit(session, ctx, "ported_out", "msisdn", msisdn, subscription_id=row.assigned_to_subscription_id)
    return row


async def add_ported_in_msisdn(
    session: AsyncSession, ctx: RequestContext, *, msisdn: str, reserved_for: str
) -> str:
    """A donor's number joins the pool and is held at once for the port-in that brings it."""
    if not is_msisdn(msisdn):
        raise InvalidInput("msisdn.invalid", f"{msisdn!r} is not a number of 8 to 15 digits.")
    await session.flush()  # raw SQL below bypasses the ORM's autoflush
    conn = await session.connection()
    inserted = await conn.execute(
        text(
            "INSERT INTO inventory.msisdn (msisdn, status, updated_at) VALUES (:m, 'available', :now) "
            "ON CONFLICT DO NOTHING RETURNING msisdn"
        ),
        {"m": msisdn, "now": clock.now()},
    )
    if inserted.first() is not None:
        _audit(session, ctx, "seeded_from_port_in", "msisdn", msisdn, reserved_for=reserved_for)
    return await reserve_msisdn(session, ctx, reserved_for=reserved_for, preferred=msisdn)


async def add_msisdn_range(session: AsyncSession, ctx: RequestContext, *, prefix: str, count: int) -> int:
    """Add prefix + 0000 … prefix + (count-1) to the pool; numbers already there are kept as they are."""
    check_range(prefix, count)
    await session.flush()  # raw SQL below bypasses the ORM's autoflush
    conn = await session.connection()
    result = await conn.execute(
        text(
            "WITH added AS ("
            " INSERT INTO inventory.msisdn (msisdn, status, updated_at)"
            " SELECT :prefix || lpad(g::text, 4, '0'), 'available', :now FROM generate_series(0, :last) g"
            " ON CONFLICT DO NOTHING RETURNING 1)"
            " SELECT count(*) FROM added"
        ),
        {"prefix": prefix, "last": count - 1, "now": clock.now()},
    )
    added = int(result.scalar_one())
    _audit(session, ctx, "range_added", "msisdn", f"{prefix}*", prefix=prefix, count=count, added=added)
    return added


async def list_msisdns(
    session: AsyncSession,
    *,
    status: str | None = None,
    prefix: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[Msisdn]]:
    """One page of numbers in number order, with the total that match."""
    query = select(Msisdn)
    if status is not None:
        query = query.where(Msisdn.status == status)
    if prefix:
        query = query.where(col(Msisdn.msisdn).startswith(prefix, autoescape=True))
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(query.order_by(col(Msisdn.msisdn)).offset(offset).limit(limit))
    return int(total), list(rows)


# ---------------------------------------------------------------- eSIM


async def _lock_esim(session: AsyncSession, iccid: str) -> EsimProfile:
    query = (
        select(EsimProfile)
        .where(EsimProfile.iccid == iccid)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    profile = (await session.exec(query)).first()
    if profile is None:
        raise NotFound("esim.not_found", f"eSIM profile {iccid} does not exist.", iccid=iccid)
    return profile


def _issue_new_code(profile: EsimProfile) -> None:
    """Once a code may have left the building, the profile answers only to a new one."""
    profile.matching_id = new_matching_id()
    profile.activation_code = activation_code(profile.smdp_server, profile.matching_id)


def _back_to_pool(profile: EsimProfile) -> None:
    profile.reserved_for = profile.reserved_at = None
    profile.assigned_msisdn = profile.assigned_to_subscription_id = None
    profile.prepared_at = profile.downloaded_at = profile.installed_at = None


async def get_esim(session: AsyncSession, iccid: str) -> EsimProfile:
    profile = await session.get(EsimProfile, iccid)
    if profile is None:
        raise NotFound("esim.not_found", f"eSIM profile {iccid} does not exist.", iccid=iccid)
    return profile


async def reserve_esim(session: AsyncSession, ctx: RequestContext, *, reserved_for: str) -> EsimProfile:
    """Hold the lowest free profile for `reserved_for`; asking again returns the same profile."""
    _check_key(reserved_for)
    await _lock_holder(session, reserved_for)
    profile, already = await _held_or_free(session, EsimProfile, reserved_for)
    if already:
        return profile
    if profile is None:
        raise PolicyViolation("esim.reserve.no_available", "No eSIM profile is left in the pool.")
    now = clock.now()
    # No concurrent run for this holder can be past its own check: the holder's lock above.
    profile.profile_state = ESIM.next("reserve", profile.profile_state)
    profile.reserved_for, profile.reserved_at, profile.updated_at = reserved_for, now, now
    session.add(profile)
    _audit(session, ctx, "reserved", "esim", profile.iccid, reserved_for=reserved_for)
    return profile


async def _advance(
    session: AsyncSession,
    ctx: RequestContext,
    iccid: str,
    trigger: str,
    event: str,
    stamp: str,
    locked: EsimProfile | None = None,
) -> EsimProfile:
    """`locked`: the profile as this transaction just locked it (not read again)."""
    profile = locked if locked is not None else await _lock_esim(session, iccid)
    if profile.profile_state in ESIM_ALREADY[trigger]:
        return profile
    profile.profile_state = ESIM.next(trigger, profile.profile_state)
    now = clock.now()
    setattr(profile, stamp, now)
    profile.updated_at = now
    session.add(profile)
    _audit(session, ctx, event, "esim", iccid, state=profile.profile_state)
    return profile


async def mark_esim_prepared(
    session: AsyncSession, ctx: RequestContext, *, iccid: str, for_service_order: str | None = None
) -> EsimProfile:
    """The SM-DP+ confirmed the download order: the activation code may now be given out.

    `for_service_order`: the order whose flow prepared it. A failed order's flow that finishes
    preparing after its profile went back to the pool and was reserved by another order changes
    nothing: the profile is no longer its to mark."""
    profile = None
    if for_service_order is not None:
        profile = await _lock_esim(session, iccid)
        if profile.reserved_for is not None and profile.reserved_for != for_service_order:
            return profile
    return await _advance(session, ctx, iccid, "prepare", "prepared", "prepared_at", profile)


async def mark_esim_downloaded(session: AsyncSession, ctx: RequestContext, *, iccid: str) -> EsimProfile:
    return await _advance(session, ctx, iccid, "download", "downloaded", "downloaded_at")


async def mark_esim_installed(session: AsyncSession, ctx: RequestContext, *, iccid: str) -> EsimProfile:
    return await _advance(session, ctx, iccid, "install", "installed", "installed_at")


async def assign_esim(
    session: AsyncSession, ctx: RequestContext, *, iccid: str, msisdn: str, subscription_id: str
) -> EsimProfile:
    """Bind a held profile to the line's number and subscription."""
    profile = await _lock_esim(session, iccid)
    if profile.assigned_to_subscription_id == subscription_id and profile.assigned_msisdn == msisdn:
        return profile
    if profile.assigned_to_subscription_id is not None:
        raise PolicyViolation(
            "esim.assign_msisdn.already_assigned",
            f"eSIM profile {iccid} already belongs to {profile.assigned_to_subscription_id}.",
        )
    ESIM.next("assign", profile.profile_state, code="esim.assign_msisdn.esim_must_be_reserved")
    number = await session.get(Msisdn, msisdn)
    if number is None:
        raise NotFound("esim.assign_msisdn.msisdn_not_found", f"Number {msisdn} is not in the pool.")
    if not (
        number.status == "reserved"
        or (number.status == "assigned" and number.assigned_to_subscription_id == subscription_id)
    ):
        raise PolicyViolation(
            "esim.assign_msisdn.msisdn_must_be_reserved",
            f"Number {msisdn} is {number.status.replace('_', ' ')}; it must be reserved for this line.",
        )
    profile.assigned_msisdn, profile.assigned_to_subscription_id = msisdn, subscription_id
    profile.updated_at = clock.now()
    session.add(profile)
    _audit(session, ctx, "assigned", "esim", iccid, msisdn=msisdn, subscription_id=subscription_id)
    return profile


async def unassign_esim(
    session: AsyncSession, ctx: RequestContext, *, iccid: str, subscription_id: str
) -> bool:
    """The line of a failed order lets go of its profile, which stays held by its service order
    (`reserved_for`) until that order's eSIM flow has ended and gives it back (release_esim): never
    back on sale while a flow for it still runs. False (nothing done) unless the line holds it."""
    profile = await _lock_esim(session, iccid)
    if profile.assigned_to_subscription_id != subscription_id:
        return False
    profile.assigned_msisdn = profile.assigned_to_subscription_id = None
    profile.updated_at = clock.now()
    session.add(profile)
    _audit(session, ctx, "unassigned", "esim", iccid, subscription_id=subscription_id)
    return True


async def release_esim(session: AsyncSession, ctx: RequestContext, *, iccid: str, reserved_for: str) -> bool:
    """A failed order gives its profile back; False (nothing done) unless `reserved_for` holds it.

    A profile the device already fetched comes back recycled (new matching id), never as it was.
    """
    profile = await _lock_esim(session, iccid)
    if profile.reserved_for != reserved_for or profile.profile_state == "available":
        return False
    if profile.assigned_to_subscription_id is not None:
        raise PolicyViolation(
            "esim.release.assigned_to_line",
            f"eSIM profile {iccid} belongs to {profile.assigned_to_subscription_id}; "
            "terminating the line recycles it.",
        )
    issued = profile.profile_state != "reserved"
    trigger = "release" if ESIM.can("release", profile.profile_state) else "recycle"
    profile.profile_state = ESIM.next(trigger, profile.profile_state)
    if issued:
        _issue_new_code(profile)
    _back_to_pool(profile)
    profile.updated_at = clock.now()
    session.add(profile)
    _audit(session, ctx, "released", "esim", iccid, reserved_for=reserved_for)
    return True


async def recycle_esim(
    session: AsyncSession, ctx: RequestContext, *, iccid: str, subscription_id: str | None = None
) -> EsimProfile:
    """A terminated line's profile goes back on sale under a fresh matching id and activation code.

    Pass `subscription_id` from a retried step: if the profile no longer belongs to that line
    (recycled already, perhaps sold again) nothing happens.
    """
    profile = await _lock_esim(session, iccid)
    if profile.profile_state == "available":
        return profile
    if subscription_id is not None and profile.assigned_to_subscription_id != subscription_id:
        return profile
    previous = profile.assigned_to_subscription_id
    profile.profile_state = ESIM.next("recycle", profile.profile_state)
    _issue_new_code(profile)
    _back_to_pool(profile)
    now = clock.now()
    profile.recycled_at = profile.updated_at = now
    session.add(profile)
    _audit(session, ctx, "recycled", "esim", iccid, subscription_id=previous)
    return profile


async def rearm_esim(session: AsyncSession, ctx: RequestContext, *, iccid: str) -> EsimProfile:
    """Re-download (new phone, wiped phone): a new download order with a new activation code."""
    profile = await _lock_esim(session, iccid)
    if profile.profile_state == "prepared":
        return profile
    profile.profile_state = ESIM.next("rearm", profile.profile_state)
    _issue_new_code(profile)
    now = clock.now()
    profile.prepared_at, profile.downloaded_at, profile.installed_at = now, None, None
    profile.updated_at = now
    session.add(profile)
    _audit(session, ctx, "rearmed", "esim", iccid)
    return profile


async def list_esims(
    session: AsyncSession,
    *,
    state: str | None = None,
    prefix: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[EsimProfile]]:
    query = select(EsimProfile)
    if state is not None:
        query = query.where(EsimProfile.profile_state == state)
    if prefix:
        query = query.where(col(EsimProfile.iccid).startswith(prefix, autoescape=True))
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(query.order_by(col(EsimProfile.iccid)).offset(offset).limit(limit))
    return int(total), list(rows)


# ---------------------------------------------------------------- both pools


async def pool_counts(session: AsyncSession) -> dict[str, dict[str, int]]:
    """How many numbers and profiles are in each state (every state listed, zero included)."""
    numbers = await session.exec(select(Msisdn.status, func.count()).group_by(Msisdn.status))
    profiles = await session.exec(
        select(EsimProfile.profile_state, func.count()).group_by(EsimProfile.profile_state)
    )
    return {
        "msisdn": {s: 0 for s in MSISDN_STATUSES} | {s: int(n) for s, n in numbers.all()},
        "esim": {s: 0 for s in ESIM_STATES} | {s: int(n) for s, n in profiles.all()},
    }

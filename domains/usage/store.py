"""The rating hot path's SQL: lock the lines, find stored ids, write events and balances.

Plain SQL over arrays (unnest), so a bulk of fifty thousand events costs the same few round trips
as a single one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from domains.audit.models import DomainEvent
from domains.audit.services import AUDIT_COLUMNS
from domains.usage.rating import Bucket, Line, Rated, StoredEvent

MSISDN_MAX = 15


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """A just-rated event as the API shows it: the same attributes as a UsageEvent row, without
    the cost of building an ORM object on the hot path."""

    id: str
    msisdn: str
    subscription_id: str
    usage_type: str
    quantity: int
    original_quantity: Decimal
    original_unit: str
    roaming: bool
    usage_date: datetime
    allowance_type: str
    in_bundle: int
    status: str
    rated_at: datetime


@dataclass(frozen=True, slots=True)
class RatedEvent:
    id: str
    rated: Rated
    rated_at: datetime

    def as_record(self) -> UsageRecord:
        e = self.rated.event
        return UsageRecord(
            self.id,
            e.msisdn,
            self.rated.subscription_id,
            e.usage_type,
            e.quantity,
            e.original_quantity,
            e.original_unit,
            e.roaming,
            e.usage_date,
            self.rated.allowance_type,
            self.rated.in_bundle,
            "rated",
            self.rated_at,
        )


# Subscriptions first, then their balances, each in id order: every rater takes the same locks in
# the same order. A rater that waited for a lock gets the locked rows' latest versions, but not
# those of other tables joined here: the fractions (and stored ids) it read with them are those of
# the statement's start. So each balance row says whether it is the version the statement started
# from (`current`, by xmin); the fraction of a balance only changes with it (store.write), so when
# every balance is current the fractions are too, and the usual case is one round trip. Otherwise
# they are read again in a second statement, whose snapshot is taken after the locks are held.
# Ids stored meanwhile by a rater of other lines are caught by the write (ON CONFLICT: the caller
# rates again), as before.
_LOCK = """
    SELECT s.id, s.msisdn, s.state, s.created_at, b.id AS balance_id, b.allowance_type, b.total, b.consumed,
        b.unit, b.period_start, f.period_start AS fraction_period, f.fine,
        b.xmin = (SELECT v.xmin FROM subscription.bundle_balance AS v WHERE v.id = b.id) AS current
    FROM subscription.subscription AS s
    JOIN subscription.bundle_balance AS b ON b.subscription_id = s.id
    LEFT JOIN usage.balance_fraction AS f ON f.balance_id = b.id
    WHERE s.msisdn = ANY(CAST(:msisdns AS varchar[])) AND s.state <> 'terminated'
    ORDER BY s.id, b.id
    FOR UPDATE OF s, b
"""
_STORED = """
    SELECT e.id, e.msisdn, e.usage_type, e.original_quantity, e.original_unit, e.roaming, e.usage_date
    FROM usage.usage_event AS e WHERE e.id = ANY(CAST(:ids AS varchar[]))
"""
_LOCK_LINES = text(
    f"""
    WITH locked AS MATERIALIZED ({_LOCK}), stored AS MATERIALIZED ({_STORED})
    SELECT l.*, NULL AS event_id, NULL AS event_msisdn, NULL AS kind, NULL AS quantity, NULL AS event_unit,
        NULL AS roaming, NULL AS usage_date
    FROM locked AS l
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, st.*
    FROM stored AS st
    """
)
_LOCK_BARE_LINES = text(
    """
    SELECT id, msisdn, state, created_at FROM subscription.subscription
    WHERE msisdn = ANY(CAST(:msisdns AS varchar[])) AND state <> 'terminated'
    ORDER BY id FOR UPDATE
    """
)
_FRACTIONS_AND_STORED = text(
    """
    SELECT f.balance_id, f.period_start, f.fine, NULL, NULL, NULL, NULL, NULL, NULL
    FROM usage.balance_fraction AS f WHERE f.balance_id = ANY(CAST(:balance_ids AS bigint[]))
    UNION ALL
    SELECT NULL, e.usage_date, NULL, e.id, e.msisdn, e.usage_type, e.original_quantity, e.original_unit,
        e.roaming
    FROM usage.usage_event AS e WHERE e.id = ANY(CAST(:ids AS varchar[]))
    """
)


async def lock_lines(
    session: AsyncSession, msisdns: set[str], ids: list[str]
) -> tuple[dict[str, Line], dict[str, StoredEvent]]:
    """Lock the live lines of these numbers with their balances; and say which of `ids` are
    stored already, and what each stands for."""
    lines: dict[str, Line] = {}
    stored: dict[str, StoredEvent] = {}
    # Only what could be a number is looked up; anything else has no line by definition.
    msisdns = {m for m in msisdns if m.isascii() and m.isdigit() and len(m) <= MSISDN_MAX}
    buckets: dict[int, Bucket] = {}
    if not msisdns:
        if ids:
            await _fractions_and_stored(session, buckets, stored, ids)
        return lines, stored
    rows = await session.execute(_LOCK_LINES, {"msisdns": sorted(msisdns), "ids": ids})
    all_current = True
    for row in rows:
        (sub_id, msisdn, state, created, bal_id, kind, total, consumed, unit, period, f_period, fine, current,
         event_id, e_msisdn, e_kind, quantity, e_unit, roaming, at) = row  # fmt: skip
        if event_id is not None:
            stored[event_id] = StoredEvent.from_row(e_msisdn, e_kind, quantity, e_unit, roaming, at)
            continue
        line = _line(lines, sub_id, msisdn, state, created)
        line.buckets[kind] = buckets[bal_id] = _bucket(
            bal_id, kind, total, consumed, unit, period, f_period, fine
        )
        all_current = all_current and bool(current)
    missing = msisdns - lines.keys()
    if missing:  # a line without any balance row: it exists, but has nothing to rate against
        for sub_id, msisdn, state, created in await session.execute(
            _LOCK_BARE_LINES, {"msisdns": sorted(missing)}
        ):
            lines[msisdn] = Line(sub_id, msisdn, state, created_at=created)
    if not all_current:  # we waited for a rater of these lines: read what it wrote
        for bucket in buckets.values():
            bucket.fine = 0
        stored.clear()
        await _fractions_and_stored(session, buckets, stored, ids)
    return lines, stored


async def _fractions_and_stored(
    session: AsyncSession, buckets: dict[int, Bucket], stored: dict[str, StoredEvent], ids: list[str]
) -> None:
    rows = await session.execute(_FRACTIONS_AND_STORED, {"balance_ids": list(buckets), "ids": ids})
    for bal_id, period, fine, event_id, msisdn, kind, quantity, unit, roaming in rows:
        if event_id is not None:
            stored[event_id] = StoredEvent.from_row(msisdn, kind, quantity, unit, roaming, period)
        # A fraction left from an earlier period does not carry into a renewed balance.
        elif buckets[bal_id].period_start == period:
            buckets[bal_id].fine = fine


async def event_ids(session: AsyncSession, rated: list[Rated]) -> list[str]:
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


def audit_row(event: DomainEvent) -> dict[str, Any]:
    return {c: getattr(event, c) for c in AUDIT_COLUMNS}


# All events in rating order, then the balances they moved: absolute values are safe to write, the
# rows are locked since lock_lines. Every CTE runs whether or not the final SELECT reads it.
# `{guard}` is empty here; the unlocked path (write_if_unchanged) puts its check there.
_WRITE_TEMPLATE = """
    WITH {lead}events AS (
        INSERT INTO usage.usage_event (id, msisdn, subscription_id, usage_type, quantity, original_quantity,
            original_unit, roaming, usage_date, allowance_type, in_bundle, status, rated_at)
        SELECT u.id, u.msisdn, u.sub, u.kind, u.q, u.oq, u.ou, u.roaming,
            coalesce(u.at, CAST(:now AS timestamptz)), u.allowance, u.in_bundle, 'rated', CAST(:now AS timestamptz)
        FROM unnest(CAST(:ids AS varchar[]), CAST(:msisdns AS varchar[]), CAST(:subs AS varchar[]),
            CAST(:kinds AS varchar[]), CAST(:qs AS bigint[]), CAST(:oqs AS numeric[]), CAST(:ous AS varchar[]),
            CAST(:roaming AS boolean[]), CAST(:ats AS timestamptz[]), CAST(:allowances AS varchar[]),
            CAST(:in_bundle AS bigint[]))
            AS u(id, msisdn, sub, kind, q, oq, ou, roaming, at, allowance, in_bundle)
        {where}
        ON CONFLICT (id) DO NOTHING
        RETURNING 1
    ),
    balances AS (
        UPDATE subscription.bundle_balance AS b SET consumed = v.consumed
        FROM unnest(CAST(:balance_ids AS bigint[]), CAST(:consumed AS bigint[])) AS v(id, consumed)
        WHERE b.id = v.id {and_}
    ),
    fractions AS (
        INSERT INTO usage.balance_fraction (balance_id, period_start, fine)
        SELECT * FROM unnest(CAST(:balance_ids AS bigint[]), CAST(:periods AS timestamptz[]),
            CAST(:fines AS bigint[]))
        {where}
        ON CONFLICT (balance_id) DO UPDATE SET period_start = excluded.period_start, fine = excluded.fine
    ),
    audit AS (
        INSERT INTO audit.domain_event ({audit_columns})
        SELECT {audit_columns} FROM jsonb_populate_recordset(NULL::audit.domain_event, CAST(:audit AS jsonb))
        {where}
    )
    SELECT {result} FROM events
"""
_WRITE = text(
    _WRITE_TEMPLATE.format(
        lead="", where="", and_="", result="count(*)", audit_columns=", ".join(AUDIT_COLUMNS)
    )
)


async def write(
    session: AsyncSession, events: list[RatedEvent], buckets: list[Bucket], audit: list[DomainEvent]
) -> int:
    """The rated events, the balances they moved and the audit rows; returns how many events were
    new (fewer than sent means a concurrent duplicate, and the caller must roll back)."""
    params = _write_params(events, buckets, [audit_row(a) for a in audit])
    return int((await session.execute(_WRITE, params)).scalar_one())


def _write_params(
    events: list[RatedEvent], buckets: list[Bucket], audit: list[dict[str, Any]]
) -> dict[str, Any]:
    now = events[0].rated_at
    return {
        "now": now,
        "ids": [e.id for e in events],
        "msisdns": [e.rated.event.msisdn for e in events],
        "subs": [e.rated.subscription_id for e in events],
        "kinds": [e.rated.event.usage_type for e in events],
        "qs": [e.rated.event.quantity for e in events],
        "oqs": [e.rated.event.original_quantity for e in events],
        "ous": [e.rated.event.original_unit for e in events],
        "roaming": [e.rated.event.roaming for e in events],
        # An event without its own time was stamped `now`; a NULL for it encodes faster.
        "ats": [None if e.rated.event.usage_date is now else e.rated.event.usage_date for e in events],
        "allowances": [e.rated.allowance_type for e in events],
        "in_bundle": [e.rated.in_bundle for e in events],
        "balance_ids": [b.balance_id for b in buckets],
        "consumed": [b.consumed for b in buckets],
        "periods": [b.period_start for b in buckets],
        "fines": [b.fine for b in buckets],
        "audit": json.dumps(audit, default=str),
    }


def _line(lines: dict[str, Line], sub_id: str, msisdn: str, state: str, created: datetime) -> Line:
    line = lines.get(msisdn)
    if line is None:
        line = lines[msisdn] = Line(sub_id, msisdn, state, created_at=created)
    return line


def _bucket(
    bal_id: int,
    kind: str,
    total: int,
    consumed: int,
    unit: str,
    period: datetime,
    f_period: datetime | None,
    fine: int,
) -> Bucket:
    bucket = Bucket(bal_id, kind, total, consumed, unit, period)
    # A fraction left from an earlier period does not carry into a renewed balance.
    if f_period is not None and f_period == period:
        bucket.fine = fine
    return bucket


# ---- rating without holding locks across round trips (single events) -------------------------------
#
# A single event paid four round trips: BEGIN, lock_lines, write, COMMIT. The unlocked path pays two,
# each a transaction of its own: read_lines (no lock), then write_if_unchanged, which locks the same
# rows in the same order as lock_lines, and writes only if none of them changed since the read (same
# row versions, by xmin, and no balance more or less). Otherwise, and when another rater stored one of
# the ids meanwhile, the statement fails as a whole (division by zero, Postgres's only raise in plain
# SQL) and leaves nothing behind; the caller then rates under locks as before. So what it commits is
# exactly what lock_lines followed by write would have committed, had the rating held the locks.
_READ_LINES = """
    WITH lines AS MATERIALIZED (
        SELECT s.id, s.msisdn, s.state, s.created_at, CAST(s.xmin AS text) AS line_version, b.id AS balance_id,
            b.allowance_type, b.total, b.consumed, b.unit, b.period_start, f.period_start AS fraction_period,
            f.fine, CAST(b.xmin AS text) AS balance_version
        FROM subscription.subscription AS s
        LEFT JOIN subscription.bundle_balance AS b ON b.subscription_id = s.id
        LEFT JOIN usage.balance_fraction AS f ON f.balance_id = b.id
        WHERE s.msisdn = ANY(CAST($1 AS varchar[])) AND s.state <> 'terminated'
        ORDER BY s.id, b.id
    ), stored AS MATERIALIZED ({stored})
    SELECT l.*, NULL AS event_id, NULL AS event_msisdn, NULL AS kind, NULL AS quantity, NULL AS event_unit,
        NULL AS roaming, NULL AS usage_date
    FROM lines AS l
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, st.*
    FROM stored AS st
""".format(stored=_STORED.replace(":ids", "$2"))

_UNCHANGED = """
    locked AS MATERIALIZED (
        SELECT b.id, CAST(s.xmin AS text) AS line_version, CAST(b.xmin AS text) AS balance_version
        FROM subscription.subscription AS s
        JOIN subscription.bundle_balance AS b ON b.subscription_id = s.id
        WHERE s.id = ANY(CAST(:lines AS varchar[]))
        ORDER BY s.id, b.id
        FOR UPDATE OF s, b
    ),
    unchanged AS MATERIALIZED (
        SELECT count(*) = :read_count AND count(r.id) = :read_count AS ok
        FROM locked AS l
        LEFT JOIN unnest(CAST(:read_ids AS bigint[]), CAST(:read_lines AS text[]), CAST(:read_balances AS text[]))
            AS r(id, line_version, balance_version)
            ON r.id = l.id AND r.line_version = l.line_version AND r.balance_version = l.balance_version
    ),
"""
_IF_UNCHANGED = "(SELECT ok FROM unchanged)"


def _numbered(sql: str) -> tuple[str, list[str]]:
    """`:name` parameters as asyncpg's `$n`, and the names in their order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"(?<![:\w]):([a-z_]+)", number, sql), names


_WRITE_IF_UNCHANGED, _WRITE_IF_UNCHANGED_NAMES = _numbered(
    _WRITE_TEMPLATE.format(
        lead=_UNCHANGED,
        where=f"WHERE {_IF_UNCHANGED}",
        and_=f"AND {_IF_UNCHANGED}",
        # 1 / 0 when anything changed or an id was taken: the statement fails and writes nothing.
        result=f"1 / CAST({_IF_UNCHANGED} AND count(*) = :event_count AS int)",
        audit_columns=", ".join(AUDIT_COLUMNS),
    )
)


@dataclass(frozen=True, slots=True)
class Versions:
    """The row versions of the lines read_lines read: (balance id, line xmin, balance xmin)."""

    of_line: dict[str, list[tuple[int, str, str]]]


class Changed(Exception):
    """A line changed (or an id was stored) between read_lines and write_if_unchanged."""


async def read_lines(
    conn: asyncpg.Connection, msisdns: set[str], ids: list[str]
) -> tuple[dict[str, Line], dict[str, StoredEvent], Versions]:
    """lock_lines' answer without the locks (one statement, one snapshot), with the row versions
    write_if_unchanged checks."""
    lines: dict[str, Line] = {}
    stored: dict[str, StoredEvent] = {}
    versions: dict[str, list[tuple[int, str, str]]] = {}
    msisdns = {m for m in msisdns if m.isascii() and m.isdigit() and len(m) <= MSISDN_MAX}
    for row in await conn.fetch(_READ_LINES, sorted(msisdns), ids):
        (sub_id, msisdn, state, created, line_version, bal_id, kind, total, consumed, unit, period, f_period,
         fine, balance_version, event_id, e_msisdn, e_kind, quantity, e_unit, roaming, at) = row  # fmt: skip
        if event_id is not None:
            stored[event_id] = StoredEvent.from_row(e_msisdn, e_kind, quantity, e_unit, roaming, at)
            continue
        line = _line(lines, sub_id, msisdn, state, created)
        if bal_id is None:  # a line without any balance row: nothing to rate against
            continue
        line.buckets[kind] = _bucket(bal_id, kind, total, consumed, unit, period, f_period, fine)
        versions.setdefault(sub_id, []).append((bal_id, line_version, balance_version))
    return lines, stored, Versions(versions)


async def write_if_unchanged(
    conn: asyncpg.Connection,
    events: list[RatedEvent],
    buckets: list[Bucket],
    audit: list[dict[str, Any]],
    versions: Versions,
) -> None:
    """write(), in a transaction of its own, if the rated lines are as read_lines read them and no
    id is stored yet; raises Changed (nothing written) otherwise."""
    lines = sorted({e.rated.subscription_id for e in events})
    read = [v for line in lines for v in versions.of_line.get(line, ())]
    params = _write_params(events, buckets, audit)
    params.update(
        lines=lines,
        read_count=len(read),
        read_ids=[v[0] for v in read],
        read_lines=[v[1] for v in read],
        read_balances=[v[2] for v in read],
        event_count=len(events),
    )
    try:
        await conn.fetchval(_WRITE_IF_UNCHANGED, *(params[n] for n in _WRITE_IF_UNCHANGED_NAMES))
    except asyncpg.DivisionByZeroError:
        raise Changed() from None

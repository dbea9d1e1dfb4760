"""`Idempotency-Key` on creates: the same key answers the resource it made the first time.

The key row is written *before* the resource, in the same transaction: a concurrent request with
the same key waits on the unique index, fails when the first commits, and then replays it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.db import SessionFactory, transaction
from core.errors import InvalidInput, PolicyViolation

T = TypeVar("T")


class _KeyTaken(Exception):
    pass


MAX_KEY_LENGTH = 200


def fingerprint(request: dict[str, Any]) -> str:
    """What the request asked for, to refuse a key reused for a different request. Callers leave
    secrets (card numbers) out of `request`."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            "idempotency_key.invalid", f"Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable characters."
        )
    return key


async def _recall(session: AsyncSession, table: type[Any], scope: str, key: str, fp: str) -> str | None:
    row = (await session.exec(select(table).where(table.scope == scope, table.key == key))).first()
    if row is None:
        return None
    if row.fingerprint != fp:
        raise PolicyViolation(
            "idempotency_key.reused",
            "This Idempotency-Key was already used for a different request.",
        )
    return row.resource_id


async def once(
    db: SessionFactory,
    table: type[SQLModel],
    scope: str,
    key: str | None,
    fp: str,
    create: Callable[[AsyncSession], Awaitable[str]],
    load: Callable[[AsyncSession, str], Awaitable[T]],
) -> tuple[T, bool]:
    """Run `create` (returning the new resource id) once per key; answer (resource, replayed)."""
    key = check_key(key)
    for _ in range(2):
        try:
            async with transaction(db) as s:
                if key is not None:
                    existing = await _recall(s, table, scope, key, fp)
                    if existing is not None:
                        return await load(s, existing), True
                    row = table(scope=scope, key=key, fingerprint=fp, resource_id="", created_at=clock.now())
                    s.add(row)
                    try:
                        await s.flush()
                    except IntegrityError:
                        raise _KeyTaken from None
                resource_id = await create(s)
                if key is not None:
                    row.resource_id = resource_id  # type: ignore[attr-defined]
                    s.add(row)
                return await load(s, resource_id), False
        except _KeyTaken:
            continue  # lost the race for the key: the winner has committed, the next pass replays it
    raise PolicyViolation(
        "idempotency_key.in_flight", "A request with this Idempotency-Key is still running."
    )

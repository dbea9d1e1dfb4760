"""Database engine and sessions. One Postgres, one schema per domain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel.ext.asyncio.session import AsyncSession

SCHEMAS = (
    "catalog",
    "crm",
    "inventory",
    "payment",
    "ordering",
    "service_ordering",
    "subscription",
    "usage",
    "porting",
    "provisioning",
    "audit",
    "access",
    "notify",
    "staff",  # operator accounts of the cockpit
    "web",  # the web doors' sessions, login codes and rate counters (domains/web)
    "agent",  # the LLM agent's conversations, messages and proposals (domains/agent)
    "knowledge",  # the handbook and docs indexed for the agent's knowledge_search (domains/knowledge)
    "cardgw",  # the mock card acquirer's own books (domains/payment/mock_gateway.py), not the BSS's
)

SessionFactory = async_sessionmaker[AsyncSession]


def make_engine(url: str, *, pool_size: int = 10, pre_ping: bool = True) -> AsyncEngine:
    """`pre_ping=False` (the worker): no round trip before each checkout; a connection that died
    with Postgres fails its step, which retries on a fresh one (activities/base.py)."""
    return create_async_engine(url, pool_size=pool_size, max_overflow=10, pool_pre_ping=pre_ping)


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on any error."""
    async with factory() as session, session.begin():
        yield session


async def next_sequence(session: AsyncSession, schema: str, name: str) -> int:
    result = await session.execute(text(f"SELECT nextval('{schema}.{name}')"))
    return int(result.scalar_one())


async def next_sequences(session: AsyncSession, sequences: list[tuple[str, str]]) -> list[int]:
    """nextval of each (schema, sequence), in order, in one statement (one round trip)."""
    columns = ", ".join(f"nextval('{schema}.{name}')" for schema, name in sequences)
    row = (await session.execute(text(f"SELECT {columns}"))).one()
    return [int(v) for v in row]


async def insert_unless_exists(session: AsyncSession, obj: Any) -> bool:
    """INSERT the new ORM object's row unless it would break a unique constraint (ON CONFLICT DO
    NOTHING): one statement where a savepoint around a flush took three. True when inserted; the
    object is then persistent in the session as if flushed (later changes to it are UPDATEs).
    Columns left None are omitted, so their column defaults apply, as in an ORM flush."""
    from sqlalchemy import inspect
    from sqlalchemy.dialects.postgresql import insert

    mapper = inspect(type(obj))
    values = {
        col.name: value
        for attr, col in ((a, a.columns[0]) for a in mapper.column_attrs)
        if (value := getattr(obj, attr.key)) is not None
    }
    table = mapper.local_table
    pk = list(table.primary_key.columns)[0]
    inserted = await session.execute(insert(table).values(values).on_conflict_do_nothing().returning(pk))
    if inserted.first() is None:
        return False
    make_transient_to_detached(obj)
    session.add(obj)
    return True

"""Database engine and sessions. One Postgres, one schema per domain."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, exc, text
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
    with Postgres fails its step, which retries on a fresh one (activities/base.py).
    `pre_ping=True` (the API, the doors): a connection is checked before use (_check_on_checkout)."""
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=10)
    if pre_ping:
        _check_on_checkout(engine)
    return engine


# A connection back in the pool for less than this is not pinged again before its next use.
PING_AFTER_IDLE_SECONDS = 5.0


def _check_on_checkout(engine: AsyncEngine) -> None:
    """SQLAlchemy's pre-ping, without its cost on a busy pool: its ping is three round trips
    (BEGIN, an empty query, ROLLBACK), more than a short request's own statements. Here a
    connection that the driver already knows closed (Postgres restarted or ended the backend: the
    socket saw its end) is replaced without a round trip, and one that sat idle in the pool longer
    than PING_AFTER_IDLE_SECONDS (what a silent drop, say a firewall's idle timeout, needs) is
    pinged as before; a failed ping replaces every pooled connection, as pre-ping does."""
    pool, dialect = engine.sync_engine.pool, engine.dialect

    def stamp(_dbapi_connection: Any, record: Any, *_: Any) -> None:
        record.info["bss_idle_since"] = time.monotonic()

    def check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        closed = getattr(dbapi_connection.driver_connection, "is_closed", None)
        if closed is not None and closed():
            raise exc.DisconnectionError("the connection was closed while in the pool")
        idle_since = record.info.get("bss_idle_since")
        if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as err:
            if dialect.is_disconnect(err, dbapi_connection, None):
                raise exc.InvalidatePoolError("the connection failed its ping") from err
            raise

    event.listen(pool, "connect", stamp)  # a fresh connection needs no ping (nor does pre-ping's)
    event.listen(pool, "checkin", stamp)
    event.listen(pool, "checkout", check)


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on any error."""
    async with factory() as session, session.begin():
        yield session


async def next_sequences(session: AsyncSession, sequences: list[tuple[str, str]]) -> list[int]:
    """nextval of each (schema, sequence), in order, in one statement (one round trip)."""
    columns = ", ".join(f"nextval('{schema}.{name}')" for schema, name in sequences)
    row = (await session.execute(text(f"SELECT {columns}"))).one()
    return [int(v) for v in row]


async def insert_unless_exists(session: AsyncSession, obj: Any, *, id_sql: str | None = None) -> bool:
    """INSERT the new ORM object's row unless it would break a unique constraint (ON CONFLICT DO
    NOTHING): one statement where a savepoint around a flush took three. True when inserted; the
    object is then persistent in the session as if flushed (later changes to it are UPDATEs).
    Columns left None are omitted, so their column defaults apply, as in an ORM flush.
    `id_sql` (core.ids.id_sql): the primary key is taken from its sequence in the same statement
    and set on the object."""
    from sqlalchemy import inspect, literal_column
    from sqlalchemy.dialects.postgresql import insert

    mapper = inspect(type(obj))
    values = {
        col.name: value
        for attr, col in ((a, a.columns[0]) for a in mapper.column_attrs)
        if (value := getattr(obj, attr.key)) is not None
    }
    table = mapper.local_table
    pk = list(table.primary_key.columns)[0]
    if id_sql is not None:
        values[pk.name] = literal_column(id_sql)
    inserted = (
        await session.execute(insert(table).values(values).on_conflict_do_nothing().returning(pk))
    ).first()
    if inserted is None:
        return False
    setattr(obj, mapper.get_property_by_column(pk).key, inserted[0])
    make_transient_to_detached(obj)
    session.add(obj)
    return True

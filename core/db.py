"""Database engine and sessions. One Postgres, one schema per domain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
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

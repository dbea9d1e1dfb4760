"""The API's pool checks a connection before use without paying a ping per request
(core/db.py, _check_on_checkout): one Postgres closed is replaced, one just used is not pinged."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from core import db


async def _backend_pid(engine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


def _count_pings(engine) -> list[int]:
    pings: list[int] = []
    original = engine.dialect.do_ping

    def counted(dbapi_connection):
        pings.append(1)
        return original(dbapi_connection)

    engine.dialect.do_ping = counted
    return pings


async def test_a_connection_just_used_is_not_pinged_and_an_idle_one_is(db_url, monkeypatch):
    engine = db.make_engine(db_url, pool_size=1)
    try:
        pings = _count_pings(engine)
        first = await _backend_pid(engine)
        assert await _backend_pid(engine) == first
        assert pings == []  # fresh, then back in the pool a moment ago: no round trip
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
        assert await _backend_pid(engine) == first
        assert pings == [1]  # idle longer than the window: pinged, and still good
    finally:
        await engine.dispose()


async def test_a_connection_postgres_ended_is_replaced_before_use(db_url):
    engine = db.make_engine(db_url, pool_size=1)
    other = db.make_engine(db_url, pool_size=1)
    try:
        victim = await _backend_pid(engine)
        async with other.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
            for _ in range(200):  # until the backend is gone
                gone = await conn.execute(
                    text("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :pid)"),
                    {"pid": victim},
                )
                if gone.scalar_one():
                    break
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # the pooled connection's socket sees Postgres close it
        # Within the no-ping window, yet the request gets a working connection, not an error.
        assert await _backend_pid(engine) != victim
    finally:
        await engine.dispose()
        await other.dispose()

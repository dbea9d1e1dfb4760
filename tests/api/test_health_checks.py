"""/health: polls that overlap (`bss up` and its supervisor poll at once) check the database one
after the other on one pooled connection, so the pool keeps one connection open, not one each."""

from __future__ import annotations

import asyncio

import httpx

from ops.runtime import Runtime


async def test_overlapping_health_polls_share_one_database_connection(
    api: httpx.AsyncClient, runtime: Runtime
):
    answers = await asyncio.gather(*(api.get("/health") for _ in range(8)))
    assert [a.json()["database"] for a in answers] == ["up"] * 8
    assert runtime.engine.pool.checkedin() == 1

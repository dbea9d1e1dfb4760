from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlmodel.ext.asyncio.session import AsyncSession

from core.context import RequestContext
from ops.runtime import Runtime

# Dependencies are `async def`: FastAPI runs a plain `def` one in its thread pool, a thread hop per
# dependency per request that costs more than the lookup it does.


async def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def context(request: Request) -> RequestContext:
    return request.state.ctx


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.runtime.db() as session:
        yield session

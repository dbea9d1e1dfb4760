from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlmodel.ext.asyncio.session import AsyncSession

from core.context import RequestContext
from ops.runtime import Runtime


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def context(request: Request) -> RequestContext:
    return request.state.ctx


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.runtime.db() as session:
        yield session

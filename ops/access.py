"""API tokens: what `bss admin token` (through /bss-api/v1/admin/token) calls."""

from __future__ import annotations

from core.context import RequestContext
from core.db import transaction
from domains.access import services
from domains.access.models import ApiToken
from ops.runtime import Runtime


async def create_token(rt: Runtime, ctx: RequestContext, name: str, role: str) -> tuple[ApiToken, str]:
    """The new token's row and the token itself, which is nowhere else afterwards."""
    async with transaction(rt.db) as s:
        return await services.create_token(s, ctx, name, role)


async def list_tokens(rt: Runtime) -> list[ApiToken]:
    async with rt.db() as s:
        return await services.list_tokens(s)


async def revoke_token(rt: Runtime, ctx: RequestContext, name: str) -> ApiToken:
    async with transaction(rt.db) as s:
        return await services.revoke_token(s, ctx, name)

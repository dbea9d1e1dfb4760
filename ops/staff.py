"""Operator accounts of the cockpit: what `bss admin operator` (through /bss-api/v1/admin/operator)
and the cockpit's login call."""

from __future__ import annotations

from core.context import RequestContext
from core.db import transaction
from domains.staff import services
from domains.staff.models import Operator
from domains.staff.services import Login
from ops.runtime import Runtime


async def create_operator(
    rt: Runtime,
    ctx: RequestContext,
    email: str,
    role: str,
    name: str | None = None,
    password: str | None = None,
) -> tuple[Operator, str | None]:
    """The new operator, and its generated password when none was given (shown once)."""
    async with transaction(rt.db) as s:
        return await services.create_operator(s, ctx, email, role, name, password)


async def authenticate(rt: Runtime, ctx: RequestContext, email: str, password: str) -> Login:
    """Commits the attempt's count and audit rows whatever the outcome."""
    async with transaction(rt.db) as s:
        return await services.authenticate(s, ctx, email, password)


async def get_operator(rt: Runtime, operator_id: str) -> Operator:
    async with rt.db() as s:
        return await services.get_operator(s, operator_id)


async def list_operators(rt: Runtime) -> list[Operator]:
    async with rt.db() as s:
        return await services.list_operators(s)


async def disable_operator(rt: Runtime, ctx: RequestContext, ref: str) -> Operator:
    async with transaction(rt.db) as s:
        return await services.disable_operator(s, ctx, ref)


async def enable_operator(rt: Runtime, ctx: RequestContext, ref: str) -> Operator:
    async with transaction(rt.db) as s:
        return await services.enable_operator(s, ctx, ref)


async def signed_out(rt: Runtime, ctx: RequestContext, operator_id: str) -> None:
    async with transaction(rt.db) as s:
        await services.signed_out(s, ctx, operator_id)

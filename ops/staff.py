"""Operator accounts of the cockpit: what `bss admin operator` (through /bss-api/v1/admin/operator)
and the cockpit's login call."""

from __future__ import annotations

from datetime import timedelta

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from domains.staff import services
from domains.staff.models import Operator
from domains.staff.services import Login
from ops.runtime import Runtime

IP_BUCKET = "cockpit_password_ip"
IP_WINDOW = timedelta(hours=1)
WRONG_PER_IP = 20


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


async def authenticate(
    rt: Runtime, ctx: RequestContext, email: str, password: str, ip: str | None = None
) -> Login:
    """Commits the attempt's count and audit rows whatever the outcome. Besides each account's
    lockout, one client address gets WRONG_PER_IP failed sign-ins an hour across all emails (a
    spray over many accounts); past that it is a 429 `staff.login.rate_limited`, nothing checked."""
    from domains.web import services as web
    from ops.login import TooManyAttempts

    ip_key = ip or "unknown"
    async with transaction(rt.db) as s:
        now = clock.now()
        if await web.count_recent(s, IP_BUCKET, ip_key, now - IP_WINDOW) >= WRONG_PER_IP:
            raise TooManyAttempts(
                "staff.login.rate_limited", "Too many failed sign-ins from this address; wait a while."
            )
        login = await services.authenticate(s, ctx, email, password)
        if not login.ok:
            await web.count_event(s, IP_BUCKET, ip_key, now, IP_WINDOW)
        return login


async def get_operator(rt: Runtime, operator_id: str) -> Operator:
    async with rt.db() as s:
        return await services.get_operator(s, operator_id)


async def list_operators(rt: Runtime) -> list[Operator]:
    async with rt.db() as s:
        return await services.list_operators(s)


async def disable_operator(rt: Runtime, ctx: RequestContext, ref: str) -> Operator:
    """Disabled, and signed out of every cockpit session at once."""
    from domains.web import services as web

    async with transaction(rt.db) as s:
        op = await services.disable_operator(s, ctx, ref)
        await web.end_sessions_of(s, "cockpit", op.id)
        return op


async def enable_operator(rt: Runtime, ctx: RequestContext, ref: str) -> Operator:
    async with transaction(rt.db) as s:
        return await services.enable_operator(s, ctx, ref)


async def signed_out(rt: Runtime, ctx: RequestContext, operator_id: str) -> None:
    async with transaction(rt.db) as s:
        await services.signed_out(s, ctx, operator_id)

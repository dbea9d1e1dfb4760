"""What the chat tests share: a signed-in self-serve portal client for a customer (the web session
made directly, as the login door would), customers and lines on the real Postgres, SSE parsing."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from core.context import RequestContext
from core.db import transaction

CTX = RequestContext(actor="chat-test", channel="scenario", service_identity="test")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@asynccontextmanager
async def portal_as(settings: Any, runtime: Any, customer_id: str) -> AsyncIterator[httpx.AsyncClient]:
    """The self-serve app in-process with a signed-in session of `customer_id`."""
    from domains.web import services as web
    from portals.selfserve.app import create_app

    async with transaction(runtime.db) as s:
        token, _ = await web.new_session(s, "selfserve", datetime.now(UTC), subject=customer_id)
    app = create_app(settings, runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://portal.test", cookies={"bss_portal": token}
        ) as client:
            yield client


async def say(client: httpx.AsyncClient, text: str) -> httpx.Response:
    """Send one chat message the way the page's form does."""
    page = await client.get("/chat")
    assert page.status_code == 200, page.text
    return await client.post("/chat/send", data={"text": text, "csrf_token": csrf_of(page.text)})


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.split("\n\n"):
        kind, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
        if kind:
            events.append((kind, data or {}))
    return events


async def new_customer(runtime: Any, given_name: str = "Ada", family_name: str = "Tester") -> str:
    import uuid

    from domains.crm.services import create_customer

    address = f"{uuid.uuid4().hex[:8]}@example.com"
    async with transaction(runtime.db) as s:
        cust = await create_customer(s, CTX, given_name=given_name, family_name=family_name, email=address)
        return cust.id


async def new_line(runtime: Any, customer_id: str, offering_id: str = "PLAN_S") -> tuple[str, str]:
    """A line as the order saga leaves it (number and eSIM reserved, active). -> (SUB id, MSISDN)"""
    import uuid

    return await make_line(runtime, CTX, customer_id, offering_id, f"ORD-9{uuid.uuid4().int % 10**5:05d}")


async def make_line(
    runtime: Any, ctx: RequestContext, customer_id: str, offering_id: str, order_id: str
) -> tuple[str, str]:
    """A line for `order_id` as the order saga leaves it, number and eSIM reserved and the line created
    as `ctx`. -> (SUB id, MSISDN)"""
    from decimal import Decimal

    from domains.inventory.services import reserve_esim, reserve_msisdn
    from domains.subscription.services import create_subscription

    async with transaction(runtime.db) as s:
        msisdn = await reserve_msisdn(s, ctx, reserved_for=order_id)
        profile = await reserve_esim(s, ctx, reserved_for=order_id)
        sub = await create_subscription(
            s,
            ctx,
            order_id=order_id,
            customer_id=customer_id,
            offering_id=offering_id,
            msisdn=msisdn,
            iccid=profile.iccid,
            service_order_id="SO-000001",
            price_id=f"PRICE_{offering_id}",
            price_amount=Decimal("10.00"),
            price_currency="SGD",
        )
        return sub.id, msisdn

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

"""The cockpit app in-process for HTTP-level tests: an httpx client with its own cookie jar, a
sign-in helper that reads the CSRF token from the form, and cheap argon2 parameters."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from argon2 import PasswordHasher, profiles

from core.context import RequestContext
from domains.staff import rules
from ops import staff

ADMIN_CTX = RequestContext(actor="test-admin", channel="cli")
PASSWORD = "a long enough password"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# The production hash costs ~0.1-0.5 s on this shared machine; tests sign in often. hasher() is
# swapped whole, so a sign-in does not rehash to the production parameters either.
CHEAP = PasswordHasher.from_parameters(profiles.CHEAPEST)


@pytest.fixture
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(rules, "hasher", lambda: CHEAP)


@asynccontextmanager
async def cockpit_client(settings, runtime) -> AsyncIterator[httpx.AsyncClient]:
    from portals.cockpit.app import create_app

    app = create_app(settings, runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://cockpit.test") as client:
            yield client


async def operator(runtime, email: str, role: str = "csr", password: str = PASSWORD):
    return (await staff.create_operator(runtime, ADMIN_CTX, email, role, password=password))[0]


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/login")
    return await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_of(form.text), "next": "/"}
    )


async def form_post(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, str]
) -> httpx.Response:
    """Post a form with the CSRF token of the page it is on."""
    html = (await client.get(page)).text
    return await client.post(action, data={**data, "csrf_token": csrf_of(html)})

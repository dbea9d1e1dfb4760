"""The self-serve portal over HTTP (httpx against the app in-process, real Postgres): login by an
emailed one-time code, its limits, CSRF, and that a customer sees their own lines and nobody else's."""

from __future__ import annotations

import email
import hashlib
import itertools
import re
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from tests.agent.chat_helpers import make_line

CTX = RequestContext(actor="portal-test", channel="scenario", service_identity="test")
WORKER = RequestContext(actor="temporal-worker", channel="workflow", service_identity="worker")
_orders = itertools.count(1)


async def new_customer(runtime, given_name: str = "Ada") -> tuple[str, str]:
    from domains.crm.services import create_customer

    address = f"{given_name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    async with transaction(runtime.db) as s:
        cust = await create_customer(s, CTX, given_name=given_name, family_name="Tester", email=address)
        return cust.id, address


async def new_line(runtime, customer_id: str, offering_id: str = "PLAN_S") -> tuple[str, str]:
    """A line as the order saga leaves it (number and eSIM reserved, active). -> (SUB id, MSISDN)"""
    return await make_line(runtime, WORKER, customer_id, offering_id, f"ORD-{800000 + next(_orders):06d}")


@pytest_asyncio.fixture
async def portal(settings, runtime):
    from portals.selfserve.app import create_app

    app = create_app(settings, runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
            yield client


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


def codes_sent_to(settings, address: str) -> list[str]:
    codes = []
    for path in sorted((settings.data_dir / "mailbox").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = email.message_from_bytes(path.read_bytes())
        if msg["To"] and address in msg["To"]:
            body = (
                msg.get_payload(decode=True)
                if not msg.is_multipart()
                else msg.get_payload(0).get_payload(decode=True)
            )
            codes += re.findall(r"login code is (\d{6})", body.decode())
    return codes


async def ask_code(portal: httpx.AsyncClient, address: str) -> httpx.Response:
    page = await portal.get("/login")
    return await portal.post("/login", data={"email": address, "csrf_token": csrf_of(page)})


async def enter_code(portal: httpx.AsyncClient, code: str) -> httpx.Response:
    page = await portal.get("/login/verify")
    return await portal.post("/login/verify", data={"code": code, "csrf_token": csrf_of(page)})


async def test_login_by_emailed_code_shows_own_lines_and_hides_anothers(portal, runtime, settings):
    ada, ada_email = await new_customer(runtime, "Ada")
    sub1, msisdn1 = await new_line(runtime, ada)
    sub2, msisdn2 = await new_line(runtime, ada, "PLAN_M")
    bob, _ = await new_customer(runtime, "Bob")
    bob_sub, bob_msisdn = await new_line(runtime, bob)

    assert (await portal.get("/dashboard")).headers["location"] == "/login"
    asked = await ask_code(portal, ada_email)
    assert asked.status_code == 303 and asked.headers["location"] == "/login/verify"
    anonymous_cookie = portal.cookies["bss_portal"]
    [code] = codes_sent_to(settings, ada_email)

    signed = await enter_code(portal, code)
    assert signed.status_code == 303 and signed.headers["location"] == "/dashboard"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain http here
    assert portal.cookies["bss_portal"] != anonymous_cookie  # a login starts a new session

    # The session lives in Postgres under the token's hash, never the token itself.
    from domains.web.models import WebSession

    token = portal.cookies["bss_portal"]
    async with runtime.db() as s:
        row = await s.get(WebSession, hashlib.sha256(token.encode()).hexdigest())
        assert row is not None and row.subject == ada
        assert await s.get(WebSession, token) is None

    dashboard = await portal.get("/dashboard")
    assert dashboard.status_code == 200
    assert msisdn1 in dashboard.text and msisdn2 in dashboard.text and bob_msisdn not in dashboard.text
    assert "<progress" in dashboard.text and "Standard" in dashboard.text  # balance bars, plan names

    line = await portal.get(f"/lines/{sub1}")
    assert line.status_code == 200 and msisdn1 in line.text
    # Another customer's line is a 404, as if it did not exist, for reading and for a top-up.
    other = await portal.get(f"/lines/{bob_sub}")
    assert other.status_code == 404 and bob_msisdn not in other.text
    assert (await portal.get("/lines/SUB-999999")).status_code == 404
    topup = await portal.post(
        f"/lines/{bob_sub}/topup", data={"vas": "VAS_DATA_1GB", "csrf_token": csrf_of(line)}
    )
    assert topup.status_code == 404

    out = await portal.post("/logout", data={"csrf_token": csrf_of(dashboard)})
    assert out.status_code == 303
    assert (await portal.get("/dashboard")).headers["location"] == "/login"
    async with runtime.db() as s:
        assert await s.get(WebSession, hashlib.sha256(token.encode()).hexdigest()) is None


async def test_ownership_is_checked_in_the_operations_layer(runtime):
    from core.errors import NotFound
    from ops import ownership

    ada, _ = await new_customer(runtime, "Ada")
    bob, _ = await new_customer(runtime, "Bob")
    sub, _ = await new_line(runtime, bob)
    assert (await ownership.own_line(runtime, bob, sub))["id"] == sub
    with pytest.raises(NotFound) as refused:
        await ownership.own_line(runtime, ada, sub)
    assert refused.value.code == "subscription.not_found"
    assert await ownership.own_lines(runtime, ada) == []

    # Orders, cases and cards the same way: another customer's is the missing one's 404.
    from tests.portals.test_selfserve_account import bobs_things

    theirs = await bobs_things(runtime)
    checks = (
        (ownership.own_order, "order_id", "ORD-999999", "order.not_found"),
        (ownership.own_case, "case_id", "CASE-00000000", "case.not_found"),
        (ownership.own_payment_method, "pm_id", "PM-999999", "payment_method.not_found"),
    )
    for own, field, missing, code in checks:
        assert await own(runtime, theirs["customer"], theirs[field]) is not None
        for wanted in (theirs[field], missing):
            with pytest.raises(NotFound) as refused:
                await own(runtime, ada, wanted)
            assert refused.value.code == code and theirs["customer"] not in refused.value.message
    assert await ownership.own_orders(runtime, ada) == await ownership.own_cases(runtime, ada) == []
    assert await ownership.own_payment_methods(runtime, ada) == []


async def test_five_wrong_codes_burn_the_code(portal, runtime, settings):
    _, address = await new_customer(runtime)
    await ask_code(portal, address)
    [code] = codes_sent_to(settings, address)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        refused = await enter_code(portal, wrong)
        assert refused.status_code == 422 and f"{left} tries left" in refused.text
    burned = await enter_code(portal, wrong)
    assert burned.status_code == 422 and "no longer works" in burned.text
    # The right code no longer opens anything once the code is burned.
    page = await portal.get("/login")  # a new form (the verify page now only offers a new code)
    late = await portal.post("/login/verify", data={"code": code, "csrf_token": csrf_of(page)})
    assert late.status_code == 422
    assert (await portal.get("/dashboard")).status_code == 303


async def test_a_code_expires_after_ten_minutes_of_business_time(portal, runtime, settings):
    _, address = await new_customer(runtime)
    clock.freeze()
    await ask_code(portal, address)
    [code] = codes_sent_to(settings, address)
    clock.advance(timedelta(minutes=10, seconds=1))
    expired = await enter_code(portal, code)
    assert expired.status_code == 422 and "expired" in expired.text
    # A new code works, and an older one stops working when a new one is sent.
    await ask_code(portal, address)
    _, fresh = codes_sent_to(settings, address)
    assert (await enter_code(portal, fresh)).headers["location"] == "/dashboard"


async def test_code_requests_and_wrong_codes_are_rate_limited(portal, runtime, settings):
    _, address = await new_customer(runtime)
    for _ in range(5):
        assert (await ask_code(portal, address)).status_code == 303
    limited = await ask_code(portal, address)
    assert limited.status_code == 429
    assert len(codes_sent_to(settings, address)) == 5  # the sixth sent nothing

    # Per client address, across email addresses (unknown ones count too, and get no mail).
    for n in range(15):  # 5 + 15 = 20 an hour
        assert (await ask_code(portal, f"nobody{n}@example.com")).status_code == 303
    assert (await ask_code(portal, "one-more@example.com")).status_code == 429
    assert not codes_sent_to(settings, "nobody0@example.com")

    # Wrong codes from one client address, whatever the email: 20 an hour.
    from core.errors import DomainError
    from ops.login import WRONG_PER_IP, verify_code

    for _ in range(WRONG_PER_IP):
        with pytest.raises(DomainError):
            await verify_code(runtime, CTX, address, "000000", "10.9.9.9")
    with pytest.raises(DomainError) as limited_verify:
        await verify_code(runtime, CTX, address, "000000", "10.9.9.9")
    assert limited_verify.value.code == "login.rate_limited"


async def test_forms_without_the_sessions_csrf_token_are_refused(portal, runtime):
    _, address = await new_customer(runtime)
    page = await portal.get("/login")
    token = csrf_of(page)
    assert (await portal.post("/login", data={"email": address})).status_code == 403
    assert (await portal.post("/login", data={"email": address, "csrf_token": "x" * 43})).status_code == 403
    cross = await portal.post(
        "/login", data={"email": address, "csrf_token": token}, headers={"Origin": "http://evil.test"}
    )
    assert cross.status_code == 403
    # A token is bound to its session: another browser's token is worth nothing.
    async with httpx.AsyncClient(transport=portal._transport, base_url="http://portal.test") as other:
        assert (await other.post("/login", data={"email": address, "csrf_token": token})).status_code == 403
    # The header form (htmx) is accepted like the field.
    ok = await portal.post("/login", data={"email": address}, headers={"X-CSRF-Token": token})
    assert ok.status_code == 303


async def test_landing_shows_the_catalogue_and_public_promotions(portal, runtime):
    from ops.catalog import add_offering
    from ops.promotions import NewPromotion, create

    admin = RequestContext(actor="ops-admin", channel="scenario", service_identity="test")
    vip, _ = await new_customer(runtime, "Vip")
    await add_offering(
        runtime,
        admin,
        offering_id="PLAN_XS",
        name="Pocket",
        amount=Decimal("4.50"),
        allowances={"data": 1024},
    )
    await create(
        runtime, admin, NewPromotion("WELCOME10", "Welcome", "percent", Decimal("10"), 3, "multi_use")
    )
    await create(
        runtime,
        admin,
        NewPromotion(
            "VIPONLY", "Just you", "percent", Decimal("50"), 1, "multi_use", eligible_customer_ids=[vip]
        ),
    )
    page = await portal.get("/")
    assert page.status_code == 200
    assert "Pocket" in page.text and "SGD 4.50" in page.text and "Standard" in page.text
    assert "WELCOME10" in page.text and "VIPONLY" not in page.text
    assert "set-cookie" not in page.headers  # no session for a visitor who only reads
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/htmx.min.js"' in page.text
    assert (await portal.get("/static/htmx.min.js")).status_code == 200


async def test_the_session_cookie_is_secure_over_tls(settings, runtime):
    from portals.selfserve.app import create_app

    app = create_app(settings, runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://portal.test") as tls:
            cookie = (await tls.get("/login")).headers["set-cookie"]
    assert cookie.startswith("bss_portal=") and "; Secure" in cookie and "HttpOnly" in cookie

"""The self-serve portal's signup funnel over HTTP (httpx against the app in-process, real Postgres;
the funnels that hold numbers and place orders run on the real order saga, Temporal dev server):
a new customer comes in through the login door, and every step is the API's own operation."""

from __future__ import annotations

import asyncio
import email
import hashlib
import io
import re
import uuid

import httpx
import pytest_asyncio
import segno
from sqlalchemy import text

from tests.api.order_flow import scalar, until
from tests.portals.test_selfserve import (
    CTX,
    ask_code,
    codes_sent_to,
    csrf_of,
    enter_code,
    new_customer,
    new_line,
)

GOOD_CARD, DECLINED_CARD = "4242424242424242", "4000000000000002"


def signup_codes_sent_to(settings, address: str) -> list[str]:
    codes = []
    for path in sorted((settings.data_dir / "mailbox").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = email.message_from_bytes(path.read_bytes())
        if msg["To"] and address in msg["To"]:
            body = msg.get_payload(decode=True) or msg.get_payload(0).get_payload(decode=True)
            codes += re.findall(r"code to create your account is (\d{6})", body.decode())
    return codes


async def _client(settings, runtime):
    from portals.selfserve.app import create_app

    app = create_app(settings, runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
            yield client


@pytest_asyncio.fixture
async def portal(settings, runtime):
    async for client in _client(settings, runtime):
        yield client


@pytest_asyncio.fixture
async def live_portal(saga, settings, runtime):
    """The portal on the real order saga (numbers are held and orders run on the dev server)."""
    async for client in _client(settings, runtime):
        yield client


async def post_form(portal: httpx.AsyncClient, page_url: str, action: str, **fields: str) -> httpx.Response:
    page = await portal.get(page_url)
    assert page.status_code == 200, (page_url, page.status_code, page.text[:500])
    return await portal.post(action, data={**fields, "csrf_token": csrf_of(page)})


async def become_prospect(portal: httpx.AsyncClient, settings, plan: str | None = "PLAN_S") -> str:
    """A visitor picks a plan (or not), asks for a code for a new address and types it."""
    address = f"new-{uuid.uuid4().hex[:8]}@example.com"
    if plan:
        picked = await post_form(portal, f"/signup?plan={plan}", "/signup/plan", plan=plan)
        assert picked.headers["location"] == "/login"  # next: confirm an email address
    assert (await ask_code(portal, address)).headers["location"] == "/login/verify"
    [code] = signup_codes_sent_to(settings, address)
    verified = await enter_code(portal, code)
    assert verified.status_code == 303
    assert verified.headers["location"] == ("/signup/number" if plan else "/signup")
    return address


async def walk_to_review(
    portal: httpx.AsyncClient, settings, *, card: str = GOOD_CARD, promo: str = ""
) -> tuple[str, str]:
    """Plan → code → number → details → KYC → card → promo, as a person with JavaScript off."""
    address = await become_prospect(portal, settings)
    page = await portal.get("/signup/number")
    msisdn = re.findall(r'name="msisdn" value="(\d+)"', page.text)[0]
    held = await portal.post("/signup/number", data={"msisdn": msisdn, "csrf_token": csrf_of(page)})
    assert held.headers["location"] == "/signup/details", held.text
    details = await post_form(
        portal, "/signup/details", "/signup/details", given_name="Lin", family_name="Tan", mobile=""
    )
    assert details.headers["location"] == "/signup/kyc", details.text
    kyc = await post_form(
        portal,
        "/signup/kyc",
        "/signup/kyc",
        document_type="nric",
        document_number=f"S{uuid.uuid4().int % 10**7:07d}A",
        document_country="SG",
    )
    assert kyc.headers["location"] == "/signup/card", kyc.text
    carded = await post_form(
        portal, "/signup/card", "/signup/card", card_number=card, exp_month="12", exp_year="2035", key="k1"
    )
    assert carded.headers["location"] == "/signup/promo", carded.text
    promoted = await post_form(portal, "/signup/promo", "/signup/promo", code=promo)
    assert promoted.headers["location"] == "/signup/review"
    return msisdn, address


async def order_state(portal: httpx.AsyncClient, order_id: str, states: tuple[str, ...]) -> str:
    async def fetch() -> str:
        return (await portal.get(f"/signup/orders/{order_id}/status")).text

    text = await until(fetch, lambda t: any(f">{s}<" in t for s in states), timeout=30)
    assert any(f">{s}<" in text for s in states), text
    return text


async def test_an_unknown_email_gets_a_signup_code_like_a_customer_and_reaches_only_the_funnel(
    portal, runtime, settings
):
    _, known = await new_customer(runtime, "Ada")
    unknown = f"stranger-{uuid.uuid4().hex[:8]}@example.com"
    answers = []
    for address in (known, unknown):
        asked = await ask_code(portal, address)
        assert asked.status_code == 303, asked.text
        verify = await portal.get("/login/verify")
        answers.append(
            (asked.status_code, asked.headers["location"], verify.text.replace(address, "<email>"))
        )
    assert answers[0] == answers[1]  # nothing tells the visitor which address is a customer's
    assert len(codes_sent_to(settings, known)) == 1 and not signup_codes_sent_to(settings, known)
    [code] = signup_codes_sent_to(settings, unknown)
    assert not codes_sent_to(settings, unknown)  # the mail says it is for creating an account
    # The limits hold for new addresses as for customers': five codes an hour, then a 429.
    for _ in range(4):
        assert (await ask_code(portal, unknown)).status_code == 303
    assert (await ask_code(portal, unknown)).status_code == 429
    assert len(signup_codes_sent_to(settings, unknown)) == 5
    # The newest code opens a prospect's session: a verified email, no customer.
    assert (await enter_code(portal, code)).status_code == 422  # a newer code replaced the first
    verified = await enter_code(portal, signup_codes_sent_to(settings, unknown)[-1])
    assert verified.headers["location"] == "/signup"
    from domains.web.models import WebSession

    async with runtime.db() as s:
        row = await s.get(WebSession, hashlib.sha256(portal.cookies["bss_portal"].encode()).hexdigest())
        assert row.subject is None and row.email == unknown and row.authenticated_at is not None
    assert await scalar(runtime, "SELECT count(*) FROM crm.customer") == 1  # Ada only: nobody created yet

    # The prospect reaches the funnel only: no dashboard, no line page, no order.
    for page in ("/dashboard", "/lines/SUB-000001"):
        refused = await portal.get(page)
        assert refused.status_code == 303 and refused.headers["location"] == "/login", page
    landing = await portal.get("/")
    assert 'href="/signup?plan=PLAN_S"' in landing.text  # the plan cards lead into the funnel
    plans = await portal.get("/signup?plan=PLAN_M")
    assert plans.status_code == 200 and 'value="PLAN_M" required checked' in plans.text
    assert (await portal.get("/signup/orders/ORD-000001")).headers["location"] == "/signup"  # no orders yet
    # Later steps send a prospect back to the first one not done (here: the plan).
    assert (await portal.get("/signup/number")).headers["location"] == "/signup"
    picked = await post_form(portal, "/signup", "/signup/plan", plan="PLAN_M")
    assert picked.headers["location"] == "/signup/number"
    assert (await portal.get("/signup/kyc")).headers["location"] == "/signup/details"
    assert (await post_form(portal, "/signup", "/logout")).status_code == 303

    # A customer's code still leads to the dashboard.
    await ask_code(portal, known)
    code = codes_sent_to(settings, known)[-1]  # the second code asked for
    assert (await enter_code(portal, code)).headers["location"] == "/dashboard"
    assert (await portal.get("/dashboard")).status_code == 200
    # The funnel's forms need the session's CSRF token like every other form.
    assert (await portal.post("/signup/plan", data={"plan": "PLAN_S"})).status_code == 403


async def test_the_esim_qr_code_and_order_pages_are_404_for_another_customer(portal, runtime, settings):
    bob, bob_email = await new_customer(runtime, "Bob")
    order_id = await completed_order(runtime, bob)
    _, ada_email = await new_customer(runtime, "Ada")
    pages = [f"/signup/orders/{order_id}{tail}" for tail in ("/esim.png", "", "/status", "/done")]
    await ask_code(portal, ada_email)
    assert (await enter_code(portal, codes_sent_to(settings, ada_email)[-1])).status_code == 303
    for url in pages:
        stolen = await portal.get(url)
        assert stolen.status_code == 404 and not stolen.content.startswith(b"\x89PNG"), url
        assert "LPA:" not in stolen.text
    assert (await post_form(portal, "/dashboard", "/logout")).status_code == 303

    await ask_code(portal, bob_email)
    assert (await enter_code(portal, codes_sent_to(settings, bob_email)[-1])).status_code == 303
    qr = await portal.get(pages[0])
    activation = await scalar(
        runtime,
        "SELECT e.activation_code FROM inventory.esim_profile e JOIN subscription.subscription s"
        " ON s.iccid = e.iccid WHERE s.customer_id = :c",
        c=bob,
    )
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/png"
    assert qr.content == png_of(activation)
    done = await portal.get(pages[3])
    assert done.status_code == 200 and activation in done.text


async def completed_order(runtime, customer_id: str) -> str:
    """An order as the saga leaves it when it completes: its line, number and eSIM."""
    from core.db import transaction
    from domains.ordering import services as ordering
    from domains.payment.services import add_payment_method

    sub_id, _ = await new_line(runtime, customer_id)
    async with transaction(runtime.db) as s:
        await add_payment_method(
            s, CTX, customer_id=customer_id, card_number=GOOD_CARD, exp_month=12, exp_year=2099
        )
        order = await ordering.create_order(s, CTX, customer_id=customer_id, offering_id="PLAN_S")
        order.state, order.subscription_id = "completed", sub_id
        s.add(order)
        return order.id


def png_of(activation_code: str) -> bytes:
    out = io.BytesIO()
    segno.make(activation_code, error="m").save(out, kind="png", scale=6, border=2)
    return out.getvalue()


async def test_a_declined_card_fails_the_order_with_its_reason_then_one_customer_and_one_order(
    live_portal, runtime, settings
):
    portal = live_portal
    _, address = await walk_to_review(portal, settings, card=DECLINED_CARD, promo="NOSUCHCODE")
    page = await portal.get("/signup/review")
    assert "NOSUCHCODE" in page.text and "full price" in page.text  # told before ordering, as the API says
    placed = await portal.post("/signup/order", data={"csrf_token": csrf_of(page)})
    declined_order = placed.headers["location"].rsplit("/", 1)[-1]
    failed = await order_state(portal, declined_order, ("failed",))
    assert "Your card was declined." in failed and "nothing was charged" in failed
    assert "Use another card" in failed and "was not applied" in failed

    # Try again: a number again (the failed order gave it back), then another card first.
    progress = await portal.get(f"/signup/orders/{declined_order}")
    retry = await portal.post("/signup/retry", data={"csrf_token": csrf_of(progress)})
    assert retry.headers["location"] == "/signup/number"
    page = await portal.get("/signup/number")
    msisdn = re.findall(r'name="msisdn" value="(\d+)"', page.text)[0]
    held = await portal.post("/signup/number", data={"msisdn": msisdn, "csrf_token": csrf_of(page)})
    assert held.headers["location"] == "/signup/card"
    card_page = await portal.get("/signup/card")
    assert "was declined" in card_page.text
    card = {"card_number": GOOD_CARD, "exp_month": "1", "exp_year": "2036", "key": "k2"}
    carded = await portal.post("/signup/card", data={**card, "csrf_token": csrf_of(card_page)})
    assert carded.headers["location"] == "/signup/review"  # the promo step was done already

    # A resent details form never makes a second customer.
    page = await portal.get("/signup/review")
    again = await portal.post(
        "/signup/details", data={"given_name": "Lin", "family_name": "Tan", "csrf_token": csrf_of(page)}
    )
    assert again.headers["location"] == "/signup/review"
    assert await scalar(runtime, "SELECT count(*) FROM crm.customer") == 1
    customer_id = await scalar(runtime, "SELECT id FROM crm.customer")

    # A double submit of the order form: one order (the Idempotency-Key comes from the funnel).
    form = {"csrf_token": csrf_of(page)}
    first, second = await asyncio.gather(
        portal.post("/signup/order", data=form), portal.post("/signup/order", data=form)
    )
    assert first.headers["location"] == second.headers["location"]
    order_id = first.headers["location"].rsplit("/", 1)[-1]
    assert order_id != declined_order
    third = await portal.post("/signup/order", data=form)
    assert third.headers["location"] == f"/signup/orders/{order_id}"
    assert await scalar(runtime, "SELECT count(*) FROM ordering.product_order") == 2  # declined + this one
    assert (
        await scalar(
            runtime, "SELECT msisdn_preference FROM ordering.product_order WHERE id = :o", o=order_id
        )
        == msisdn
    )

    # Every write was the customer's (the email before the customer existed) on the portal's channel.
    async with runtime.engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT event_type, actor, channel FROM audit.domain_event WHERE event_type IN"
                " ('customer.created', 'order.acknowledged', 'payment_method.added')"
            )
        )
        rows = {(r[0], r[1], r[2]) for r in found.all()}
    assert rows == {
        ("customer.created", address, "portal-self-serve"),
        ("payment_method.added", customer_id, "portal-self-serve"),
        ("order.acknowledged", customer_id, "portal-self-serve"),
    }

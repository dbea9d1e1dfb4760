"""The signed-in customer's pages over HTTP (httpx against the app in-process, real Postgres): every
page and form of a line, an order, a case or a card answers 404 for another customer's id (checked
in ops/ownership.py) and sends a signed-out visitor to /login; step-up codes are required, bound to
the session and expire; cards are added, made default and removed; a case is opened and followed."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from core.clock import clock
from core.context import RequestContext
from tests.api.order_flow import scalar
from tests.portals.test_selfserve import (
    ask_code,
    codes_sent_to,
    csrf_of,
    enter_code,
    new_customer,
    new_line,
    portal,  # noqa: F401 - the fixture
)

CTX = RequestContext(actor="portal-test", channel="scenario", service_identity="test")
CARD = "4242424242424242"
OTHER_CARD = "5555555555554444"
PARAMS = ("sub_id", "order_id", "case_id", "pm_id")


def step_up_codes(settings: Any, address: str) -> list[str]:
    codes = []
    for path in sorted((settings.data_dir / "mailbox").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = email.message_from_bytes(path.read_bytes())
        if msg["To"] and address in msg["To"]:
            part = msg if not msg.is_multipart() else msg.get_payload(0)
            codes += re.findall(r"confirmation code is (\d{6})", part.get_payload(decode=True).decode())
    return codes


async def sign_in(client: httpx.AsyncClient, settings: Any, address: str) -> None:
    await ask_code(client, address)
    code = codes_sent_to(settings, address)[-1]
    assert (await enter_code(client, code)).headers["location"] == "/dashboard"


async def step_up(client: httpx.AsyncClient, settings: Any, address: str, page: str) -> str:
    """Ask for a step-up code from `page` (a confirm page) and return it (not yet entered)."""
    form = await client.get(page)
    sent = await client.post(
        "/step-up", data={"next": page, "purpose": "card_add", "csrf_token": csrf_of(form)}
    )
    assert sent.status_code == 303 and sent.headers["location"] == page
    return step_up_codes(settings, address)[-1]


def customer_routes() -> list[tuple[str, str]]:
    """(method, path) of every page and form of the signed-in customer (all the page modules)."""
    from portals.selfserve import lines, payments, stepup, support

    found = [("GET", "/dashboard")]
    for router in (lines.router, payments.router, support.router, stepup.router):
        for route in router.routes:
            for method in sorted(route.methods):
                found.append((method, route.path))
    return found


async def bobs_things(runtime) -> dict[str, str]:
    """Bob's line, card, order and case: what Ada must not reach."""
    from domains.ordering import services as ordering
    from ops.crm import open_case
    from ops.payment import add_payment_method

    bob, _ = await new_customer(runtime, "Bob")
    sub, msisdn = await new_line(runtime, bob)
    card, _ = await add_payment_method(
        runtime, CTX, customer_id=bob, card_number=OTHER_CARD, exp_month=12, exp_year=2099
    )
    from core.db import transaction

    async with transaction(runtime.db) as s:
        order = await ordering.create_order(s, CTX, customer_id=bob, offering_id="PLAN_M")
    case, _ = await open_case(runtime, CTX, customer_id=bob, subject="Bob's secret trouble")
    return {
        "sub_id": sub,
        "order_id": order.id,
        "case_id": case.case.id,
        "pm_id": card.id,
        "customer": bob,
        "msisdn": msisdn,
    }


async def test_every_customer_route_is_404_for_anothers_ids_and_login_for_nobody(portal, runtime, settings):  # noqa: F811
    bob = await bobs_things(runtime)
    routes = customer_routes()
    with_ids = [(m, p) for m, p in routes if any(f"{{{name}}}" in p for name in PARAMS)]
    assert {p for _, p in with_ids} >= {
        "/lines/{sub_id}",
        "/lines/{sub_id}/terminate",
        "/orders/{order_id}",
        "/cases/{case_id}",
        "/payment-methods/{pm_id}/remove",
    }

    # Nobody signed in: every page and every form sends the visitor to /login (a form posted
    # with a valid token of an anonymous session too; without any session the CSRF check refuses).
    login_page = await portal.get("/login")
    token = csrf_of(login_page)
    for method, path in routes:
        url = path.format(**bob)
        answer = await portal.request(method, url, data={"csrf_token": token} if method == "POST" else None)
        assert answer.status_code == 303 and answer.headers["location"] == "/login", (method, url)

    ada, ada_email = await new_customer(runtime, "Ada")
    await sign_in(portal, settings, ada_email)
    page = await portal.get("/dashboard")
    token = csrf_of(page)
    # Stepped up, so a refusal cannot be the step-up's: it is the ownership check.
    code = await step_up(portal, settings, ada_email, "/payment-methods/new")
    from ops.step_up import verify

    session_id = await scalar(
        runtime, "SELECT id FROM web.session WHERE subject = :c ORDER BY created_at DESC LIMIT 1", c=ada
    )
    await verify(runtime, CTX, ada, session_id, code, None)

    for method, path in with_ids:
        url = path.format(**bob)
        form = {
            "csrf_token": token,
            "confirm": "yes",
            "vas": "VAS_DATA_1GB",
            "offering": "PLAN_L",
            "text": "hi",
        }
        answer = await portal.request(method, url, data=form if method == "POST" else None)
        assert answer.status_code == 404, (method, url, answer.status_code)
        for secret in (bob["msisdn"], "Bob's secret trouble", bob["customer"], "4444"):
            assert secret not in answer.text, (method, url, secret)
        # A missing id is answered the same way.
        missing = path.format(
            sub_id="SUB-999999", order_id="ORD-999999", case_id="CASE-00000000", pm_id="PM-999999"
        )
        assert (
            await portal.request(method, missing, data=form if method == "POST" else None)
        ).status_code == 404

    # Nothing of Bob's moved.
    assert (
        await scalar(runtime, "SELECT state FROM subscription.subscription WHERE id = :s", s=bob["sub_id"])
        == "active"
    )
    assert (
        await scalar(runtime, "SELECT status FROM payment.payment_method WHERE id = :p", p=bob["pm_id"])
        == "active"
    )
    assert (
        await scalar(runtime, "SELECT count(*) FROM crm.case_note WHERE case_id = :c", c=bob["case_id"]) == 0
    )
    # And Ada's own lists do not show it.
    for listing in ("/orders", "/cases", "/payment-methods", "/messages", "/dashboard"):
        text = (await portal.get(listing)).text
        assert bob["order_id"] not in text and bob["case_id"] not in text and bob["msisdn"] not in text


async def test_cards_need_a_fresh_step_up_bound_to_the_session(portal, runtime, settings):  # noqa: F811
    from ops.ownership import own_payment_methods

    ada, address = await new_customer(runtime, "Ada")
    await sign_in(portal, settings, address)
    clock.freeze()
    form_page = await portal.get("/payment-methods/new")
    assert form_page.status_code == 200 and "Email me a code" in form_page.text
    card = {
        "card_number": CARD,
        "exp_month": "12",
        "exp_year": "2099",
        "key": "k1",
        "csrf_token": csrf_of(form_page),
    }

    # No step-up: refused, nothing added.
    refused = await portal.post("/payment-methods", data=card)
    assert refused.status_code == 403 and "one-time code" in refused.text
    assert await own_payment_methods(runtime, ada) == []

    code = await step_up(portal, settings, address, "/payment-methods/new")
    page = await portal.get("/payment-methods/new")
    assert "Email me a new code" in page.text, page.text[-3000:]
    assert 'name="code"' in page.text
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    refused = await portal.post("/payment-methods", data={**card, "code": wrong})
    assert refused.status_code == 422 and "4 tries left" in refused.text
    assert await own_payment_methods(runtime, ada) == []

    added = await portal.post("/payment-methods", data={**card, "code": code})
    assert added.status_code == 303 and added.headers["location"] == "/payment-methods"
    [first] = await own_payment_methods(runtime, ada)
    assert first.is_default and first.last4 == "4242"
    # Still fresh: a second card needs no new code.
    second = await portal.post("/payment-methods", data={**card, "card_number": OTHER_CARD, "key": "k2"})
    assert second.status_code == 303
    cards = await own_payment_methods(runtime, ada)
    other = next(c for c in cards if c.last4 == "4444")
    assert not other.is_default

    # Another session of the same customer is not stepped up by this one's code.
    async with httpx.AsyncClient(transport=portal._transport, base_url="http://portal.test") as phone:
        await sign_in(phone, settings, address)
        confirm = await phone.get(f"/payment-methods/{other.id}/default")
        assert confirm.status_code == 200 and "Mastercard •••• 4444" in confirm.text
        refused = await phone.post(
            f"/payment-methods/{other.id}/default", data={"csrf_token": csrf_of(confirm)}
        )
        assert refused.status_code == 403
    assert not (await own_payment_methods(runtime, ada))[1].is_default

    # The step-up lasts five minutes.
    clock.advance(timedelta(minutes=5, seconds=1))
    confirm = await portal.get(f"/payment-methods/{other.id}/default")
    assert "Charge top-ups, renewals and new orders to Mastercard •••• 4444" in confirm.text
    refused = await portal.post(f"/payment-methods/{other.id}/default", data={"csrf_token": csrf_of(confirm)})
    assert refused.status_code == 403
    code = await step_up(portal, settings, address, f"/payment-methods/{other.id}/default")
    made = await portal.post(
        f"/payment-methods/{other.id}/default", data={"csrf_token": csrf_of(confirm), "code": code}
    )
    assert made.status_code == 303
    assert (await own_payment_methods(runtime, ada))[0].id == other.id

    # Removing the default: the other card takes over.
    confirm = await portal.get(f"/payment-methods/{other.id}/remove")
    assert "Visa •••• 4242 becomes your default card" in confirm.text
    removed = await portal.post(f"/payment-methods/{other.id}/remove", data={"csrf_token": csrf_of(confirm)})
    assert removed.status_code == 303
    [left] = await own_payment_methods(runtime, ada)
    assert left.id == first.id and left.is_default
    again = await portal.post(f"/payment-methods/{other.id}/remove", data={"csrf_token": csrf_of(confirm)})
    assert again.status_code == 422 and "already removed" in again.text  # a sentence, not a 500

    # The messages page lists what was sent, but never a one-time code again.
    from ops.notify import send

    await send(runtime, "renewal_reminder", address, {"msisdn": "90000000"}, ada, key=f"t-{ada}")
    messages = await portal.get("/messages")
    assert messages.status_code == 200 and "<details" in messages.text
    assert f"code is {code}" not in messages.text and "confirmation code" not in messages.text.lower()

    actors = await scalar(
        runtime,
        "SELECT string_agg(DISTINCT actor || ' ' || channel, ',') FROM audit.domain_event"
        " WHERE event_type LIKE 'payment_method.%' AND payload->>'customerId' = :c",
        c=ada,
    )
    assert actors == f"{ada} portal-self-serve"


async def test_step_up_codes_burn_and_are_rate_limited(portal, runtime, settings):  # noqa: F811
    ada, address = await new_customer(runtime, "Ada")
    await sign_in(portal, settings, address)
    code = await step_up(portal, settings, address, "/payment-methods/new")
    page = await portal.get("/payment-methods/new")
    card = {"card_number": CARD, "exp_month": "12", "exp_year": "2099", "csrf_token": csrf_of(page)}
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert (await portal.post("/payment-methods", data={**card, "code": wrong})).status_code == 422
    burned = await portal.post("/payment-methods", data={**card, "code": wrong})
    assert "no longer works" in burned.text
    late = await portal.post("/payment-methods", data={**card, "code": code})
    assert late.status_code == 422  # the burned code's right value opens nothing
    for _ in range(4):  # five codes an hour
        await step_up(portal, settings, address, "/payment-methods/new")
    limited = await portal.post(
        "/step-up", data={"next": "/payment-methods/new", "csrf_token": csrf_of(page)}
    )
    assert limited.status_code == 303
    assert "Too many codes" in (await portal.get("/payment-methods/new")).text
    assert len(step_up_codes(settings, address)) == 5
    from ops.ownership import own_payment_methods

    assert await own_payment_methods(runtime, ada) == []


async def test_a_case_is_opened_and_followed(portal, runtime, settings):  # noqa: F811
    ada, address = await new_customer(runtime, "Ada")
    await sign_in(portal, settings, address)
    form = await portal.get("/cases/new")
    token = csrf_of(form)
    empty = await portal.post("/cases", data={"subject": " ", "csrf_token": token})
    assert empty.status_code == 422 and "Give your case a subject" in empty.text
    opened = await portal.post(
        "/cases",
        data={
            "subject": "No data abroad",
            "description": "In Japan since Monday.",
            "category": "technical",
            "key": "c1",
            "csrf_token": token,
        },
    )
    assert opened.status_code == 303
    case_url = opened.headers["location"]
    case_id = case_url.rsplit("/", 1)[1]
    again = await portal.post(
        "/cases",
        data={
            "subject": "No data abroad",
            "description": "In Japan since Monday.",
            "category": "technical",
            "key": "c1",
            "csrf_token": token,
        },
    )
    assert again.headers["location"] == case_url  # a double submit opens one case
    page = await portal.get(case_url)
    assert page.status_code == 200 and "No data abroad" in page.text and "open" in page.text
    noted = await portal.post(f"{case_url}/notes", data={"text": "It works in Korea.", "csrf_token": token})
    assert noted.status_code == 303
    page = await portal.get(case_url)
    assert "It works in Korea." in page.text and "Your message is added" in page.text
    assert case_id in (await portal.get("/cases")).text

    # The line's other pages answer for the owner (the actions themselves: test_selfserve_lines.py).
    sub, _ = await new_line(runtime, ada)
    assert "No usage" in (await portal.get(f"/lines/{sub}/usage")).text
    renew = await portal.get(f"/lines/{sub}/renew")
    assert renew.status_code == 200 and "no card on file" in renew.text  # and no button to press
    assert 'action="/lines/' not in renew.text.split("</main>")[0].split("What will happen")[1]
    plan = await portal.get(f"/lines/{sub}/plan?offering=PLAN_M")
    assert plan.status_code == 200 and "at its next renewal" in plan.text
    unknown = await portal.get(f"/lines/{sub}/plan?offering=NOPE")
    assert unknown.status_code == 422 and "pick one from the list" in unknown.text
    owner, channel, category = (
        await scalar(
            runtime,
            "SELECT c.customer_id || ' ' || e.channel || ' ' || c.category FROM crm.support_case c"
            " JOIN audit.domain_event e ON e.aggregate_id = c.id AND e.event_type = 'case.opened'"
            " WHERE c.id = :c",
            c=case_id,
        )
    ).split()
    assert (owner, channel, category) == (ada, "portal-self-serve", "technical")


@pytest.mark.parametrize(
    "target", ["https://evil.test/x", "//evil.test", "/\\evil.test", "javascript:alert(1)"]
)
def test_step_up_returns_only_to_this_site(target):
    from portals.selfserve.common import local_path

    assert local_path(target) == "/dashboard"
    assert (
        local_path("/lines/SUB-000001/topup?vas=VAS_DATA_1GB") == "/lines/SUB-000001/topup?vas=VAS_DATA_1GB"
    )

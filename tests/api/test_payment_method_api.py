"""TMF670 Payment Method over HTTP: cards are tokenized on arrival, answers hold token, last four
digits and brand (never the number), bad input writes nothing, Idempotency-Key replays."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from core.clock import clock
from tests import tmf_schema

BASE = "/tmf-api/paymentMethod/v4/paymentMethod"
CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
VISA = "4242424242424242"


async def snapshot(runtime) -> dict[str, int]:
    counts = {}
    async with runtime.engine.connect() as conn:
        for table in ("payment.payment_method", "payment.idempotency_key", "audit.domain_event"):
            counts[table] = (await conn.execute(text(f"select count(*) from {table}"))).scalar_one()
        counts["defaults"] = (
            await conn.execute(text("select count(*) from payment.payment_method where is_default"))
        ).scalar_one()
    return counts


def assert_tmf_error(r, status: int, reason: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["@type"] == "Error" and body["status"] == str(status)
    if reason:
        assert body["reason"] == reason


async def new_customer(api, email: str = "ada@example.com") -> str:
    r = await api.post(
        CUSTOMERS,
        json={
            "name": "Ada Lovelace",
            "contactMedium": [{"mediumType": "email", "characteristic": {"emailAddress": email}}],
        },
    )
    return r.json()["id"]


def card(customer_id: str, number: str = VISA, **extra) -> dict:
    return {
        "@type": "bankCard",
        "cardNumber": number,
        "expirationDate": "2030-12",
        "nameOnCard": "ADA LOVELACE",
        "relatedParty": [{"id": customer_id, "role": "customer", "@referredType": "Customer"}],
    } | extra


async def add(api, customer_id: str, **kw) -> dict:
    r = await api.post(BASE, json=card(customer_id, **kw))
    assert r.status_code == 201, r.text
    return r.json()


async def test_bank_card_is_answered_as_a_conformant_tokenized_card(api, runtime):
    customer_id = await new_customer(api)
    r = await api.post(BASE, json=card(customer_id, cvv="123"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert re.fullmatch(r"PM-\d{6}", body["id"]) and body["href"] == f"{BASE}/{body['id']}"
    assert body["@type"] == "tokenizedCard" and body["token"].startswith("tok_")
    assert (body["lastFourDigits"], body["brand"], body["isPreferred"]) == ("4242", "visa", True)
    assert body["expirationDate"] == "2030-12-31T23:59:59Z"
    assert body["relatedParty"]["id"] == customer_id
    assert VISA not in r.text and "123" not in str(body.get("cvv"))
    tmf_schema.assert_conforms("TMF670", "TokenizedCard", body)
    async with runtime.engine.connect() as conn:
        dump = "".join(r[0] for r in await conn.execute(text("select t::text from payment.payment_method t")))
    assert VISA not in dump
    # the customer shows its card on file
    customer = (await api.get(f"{CUSTOMERS}/{customer_id}")).json()
    assert [m["id"] for m in customer["paymentMethod"]] == [body["id"]]


async def test_decline_card_and_expiry_formats(api):
    customer_id = await new_customer(api)
    body = await add(api, customer_id, number="4000 0000 0000 0002", expirationDate="12/31")
    assert "DECLINE" in body["token"] and body["expirationDate"].startswith("2031-12-31")
    body = await add(api, customer_id, number="378282246310005", expirationDate="2032-02-15T00:00:00Z")
    assert body["brand"] == "amex" and body["expirationDate"] == "2032-02-29T23:59:59Z"


async def test_tokenized_card_is_accepted_as_is_with_a_single_related_party(api):
    customer_id = await new_customer(api)
    r = await api.post(
        BASE,
        json={
            "@type": "tokenizedCard",
            "token": "tok_from_psp_123",
            "lastFourDigits": "1111",
            "brand": "Visa",
            "expirationDate": "2031-01-31",
            "relatedParty": {"id": customer_id, "@referredType": "Customer"},
        },
    )
    assert r.status_code == 201, r.text
    assert (r.json()["token"], r.json()["lastFourDigits"], r.json()["brand"]) == (
        "tok_from_psp_123",
        "1111",
        "visa",
    )


async def test_idempotency_key_replays_the_same_method(api, runtime):
    customer_id = await new_customer(api)
    first = await api.post(BASE, json=card(customer_id), headers={"Idempotency-Key": "add-card-1"})
    before = await snapshot(runtime)
    second = await api.post(BASE, json=card(customer_id), headers={"Idempotency-Key": "add-card-1"})
    assert second.status_code == 201 and second.json()["id"] == first.json()["id"]
    assert second.json()["token"] == first.json()["token"]
    assert await snapshot(runtime) == before


async def _bad_bodies(customer_id: str) -> list[tuple[dict, int, str]]:
    return [
        (card(customer_id, number="4242424242424241"), 400, "payment_method.add.card_number_invalid"),
        (card(customer_id, number="4242"), 400, "payment_method.add.card_number_invalid"),
        (card(customer_id, number="4" * 24), 400, "request.invalid"),
        (card(customer_id, number=4242424242424242), 400, "request.invalid"),
        (card(customer_id, expirationDate="2020-01"), 422, "payment_method.add.card_not_expired"),
        (card(customer_id, expirationDate="13/30"), 400, "payment_method.add.expiry_invalid"),
        (card(customer_id, expirationDate="soon"), 400, "payment_method.add.expiry_invalid"),
        (card(customer_id, **{"@type": "cash"}), 400, "request.invalid"),
        (card(customer_id, nameOnCard="A" * 101), 400, "request.invalid"),
        (card(customer_id, cvv="12345"), 400, "request.invalid"),
        (card(customer_id, pin="0000"), 400, "request.invalid"),
        (card(customer_id, token="tok_abcdef"), 400, "payment_method.add.card_number_required"),
        (card("CUST-00000000"), 422, "payment_method.add.customer_exists"),
        (card(customer_id, relatedParty=[]), 400, "payment_method.add.customer_required"),
        ({k: v for k, v in card(customer_id).items() if k != "relatedParty"}, 400, "request.invalid"),
        ({k: v for k, v in card(customer_id).items() if k != "expirationDate"}, 400, "request.invalid"),
        (
            {
                "@type": "tokenizedCard",
                "token": VISA,
                "expirationDate": "2030-12",
                "relatedParty": {"id": customer_id},
            },
            400,
            "payment_method.add.token_invalid",
        ),
        (
            {"@type": "tokenizedCard", "expirationDate": "2030-12", "relatedParty": {"id": customer_id}},
            400,
            "payment_method.add.token_required",
        ),
    ]


async def test_bad_input_answers_a_tmf_error_and_writes_nothing(api, runtime):
    customer_id = await new_customer(api)
    for body, status, reason in await _bad_bodies(customer_id):
        before = await snapshot(runtime)
        r = await api.post(BASE, json=body)
        assert_tmf_error(r, status, reason)
        assert VISA not in r.text
        assert await snapshot(runtime) == before, body


async def test_sixth_card_and_suspended_customer_are_refused(api, runtime):
    customer_id = await new_customer(api)
    for _ in range(5):
        await add(api, customer_id)
    before = await snapshot(runtime)
    assert_tmf_error(
        await api.post(BASE, json=card(customer_id)), 422, "payment_method.add.at_most_n_methods"
    )
    other = await new_customer(api, "bob@example.com")
    await api.patch(f"{CUSTOMERS}/{other}", json={"status": "suspended"})
    before = await snapshot(runtime)
    assert_tmf_error(
        await api.post(BASE, json=card(other)), 422, "payment_method.add.customer_active_or_pending"
    )
    assert await snapshot(runtime) == before


async def test_expiry_follows_the_business_clock(api):
    from datetime import UTC, datetime

    customer_id = await new_customer(api)
    clock.freeze(datetime(2031, 1, 2, tzinfo=UTC))
    assert_tmf_error(await api.post(BASE, json=card(customer_id)), 422, "payment_method.add.card_not_expired")


async def test_list_get_set_default_and_delete(api, runtime):
    customer_id = await new_customer(api)
    other_id = await new_customer(api, "bob@example.com")
    first = await add(api, customer_id)
    second = await add(api, customer_id, number="5555555555554444")
    await add(api, other_id)

    r = await api.get(BASE, params={"relatedParty.id": customer_id})
    assert [m["id"] for m in r.json()] == [first["id"], second["id"]] and r.headers["X-Total-Count"] == "2"
    r = await api.get(BASE, params={"customerId": customer_id, "limit": 1})
    assert r.headers["X-Result-Count"] == "1"
    for m in (await api.get(BASE)).json():
        tmf_schema.assert_conforms("TMF670", "TokenizedCard", m)

    r = await api.post(f"{BASE}/{second['id']}/setDefault")
    assert r.status_code == 200 and r.json()["isPreferred"] is True
    assert (await api.get(f"{BASE}/{first['id']}")).json()["isPreferred"] is False

    r = await api.delete(f"{BASE}/{second['id']}")
    assert r.status_code == 204 and not r.content
    assert (await api.get(f"{BASE}/{first['id']}")).json()["isPreferred"] is True  # promoted
    removed = (await api.get(f"{BASE}/{second['id']}")).json()
    assert removed["status"] == "removed"
    r = await api.get(BASE, params={"customerId": customer_id, "status": "removed"})
    assert [m["id"] for m in r.json()] == [second["id"]]
    async with runtime.engine.connect() as conn:
        events = (
            (
                await conn.execute(
                    text("select event_type from audit.domain_event where aggregate_id = :id order by id"),
                    {"id": second["id"]},
                )
            )
            .scalars()
            .all()
        )
    assert events == ["payment_method.added", "payment_method.default_set", "payment_method.removed"]


@pytest.mark.parametrize(
    ("method", "path", "status", "reason"),
    [
        ("GET", f"{BASE}/PM-999999", 404, "payment_method.not_found"),
        ("DELETE", f"{BASE}/PM-999999", 404, "payment_method.remove.not_found"),
        ("POST", f"{BASE}/PM-999999/setDefault", 404, "payment_method.set_default.not_found"),
        ("GET", f"{BASE}/" + "P" * 33, 400, "request.invalid"),
        ("GET", f"{BASE}?status=lost", 400, "status.invalid"),
        (
            "GET",
            f"{BASE}?relatedParty.id=CUST-1&customerId=CUST-2",
            400,
            "payment_method.list.customer_conflict",
        ),
    ],
)
async def test_unknown_ids_and_bad_filters(api, runtime, method, path, status, reason):
    before = await snapshot(runtime)
    assert_tmf_error(await api.request(method, path), status, reason)
    assert await snapshot(runtime) == before


async def test_deleting_twice_is_a_422(api, runtime):
    customer_id = await new_customer(api)
    method = await add(api, customer_id)
    assert (await api.delete(f"{BASE}/{method['id']}")).status_code == 204
    before = await snapshot(runtime)
    assert_tmf_error(await api.delete(f"{BASE}/{method['id']}"), 422, "payment_method.remove.already_removed")
    assert_tmf_error(
        await api.post(f"{BASE}/{method['id']}/setDefault"), 422, "payment_method.set_default.removed"
    )
    assert await snapshot(runtime) == before

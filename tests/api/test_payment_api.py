"""TMF676 Payment (read) over HTTP: conformance to the official schema, filters and paging, and
TMF error bodies for bad input."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from domains.payment import charges
from domains.payment.mock_gateway import MockGateway
from domains.payment.models import PaymentMethod
from tests import tmf_schema

BASE = "/tmf-api/paymentManagement/v4/payment"
SAGA = RequestContext(actor="workflow:order-ORD-000001", channel="system", service_identity="worker")
ALICE, BOB = "CUST-0000aaaa", "CUST-0000bbbb"


async def add_card(runtime, pm_id: str, customer_id: str, token: str) -> None:
    async with transaction(runtime.db) as s:
        s.add(
            PaymentMethod(
                id=pm_id,
                customer_id=customer_id,
                token=token,
                last4="4242",
                brand="visa",
                exp_month=12,
                exp_year=2099,
                is_default=True,
                status="active",
                created_at=clock.now(),
            )
        )


async def charge(runtime, gateway, customer_id: str, key: str, amount: str = "25.00", purpose="activation"):
    async with transaction(runtime.db) as s:
        return await charges.charge(
            s,
            SAGA,
            customer_id=customer_id,
            amount=Decimal(amount),
            currency="SGD",
            purpose=purpose,
            idempotency_key=key,
            gateway=gateway,
        )


@pytest.fixture
async def payments(runtime):
    """Alice: an approved activation, a refunded top-up; Bob: a declined activation."""
    gateway = MockGateway(runtime.db)
    await add_card(runtime, "PM-000001", ALICE, "tok_alice")
    await add_card(runtime, "PM-000002", BOB, "tok_DECLINE_bob")
    approved = await charge(runtime, gateway, ALICE, "order-ORD-000001:activation")
    topup = await charge(runtime, gateway, ALICE, "subscription-SUB-000001:vas-1", "3.00", "vas")
    async with transaction(runtime.db) as s:
        refunded = await charges.refund(s, SAGA, idempotency_key=topup.idempotency_key, gateway=gateway)
    declined = await charge(runtime, gateway, BOB, "order-ORD-000002:activation", "45.00")
    return {"approved": approved, "refunded": refunded, "declined": declined}


async def test_a_payment_conforms_to_tmf676(api, payments):
    p = payments["approved"]
    r = await api.get(f"{BASE}/{p.id}")
    assert r.status_code == 200
    body = r.json()
    tmf_schema.assert_conforms("TMF676", "Payment", body)
    assert body["id"] == p.id and body["href"] == f"{BASE}/{p.id}" and body["@type"] == "Payment"
    assert body["status"] == "approved"
    assert body["amount"] == {"unit": "SGD", "value": 25.0}
    assert body["paymentMethod"]["id"] == "PM-000001"
    assert body["account"]["id"] == ALICE and body["payer"]["id"] == ALICE
    assert body["authorizationCode"] == p.gateway_ref
    assert body["correlatorId"] == "order-ORD-000001:activation"
    assert body["purpose"] == "activation"


async def test_declined_and_refunded_payments_show_why(api, payments):
    declined = (await api.get(f"{BASE}/{payments['declined'].id}")).json()
    tmf_schema.assert_conforms("TMF676", "Payment", declined)
    assert declined["status"] == "declined"
    assert declined["declineCode"] == "card_declined"
    assert declined["declineReason"] == "card_declined_by_issuer"
    assert "authorizationCode" not in declined
    refunded = (await api.get(f"{BASE}/{payments['refunded'].id}")).json()
    tmf_schema.assert_conforms("TMF676", "Payment", refunded)
    assert refunded["status"] == "refunded" and refunded["refundReference"].startswith("re_")
    assert refunded["amount"]["value"] == 3.0


async def test_list_filters_by_customer_and_pages_with_counts(api, payments):
    r = await api.get(BASE, params={"customerId": ALICE})
    assert r.status_code == 200
    assert r.headers["X-Total-Count"] == "2" and r.headers["X-Result-Count"] == "2"
    ids = [p["id"] for p in r.json()]
    assert ids == [payments["refunded"].id, payments["approved"].id]  # newest first
    for body in r.json():
        tmf_schema.assert_conforms("TMF676", "Payment", body)

    r = await api.get(BASE, params={"relatedParty.id": BOB})
    assert [p["id"] for p in r.json()] == [payments["declined"].id]

    r = await api.get(BASE, params={"offset": 1, "limit": 1})
    assert r.headers["X-Total-Count"] == "3" and r.headers["X-Result-Count"] == "1"
    assert [p["id"] for p in r.json()] == [payments["refunded"].id]

    r = await api.get(BASE, params={"status": "declined"})
    assert [p["id"] for p in r.json()] == [payments["declined"].id]

    r = await api.get(BASE, params={"customerId": "CUST-ffffffff"})
    assert r.status_code == 200 and r.json() == [] and r.headers["X-Total-Count"] == "0"


async def test_fields_selects_attributes(api, payments):
    r = await api.get(BASE, params={"fields": "status,amount"})
    assert r.status_code == 200
    for body in r.json():
        assert set(body) == {"id", "href", "@type", "status", "amount"}
    one = (await api.get(f"{BASE}/{payments['approved'].id}", params={"fields": "status"})).json()
    assert set(one) == {"id", "href", "@type", "status"}


async def test_unknown_payment_is_a_tmf_404(api, payments):
    r = await api.get(f"{BASE}/PAY-999999")
    assert r.status_code == 404
    body = r.json()
    assert body["@type"] == "Error" and body["reason"] == "payment.not_found" and body["status"] == "404"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": "abc"},
        {"limit": 100000},
        {"offset": -1},
        {"status": "paid"},
        {"customerId": "C" * 100},
    ],
)
async def test_bad_list_parameters_are_a_tmf_400(api, payments, params):
    r = await api.get(BASE, params=params)
    assert r.status_code == 400, r.text
    assert r.json()["@type"] == "Error" and r.json()["status"] == "400"


async def test_an_overlong_id_is_a_400(api):
    r = await api.get(f"{BASE}/{'P' * 100}")
    assert r.status_code == 400 and r.json()["@type"] == "Error"


async def test_payments_cannot_be_created_or_deleted_over_http(api, payments, runtime):
    async with runtime.db() as s:
        before = (await charges.list_payments(s))[1]
    post = await api.post(BASE, json={"amount": {"unit": "SGD", "value": 1}})
    delete = await api.delete(f"{BASE}/{payments['approved'].id}")
    assert post.status_code == 405 and delete.status_code == 405
    assert post.json()["@type"] == "Error"
    async with runtime.db() as s:
        assert (await charges.list_payments(s))[1] == before

"""TMF629 Customer, TMF632 Individual and the KYC attestation endpoint over HTTP: shapes conform to
the TMF definitions, bad input answers a TMF error and writes nothing, Idempotency-Key replays."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests import tmf_schema
from tests.conftest import token_headers

BASE = "/tmf-api/customerManagement/v4/customer"
PARTY = "/tmf-api/party/v4/individual"
KYC = "/bss-api/v1/customer/{}/kyc-attestation"
DOC = "S7654321Z"


def customer_body(email: str = "ada@example.com", phone: str | None = "+6591234567", **extra) -> dict:
    media = [{"mediumType": "email", "characteristic": {"emailAddress": email}}]
    if phone:
        media.append({"mediumType": "mobile", "characteristic": {"phoneNumber": phone}})
    return {"name": "Ada Lovelace", "contactMedium": media} | extra


async def snapshot(runtime) -> dict[str, int]:
    """Row counts of every table this API may write: unchanged means nothing was written."""
    counts = {}
    async with runtime.engine.connect() as conn:
        for table in (
            "crm.party",
            "crm.individual",
            "crm.contact_medium",
            "crm.customer",
            "crm.customer_identity",
            "crm.idempotency_key",
            "audit.domain_event",
        ):
            counts[table] = (await conn.execute(text(f"select count(*) from {table}"))).scalar_one()
    return counts


def assert_tmf_error(r, status: int, reason: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["@type"] == "Error" and body["status"] == str(status)
    assert {"code", "reason", "message", "referenceError"} <= body.keys()
    if reason:
        assert body["reason"] == reason
    return body


async def create(api, **kw) -> dict:
    r = await api.post(BASE, json=customer_body(**kw))
    assert r.status_code == 201, r.text
    return r.json()


# ------------------------------------------------------------------------------------------ create


async def test_create_answers_201_with_a_conformant_customer(api):
    body = await create(api)
    assert body["id"].startswith("CUST-") and body["href"] == f"{BASE}/{body['id']}"
    assert body["status"] == "active" and body["name"] == "Ada Lovelace"
    assert body["engagedParty"]["@referredType"] == "Individual"
    assert {m["mediumType"]: m["characteristic"] for m in body["contactMedium"]} == {
        "email": {"contactType": "email", "emailAddress": "ada@example.com"},
        "mobile": {"contactType": "mobile", "phoneNumber": "+6591234567"},
    }
    assert {c["name"]: c["value"] for c in body["characteristic"]}["kycStatus"] == "not_verified"
    tmf_schema.assert_conforms("TMF629", "Customer", body)


async def test_create_takes_names_from_an_individual_object(api):
    body = customer_body(name="ignored")
    body["individual"] = {"givenName": "Augusta Ada", "familyName": "King", "birthDate": "1815-12-10"}
    r = await api.post(BASE, json=body)
    assert r.status_code == 201, r.text
    party = (await api.get(r.json()["engagedParty"]["href"])).json()
    assert (party["givenName"], party["familyName"]) == ("Augusta Ada", "King")
    assert party["birthDate"].startswith("1815-12-10")


async def test_create_derives_names_from_engaged_party_name(api):
    body = customer_body()
    del body["name"]
    body["engagedParty"] = {"name": "Grace Brewster Hopper", "@referredType": "Individual"}
    r = await api.post(BASE, json=body)
    party = (await api.get(r.json()["engagedParty"]["href"])).json()
    assert (party["givenName"], party["familyName"]) == ("Grace Brewster", "Hopper")


async def test_create_audit_row_carries_actor_channel_and_service(api, runtime):
    # A channel token (a portal, the agent) names the person it acts for; the audit row keeps both.
    headers = await token_headers(runtime, "cockpit", "channel", actor="ops-ann")
    r = await api.post(BASE, json=customer_body(), headers={**headers, "X-BSS-Channel": "cli"})
    async with runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "select actor, channel, service_identity from audit.domain_event where aggregate_id = :id"
                ),
                {"id": r.json()["id"]},
            )
        ).one()
    assert tuple(row) == ("ops-ann", "cli", "cockpit")


async def test_idempotency_key_replays_the_same_customer(api, runtime):
    headers = {"Idempotency-Key": "signup-7f3a"}
    first = await api.post(BASE, json=customer_body(), headers=headers)
    before = await snapshot(runtime)
    second = await api.post(BASE, json=customer_body(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"] and second.headers["Idempotent-Replayed"] == "true"
    assert await snapshot(runtime) == before


async def test_concurrent_requests_with_one_idempotency_key_create_one_customer(api, runtime):
    import asyncio

    replies = await asyncio.gather(
        *(api.post(BASE, json=customer_body(), headers={"Idempotency-Key": "race-1"}) for _ in range(4))
    )
    assert {r.status_code for r in replies} == {201}
    assert len({r.json()["id"] for r in replies}) == 1
    assert (await snapshot(runtime))["crm.customer"] == 1


async def test_idempotency_key_reused_for_another_request_is_refused(api, runtime):
    await api.post(BASE, json=customer_body(), headers={"Idempotency-Key": "k1"})
    before = await snapshot(runtime)
    r = await api.post(BASE, json=customer_body(email="bob@example.com"), headers={"Idempotency-Key": "k1"})
    assert_tmf_error(r, 422, "idempotency_key.reused")
    assert await snapshot(runtime) == before


BAD_CREATES = [
    ({"name": "Ada"}, 422, "customer.create.requires_contact_medium"),
    ({"contactMedium": customer_body()["contactMedium"]}, 400, "customer.create.name_required"),
    (customer_body(email="nope"), 400, "customer.contact_medium.email_invalid"),
    (customer_body(phone="12ab"), 400, "customer.contact_medium.phone_invalid"),
    (customer_body(name="x" * 201), 400, "request.invalid"),
    (customer_body(email="a" * 250 + "@example.com"), 400, "request.invalid"),
    (customer_body(name=42), 400, "request.invalid"),
    (customer_body(contactMedium="email"), 400, "request.invalid"),
    (customer_body(nickname="Ada"), 400, "request.invalid"),
    (customer_body(status="closed"), 400, "request.invalid"),
    (
        customer_body(engagedParty={"id": "PTY-00000000", "@referredType": "Individual"}),
        400,
        "customer.create.engaged_party_must_be_new",
    ),
    (customer_body(individual={"givenName": "A" * 101}), 400, "request.invalid"),
    (customer_body(individual={"givenName": "Ada", "birthDate": "last tuesday"}), 400, "request.invalid"),
    (
        {"name": "Ada", "contactMedium": [{"mediumType": "fax", "characteristic": {"faxNumber": "1"}}]},
        400,
        "customer.contact_medium.unknown",
    ),
    (
        {
            "name": "Ada",
            "contactMedium": [{"mediumType": "email", "characteristic": {"emailAdress": "a@b.co"}}],
        },
        400,
        "request.invalid",
    ),
    (
        {"name": "Ada", "contactMedium": [{"mediumType": "email", "characteristic": {}}]},
        400,
        "customer.contact_medium.email_invalid",
    ),
]


@pytest.mark.parametrize(("body", "status", "reason"), BAD_CREATES)
async def test_bad_creates_answer_a_tmf_error_and_write_nothing(api, runtime, body, status, reason):
    before = await snapshot(runtime)
    assert_tmf_error(await api.post(BASE, json=body), status, reason)
    assert await snapshot(runtime) == before


async def test_malformed_json_is_a_400(api, runtime):
    before = await snapshot(runtime)
    r = await api.post(BASE, content=b"{not json", headers={"Content-Type": "application/json"})
    assert_tmf_error(r, 400)
    assert await snapshot(runtime) == before


async def test_duplicate_email_is_a_422_and_writes_nothing(api, runtime):
    await create(api)
    before = await snapshot(runtime)
    r = await api.post(BASE, json=customer_body(email="ADA@example.com"))
    assert_tmf_error(r, 422, "customer.create.email_unique")
    assert await snapshot(runtime) == before


# -------------------------------------------------------------------------------------------- read


async def test_get_and_list_with_filters_and_paging(api):
    ada = await create(api)
    bob = await create(api, email="bob@example.com")
    await api.patch(f"{BASE}/{bob['id']}", json={"name": "Bob Builder", "status": "suspended"})
    got = await api.get(f"{BASE}/{ada['id']}")
    assert got.status_code == 200 and got.json()["id"] == ada["id"]
    tmf_schema.assert_conforms("TMF629", "Customer", got.json())

    r = await api.get(BASE, params={"status": "suspended"})
    assert [c["id"] for c in r.json()] == [bob["id"]] and r.headers["X-Total-Count"] == "1"
    r = await api.get(BASE, params={"name": "lovel"})
    assert [c["id"] for c in r.json()] == [ada["id"]]
    r = await api.get(BASE, params={"email": "BOB@example.com"})
    assert [c["id"] for c in r.json()] == [bob["id"]]
    r = await api.get(BASE, params={"limit": 1, "fields": "name"})
    assert r.headers["X-Total-Count"] == "2" and r.headers["X-Result-Count"] == "1"
    assert set(r.json()[0]) == {"id", "href", "@type", "name"}
    for c in (await api.get(BASE)).json():
        tmf_schema.assert_conforms("TMF629", "Customer", c)


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        (f"{BASE}/CUST-00000000", None, 404),
        (f"{BASE}/" + "x" * 65, None, 400),
        (BASE, {"status": "asleep"}, 400),
        (BASE, {"limit": 0}, 400),
        (BASE, {"limit": "many"}, 400),
        (BASE, {"name": "x" * 201}, 400),
        (f"{PARTY}/PTY-00000000", None, 404),
    ],
)
async def test_bad_reads_answer_a_tmf_error(api, path, params, status):
    assert_tmf_error(await api.get(path, params=params), status)


async def test_individual_conforms_to_tmf632(api):
    customer = await create(api)
    r = await api.get(customer["engagedParty"]["href"])
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == customer["engagedParty"]["id"] and body["status"] == "initialized"
    assert body["relatedParty"][0]["id"] == customer["id"]
    tmf_schema.assert_conforms("TMF632", "Individual", body)


# ------------------------------------------------------------------------------------------- patch


async def test_patch_changes_status_name_and_phone(api):
    customer = await create(api)
    r = await api.patch(
        f"{BASE}/{customer['id']}",
        json={
            "status": "suspended",
            "statusReason": "fraud check",
            "individual": {"familyName": "King"},
            "contactMedium": [{"mediumType": "mobile", "characteristic": {"phoneNumber": "+6580000000"}}],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "suspended" and body["statusReason"] == "fraud check"
    assert body["name"] == "Ada King"
    active = [m for m in body["contactMedium"] if "endDateTime" not in m["validFor"]]
    assert {m["characteristic"].get("phoneNumber") for m in active} == {None, "+6580000000"}
    tmf_schema.assert_conforms("TMF629", "Customer", body)


@pytest.mark.parametrize(
    ("patch", "status", "reason"),
    [
        ({}, 400, "customer.update.no_fields"),
        ({"status": "asleep"}, 400, "customer.update.status_invalid"),
        ({"status": "pending"}, 422, "customer.transition.invalid"),
        ({"statusReason": "x" * 501}, 400, "request.invalid"),
        ({"colour": "blue"}, 400, "request.invalid"),
        (
            {
                "contactMedium": [
                    {"mediumType": "email", "characteristic": {"emailAddress": "new@example.com"}}
                ]
            },
            422,
            "customer.contact_medium.email_must_use_change_flow",
        ),
    ],
)
async def test_bad_patches_answer_a_tmf_error_and_write_nothing(api, runtime, patch, status, reason):
    customer = await create(api)
    before = await snapshot(runtime)
    assert_tmf_error(await api.patch(f"{BASE}/{customer['id']}", json=patch), status, reason)
    assert await snapshot(runtime) == before
    assert (await api.get(f"{BASE}/{customer['id']}")).json() == customer | {"paymentMethod": []}


async def test_patch_unknown_customer_is_404(api):
    assert_tmf_error(
        await api.patch(f"{BASE}/CUST-00000000", json={"status": "active"}), 404, "customer.not_found"
    )


async def test_closed_customer_cannot_be_reopened(api):
    customer = await create(api)
    assert (await api.patch(f"{BASE}/{customer['id']}", json={"status": "closed"})).status_code == 200
    assert_tmf_error(
        await api.patch(f"{BASE}/{customer['id']}", json={"status": "active"}),
        422,
        "customer.update.customer_closed",
    )


# --------------------------------------------------------------------------------------------- KYC


def kyc_body(**kw) -> dict:
    return {
        "documentType": "nric",
        "documentNumber": DOC,
        "documentCountry": "SG",
        "verifiedBy": "myinfo",
    } | kw


def signed(settings, customer_id: str, body: dict) -> dict:
    """The body with the development KYC provider's signature (ops/kyc.py), as a channel sends it."""
    from ops.kyc import dev_sign

    return body | {"signature": dev_sign(settings, body | {"customerId": customer_id})}


async def test_kyc_attestation_answers_status_and_hash_prefix_never_the_number(api, settings):
    customer = await create(api)
    r = await api.post(
        KYC.format(customer["id"]),
        json=signed(settings, customer["id"], kyc_body(attestation={"documentNumber": DOC, "ok": True})),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["kycStatus"] == "verified" and len(body["documentHashPrefix"]) == 12
    assert DOC not in r.text
    after = (await api.get(f"{BASE}/{customer['id']}")).json()
    assert {c["name"]: c["value"] for c in after["characteristic"]}["kycStatus"] == "verified"
    party = (await api.get(customer["engagedParty"]["href"])).json()
    assert party["status"] == "validated" and DOC not in str(party)
    tmf_schema.assert_conforms("TMF632", "Individual", party)


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (kyc_body(documentType="library_card"), 400, "request.invalid"),
        (kyc_body(documentNumber=""), 400, "request.invalid"),
        (kyc_body(documentNumber="x" * 41), 400, "request.invalid"),
        (kyc_body(documentCountry="S"), 400, "request.invalid"),
        (kyc_body(documentCountry="12"), 400, "customer.attest_kyc.country_invalid"),
        (kyc_body(documentNumber=" -- "), 400, "customer.attest_kyc.document_required"),
        ({"documentType": "nric"}, 400, "request.invalid"),
        (kyc_body(extra=1), 400, "request.invalid"),
    ],
)
async def test_bad_kyc_attestations_write_nothing(api, runtime, settings, body, status, reason):
    customer = await create(api)
    before = await snapshot(runtime)
    body = signed(settings, customer["id"], body)  # a well-signed attestation of a bad document
    assert_tmf_error(await api.post(KYC.format(customer["id"]), json=body), status, reason)
    assert await snapshot(runtime) == before


async def test_kyc_for_unknown_customer_is_404_and_reused_document_is_422(api, runtime, settings):
    unknown = "CUST-00000000"
    assert_tmf_error(await api.post(KYC.format(unknown), json=signed(settings, unknown, kyc_body())), 404)
    ada, bob = await create(api), await create(api, email="bob@example.com")
    r = await api.post(KYC.format(ada["id"]), json=signed(settings, ada["id"], kyc_body()))
    assert r.status_code == 201
    before = await snapshot(runtime)
    r = await api.post(
        KYC.format(bob["id"]), json=signed(settings, bob["id"], kyc_body(documentNumber=DOC.lower()))
    )
    assert_tmf_error(r, 422, "customer.attest_kyc.document_hash_unique_per_tenant")
    assert await snapshot(runtime) == before


async def test_a_customer_with_a_live_line_cannot_be_closed(api, runtime):
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from core.db import transaction
    from domains.subscription.models import Subscription

    customer = await create(api)
    now = datetime.now(UTC)
    async with transaction(runtime.db) as s:
        s.add(
            Subscription(
                id="SUB-900001",
                customer_id=customer["id"],
                offering_id="PLAN_M",
                order_id="ORD-900001",
                msisdn="90000999",
                iccid="8910101000000000999",
                state="active",
                current_period_start=now,
                current_period_end=now + timedelta(days=30),
                price_id="PRICE_PLAN_M",
                price_amount=Decimal("25.00"),
                price_currency="SGD",
                created_at=now,
                updated_at=now,
            )
        )
    before = await snapshot(runtime)
    r = await api.patch(f"{BASE}/{customer['id']}", json={"status": "closed"})
    assert_tmf_error(r, 422, "customer.close.no_active_subscriptions")
    assert r.json()["context"]["subscription_ids"] == ["SUB-900001"]
    assert await snapshot(runtime) == before
    assert (await api.patch(f"{BASE}/{customer['id']}", json={"status": "suspended"})).status_code == 200

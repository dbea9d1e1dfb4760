"""Signed KYC: an attestation is stored only when the provider's signature verifies (over the
attested fields and the customer id), the document number is kept as a keyed hash only, and
BSS_REQUIRE_KYC refuses an order for a customer without a verified attestation."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from sqlalchemy import text

from domains.crm import kyc
from tests.api.order_flow import ORDERS, customer, order_body
from tests.api.test_customer_api import KYC, assert_tmf_error, create, kyc_body, signed, snapshot


async def test_unsigned_forged_or_misdirected_attestations_store_nothing(api, runtime, settings):
    ada, bob = await create(api), await create(api, email="bob@example.com")
    good = signed(settings, ada["id"], kyc_body())
    before = await snapshot(runtime)
    cases = [
        (kyc_body(), "kyc.attestation.uncorroborated"),
        (good | {"documentNumber": "S0000000A"}, "kyc.attestation.signature_invalid"),  # tampered
        (good | {"signature": "not base64!"}, "kyc.attestation.signature_invalid"),
        (good | {"signature": base64.b64encode(b"x" * 64).decode()}, "kyc.attestation.signature_invalid"),
    ]
    for body, code in cases:
        assert_tmf_error(await api.post(KYC.format(ada["id"]), json=body), 422, code)
    # Ada's signed attestation replayed for Bob.
    assert_tmf_error(
        await api.post(KYC.format(bob["id"]), json=good), 422, "kyc.attestation.signature_invalid"
    )
    assert await snapshot(runtime) == before
    assert (await api.post(KYC.format(ada["id"]), json=good)).status_code == 201


async def test_a_configured_provider_key_is_the_only_one_trusted(api, runtime, settings):
    provider = Ed25519PrivateKey.generate()
    settings.kyc_public_key = kyc.public_key_b64(provider.public_key())
    ada = await create(api)
    body = kyc_body(reference="provider-ref-1")
    r = await api.post(KYC.format(ada["id"]), json=signed(settings, ada["id"], body))  # the dev key
    assert_tmf_error(r, 422, "kyc.attestation.signature_invalid")
    by_provider = body | {"signature": kyc.sign(provider, body | {"customerId": ada["id"]})}
    r = await api.post(KYC.format(ada["id"]), json=by_provider)
    assert r.status_code == 201, r.text
    assert r.json()["kycReference"] == "provider-ref-1"
    settings.kyc_public_key = "not a key"  # misconfigured: a clear 503, never a 500
    before = await snapshot(runtime)
    assert_tmf_error(await api.post(KYC.format(ada["id"]), json=by_provider), 503, "kyc.provider_key.invalid")
    assert await snapshot(runtime) == before


async def test_the_document_number_is_kept_as_an_hmac_with_the_server_secret(api, runtime, settings):
    import hashlib
    import hmac

    settings.kyc_hmac_secret = SecretStr("server-secret-for-test")
    ada = await create(api)
    assert (
        await api.post(KYC.format(ada["id"]), json=signed(settings, ada["id"], kyc_body()))
    ).status_code == 201
    async with runtime.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("select document_number_hash from crm.customer_identity where customer_id = :c"),
                {"c": ada["id"]},
            )
        ).scalar_one()
    number = kyc_body()["documentNumber"]
    assert stored == hmac.new(b"server-secret-for-test", f"{number}|SG".encode(), hashlib.sha256).hexdigest()
    assert stored not in {hashlib.sha256(v.encode()).hexdigest() for v in (number, f"{number}|SG")}


async def test_require_kyc_refuses_an_order_until_the_customer_is_verified(api, runtime, settings):
    settings.require_kyc = True
    cust = await customer(runtime)
    async with runtime.engine.connect() as conn:
        orders_before = (await conn.execute(text("select count(*) from ordering.product_order"))).scalar_one()
    assert_tmf_error(await api.post(ORDERS, json=order_body(cust)), 422, "order.create.kyc_required")
    async with runtime.engine.connect() as conn:
        assert (
            await conn.execute(text("select count(*) from ordering.product_order"))
        ).scalar_one() == orders_before
    r = await api.post(KYC.format(cust), json=signed(settings, cust, kyc_body()))
    assert r.status_code == 201, r.text
    r = await api.post(ORDERS, json=order_body(cust))
    assert r.status_code == 201, r.text

"""KYC for every door: record a provider-signed attestation, and the order gate (BSS_REQUIRE_KYC).

The signature is verified before anything is written (domains/crm/kyc.py says what is signed);
the document number is kept only as its keyed hash. Development: without BSS_KYC_PUBLIC_KEY the
prebaked provider's key in <BSS_DATA_DIR> verifies, and `bss customer kyc` (on the machine that
runs the stack) signs with it; `dev_sign` is that signer.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from sqlmodel.ext.asyncio.session import AsyncSession

from core.context import RequestContext
from core.db import transaction
from core.errors import DomainError, PolicyViolation
from core.settings import Settings
from domains.crm import kyc
from domains.crm.models import CustomerIdentity
from ops.runtime import Runtime


class KycMisconfigured(DomainError):
    status = 503
    kind = "SERVICE_UNAVAILABLE"


def provider_public_key(settings: Settings):
    if settings.kyc_public_key:
        try:
            return kyc.load_public_key(settings.kyc_public_key)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise KycMisconfigured(
                "kyc.provider_key.invalid",
                "BSS_KYC_PUBLIC_KEY is not an Ed25519 public key (PEM, or 32 bytes in base64); "
                "no attestation can be verified until it is fixed.",
            ) from None
    return kyc.dev_provider_key(settings.data_dir).public_key()


def hmac_secret(settings: Settings) -> bytes:
    if settings.kyc_hmac_secret is not None:
        return settings.kyc_hmac_secret.get_secret_value().encode()
    return kyc.dev_hmac_secret(settings.data_dir)


def dev_sign(settings: Settings, fields: dict[str, Any]) -> str:
    """The development provider's signature over `fields` (the API body's fields and customerId)."""
    return kyc.sign(kyc.dev_provider_key(settings.data_dir), fields)


async def attest(
    rt: Runtime,
    ctx: RequestContext,
    customer_id: str,
    *,
    signed_fields: dict[str, Any],
    signature: str | None,
    document_type: str,
    document_number: str,
    document_country: str,
    verified_by: str,
    date_of_birth: date | None = None,
    nationality: str | None = None,
    reference: str | None = None,
    attestation: dict[str, Any] | None = None,
):
    """Verify, then store. `signed_fields` are the request's fields as sent (JSON values)."""
    from domains.crm import services

    kyc.verify(provider_public_key(rt.settings), {**signed_fields, "customerId": customer_id}, signature)
    secret = hmac_secret(rt.settings)
    async with transaction(rt.db) as s:
        identity = await services.attest_kyc(
            s,
            ctx,
            customer_id,
            document_type,
            document_number,
            document_country,
            verified_by,
            date_of_birth=date_of_birth,
            nationality=nationality,
            reference=reference,
            attestation=attestation,
            hmac_secret=secret,
        )
        return await services.customer_view(s, customer_id), identity


async def require_verified(session: AsyncSession, customer_id: str) -> None:
    """BSS_REQUIRE_KYC: an order needs the customer's verified attestation (422 otherwise)."""
    from sqlmodel import select

    from domains.crm.models import Customer

    customer = await session.get(Customer, customer_id)
    identity = (
        await session.exec(select(CustomerIdentity.id).where(CustomerIdentity.customer_id == customer_id))
    ).first()
    if customer is None or customer.kyc_status != "verified" or identity is None:
        raise PolicyViolation(
            "order.create.kyc_required",
            f"Customer {customer_id} has no verified KYC attestation; record one before ordering.",
            customer_id=customer_id,
        )

"""KYC attestation (non-TMF): a channel records what the KYC provider verified and signed.

The body is the attestation and the provider's Ed25519 `signature` (base64) over it and the
customer id (domains/crm/kyc.py `attestation_message`); it is verified before anything is stored
(422 `kyc.attestation.signature_invalid`, or `kyc.attestation.uncorroborated` when unsigned). Only
a keyed hash (HMAC-SHA256 with the server's secret) of the document number is kept; the answer
shows a prefix of it so an operator can match records, never the number.

Development: `bss customer kyc CUST-… --number S1234567D` signs with the prebaked provider's key
(generated into BSS_DATA_DIR) and posts here.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import context, runtime
from api.routers.customer import time_json
from core.context import RequestContext
from ops import kyc as ops
from ops.runtime import Runtime

router = APIRouter(prefix="/bss-api/v1/customer", tags=["KYC"])


class KycAttestationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documentType: Literal["nric", "passport", "fin", "driving_license"]
    documentNumber: str = Field(min_length=1, max_length=40)
    documentCountry: str = Field(min_length=2, max_length=3)
    verifiedBy: str = Field(min_length=1, max_length=100, description="The KYC provider that verified.")
    dateOfBirth: date | None = None
    nationality: str | None = Field(None, min_length=2, max_length=3)
    reference: str | None = Field(None, max_length=100, description="The verifier's reference.")
    attestation: dict[str, Any] | None = Field(
        None, description="The verifier's payload, kept without the document number."
    )
    signature: str | None = Field(
        None,
        max_length=200,
        description="The provider's Ed25519 signature (base64) over the other fields and the customer id.",
    )


@router.post("/{id}/kyc-attestation", status_code=201, summary="Record a provider-signed identity check")
async def attest_kyc(
    body: KycAttestationIn,
    id: str = Path(max_length=64),
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    view, identity = await ops.attest(
        rt,
        ctx,
        id,
        signed_fields=body.model_dump(mode="json", exclude={"signature"}, exclude_none=True),
        signature=body.signature,
        document_type=body.documentType,
        document_number=body.documentNumber,
        document_country=body.documentCountry,
        verified_by=body.verifiedBy,
        date_of_birth=body.dateOfBirth,
        nationality=body.nationality,
        reference=body.reference,
        attestation=body.attestation,
    )
    return {
        "customerId": view.customer.id,
        "kycStatus": view.customer.kyc_status,
        "kycVerifiedAt": time_json(view.customer.kyc_verified_at),
        "kycReference": view.customer.kyc_reference,
        "documentType": identity.document_type,
        "documentCountry": identity.document_country,
        "documentHashPrefix": identity.document_number_hash[:12],
        "verifiedBy": identity.verified_by,
    }

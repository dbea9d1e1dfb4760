"""`bss customer kyc`: record a signed KYC attestation for a customer.

A real channel gets the attestation and its signature from the KYC provider and passes them on
(`--signature`). On a development stack (no BSS_KYC_PUBLIC_KEY) this command plays the prebaked
provider: it signs with the development key in BSS_DATA_DIR (so it must run where the stack runs).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from cli.output import JsonOpt, card, emit


class DocumentType(StrEnum):
    nric = "nric"
    passport = "passport"
    fin = "fin"
    driving_license = "driving_license"


def _render(a: dict[str, Any]) -> None:
    card(
        f"KYC {a['customerId']}",
        [
            ("Status", a.get("kycStatus")),
            ("Document", f"{a.get('documentType')} ({a.get('documentCountry')})"),
            ("Hash prefix", a.get("documentHashPrefix")),
            ("Verified by", a.get("verifiedBy")),
            ("Reference", a.get("kycReference")),
        ],
    )


def kyc(
    customer_id: str = typer.Argument(..., metavar="CUST"),
    number: str = typer.Option(..., "--number", help="The identity document's number."),
    document_type: DocumentType = typer.Option(DocumentType.nric, "--type"),
    country: str = typer.Option("SG", "--country", help="The document's country (ISO code)."),
    verified_by: str = typer.Option("prebaked", "--verified-by", help="The KYC provider."),
    reference: str | None = typer.Option(None, "--reference", help="The provider's reference."),
    signature: str | None = typer.Option(
        None, "--signature", help="The provider's signature (base64); default: sign as the dev provider."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Record a KYC attestation signed by the provider (development: by the prebaked provider)."""
    from cli.client import api
    from core.settings import get_settings

    body: dict[str, Any] = {
        "documentType": document_type.value,
        "documentNumber": number,
        "documentCountry": country,
        "verifiedBy": verified_by,
    }
    if reference:
        body["reference"] = reference
    if signature is None:
        settings = get_settings()
        if settings.kyc_public_key:
            raise typer.BadParameter(
                "BSS_KYC_PUBLIC_KEY names a real provider: pass its --signature.", param_hint="--signature"
            )
        from ops.kyc import dev_sign

        signature = dev_sign(settings, {**body, "customerId": customer_id})
    body["signature"] = signature
    emit(api().post(f"/bss-api/v1/customer/{customer_id}/kyc-attestation", body), as_json, _render)

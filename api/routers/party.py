"""TMF632 Party Management, read side: the individual behind a customer.

`status` is `validated` once the customer's identity document is attested, else `initialized`;
`individualIdentification` names the document type with a hash prefix, never the number.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from sqlmodel.ext.asyncio.session import AsyncSession

from api import tmf
from api.deps import read_session
from api.routers.customer import BASE as CUSTOMER_BASE
from api.routers.customer import contact_medium_json
from domains.crm import services
from domains.crm.models import Individual
from domains.crm.services import CustomerView

BASE = "/tmf-api/party/v4"
router = APIRouter(prefix=BASE, tags=["TMF632 Party"])


def individual_json(person: Individual, view: CustomerView | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": person.party_id,
        "href": f"{BASE}/individual/{person.party_id}",
        "@type": "Individual",
        "givenName": person.given_name,
        "familyName": person.family_name,
        "fullName": person.full_name,
        "status": "initialized",
        "contactMedium": [],
        "individualIdentification": [],
        "relatedParty": [],
    }
    if person.date_of_birth:
        body["birthDate"] = f"{person.date_of_birth.isoformat()}T00:00:00Z"
    if view is not None:
        body["contactMedium"] = [contact_medium_json(m) for m in view.contact_media]
        body["relatedParty"] = [
            {
                "id": view.customer.id,
                "href": f"{CUSTOMER_BASE}/customer/{view.customer.id}",
                "role": "customer",
                "@referredType": "Customer",
            }
        ]
        if view.identity is not None:
            body["status"] = "validated"
            body["individualIdentification"] = [
                {
                    "identificationType": view.identity.document_type,
                    "identificationId": f"sha256:{view.identity.document_number_hash[:12]}",
                    "issuingAuthority": view.identity.document_country,
                }
            ]
    return body


@router.get("/individual/{id}", summary="The individual behind a customer")
async def get_individual(
    id: str = Path(max_length=64, description="Party id, e.g. PTY-1a2b3c4d."),
    fields: str | None = Query(None, max_length=500),
    session: AsyncSession = Depends(read_session),
) -> dict[str, Any]:
    person, view = await services.get_individual(session, id)
    return tmf.one(individual_json(person, view), fields)

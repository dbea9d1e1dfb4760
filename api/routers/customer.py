"""TMF629 Customer Management: customers, their contact media and (as an extension) KYC status.

A customer is created with its individual (TMF632, the `engagedParty`) from a name: `givenName` /
`familyName` in an `individual` object (or on `engagedParty`), else split from `engagedParty.name`
or `name`. TMF attributes this BSS does not keep (account, agreement, creditProfile, characteristic,
relatedParty, paymentMethod, validFor) are accepted and ignored; unknown attributes are a 400.
An existing email is changed through the verified change flow, never by PATCH; PATCH may add an
email to a customer who has none.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from api import tmf
from api.deps import context, read_session, runtime
from core.context import RequestContext
from core.errors import InvalidInput
from domains.crm import rules, services
from domains.crm.models import ContactMedium
from domains.crm.services import CustomerView
from domains.payment.models import PaymentMethod
from domains.payment.services import active_methods_by_customer
from ops import crm as ops
from ops.runtime import Runtime

BASE = "/tmf-api/customerManagement/v4"
PARTY_BASE = "/tmf-api/party/v4"
PAYMENT_BASE = "/tmf-api/paymentMethod/v4"
router = APIRouter(prefix=BASE, tags=["TMF629 Customer"])

IdPath = Path(max_length=64, description="Customer id, e.g. CUST-1a2b3c4d.")
IdempotencyKey = Header(None, alias="Idempotency-Key", max_length=200)


def time_json(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# ----------------------------------------------------------------------------------- request bodies


class TmfIn(BaseModel):
    """TMF polymorphism attributes are allowed on every object; anything else unknown is refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    at_type: str | None = Field(None, alias="@type", max_length=100)
    at_base_type: str | None = Field(None, alias="@baseType", max_length=100)
    at_schema_location: str | None = Field(None, alias="@schemaLocation", max_length=500)


class TimePeriodIn(TmfIn):
    startDateTime: datetime | None = None
    endDateTime: datetime | None = None


class MediumCharacteristicIn(TmfIn):
    emailAddress: str | None = Field(None, max_length=254)
    phoneNumber: str | None = Field(None, max_length=30)
    contactType: str | None = Field(None, max_length=50)
    faxNumber: str | None = Field(None, max_length=30)
    socialNetworkId: str | None = Field(None, max_length=200)
    street1: str | None = Field(None, max_length=200)
    street2: str | None = Field(None, max_length=200)
    city: str | None = Field(None, max_length=100)
    postCode: str | None = Field(None, max_length=20)
    stateOrProvince: str | None = Field(None, max_length=100)
    country: str | None = Field(None, max_length=100)


class ContactMediumIn(TmfIn):
    mediumType: str = Field(max_length=20)
    preferred: bool | None = None
    characteristic: MediumCharacteristicIn
    validFor: TimePeriodIn | None = None


class PersonNamesIn(TmfIn):
    """Names of the individual: our `individual` object, or the same fields on `engagedParty`."""

    id: str | None = Field(None, max_length=64)
    href: str | None = Field(None, max_length=500)
    name: str | None = Field(None, max_length=200)
    role: str | None = Field(None, max_length=50)
    at_referred_type: str | None = Field(None, alias="@referredType", max_length=50)
    givenName: str | None = Field(None, max_length=100)
    familyName: str | None = Field(None, max_length=100)
    fullName: str | None = Field(None, max_length=200)
    birthDate: datetime | date | None = None


AnyList = list[dict[str, Any]] | None


class CustomerIn(TmfIn):
    name: str | None = Field(None, max_length=200)
    status: Literal["active", "pending"] | None = None
    statusReason: str | None = Field(None, max_length=500)
    contactMedium: list[ContactMediumIn] = Field(default_factory=list, max_length=10)
    engagedParty: PersonNamesIn | None = None
    individual: PersonNamesIn | None = None
    account: AnyList = Field(None, max_length=20)
    agreement: AnyList = Field(None, max_length=20)
    characteristic: AnyList = Field(None, max_length=50)
    creditProfile: AnyList = Field(None, max_length=20)
    paymentMethod: AnyList = Field(None, max_length=20)
    relatedParty: AnyList = Field(None, max_length=20)
    validFor: TimePeriodIn | None = None


class CustomerPatch(TmfIn):
    name: str | None = Field(None, max_length=200)
    status: str | None = Field(None, max_length=20)
    statusReason: str | None = Field(None, max_length=500)
    contactMedium: list[ContactMediumIn] | None = Field(None, max_length=10)
    engagedParty: PersonNamesIn | None = None
    individual: PersonNamesIn | None = None


def _birth_date(value: datetime | date | None) -> date | None:
    return value.date() if isinstance(value, datetime) else value


def _names(body: CustomerIn | CustomerPatch) -> tuple[str | None, str | None, date | None]:
    """(given, family, birth date) from the most explicit place the client put them."""
    for person in (body.individual, body.engagedParty):
        if person is not None and (person.givenName or person.familyName):
            return person.givenName, person.familyName, _birth_date(person.birthDate)
    birth = next((_birth_date(p.birthDate) for p in (body.individual, body.engagedParty) if p), None)
    for full in (
        body.individual.fullName if body.individual else None,
        body.engagedParty.name if body.engagedParty else None,
        body.engagedParty.fullName if body.engagedParty else None,
        body.name,
    ):
        if full and full.strip():
            given, family = rules.split_name(full)
            return given, family, birth
    return None, None, birth


def _contacts(media: list[ContactMediumIn]) -> tuple[str | None, str | None]:
    """(email, phone): one of each at most; only email and mobile are kept for customers."""
    email = phone = None
    for m in media:
        kind = m.mediumType.strip().lower()
        if kind == "email":
            value = m.characteristic.emailAddress
            if not value or email is not None:
                raise InvalidInput(
                    "customer.contact_medium.email_invalid",
                    "An email medium carries one characteristic.emailAddress, and there is one email medium.",
                )
            email = value
        elif kind in ("mobile", "phone", "telephone"):
            value = m.characteristic.phoneNumber
            if not value or phone is not None:
                raise InvalidInput(
                    "customer.contact_medium.phone_invalid",
                    "A mobile medium carries one characteristic.phoneNumber, and there is one mobile medium.",
                )
            phone = value
        else:
            raise InvalidInput(
                "customer.contact_medium.unknown",
                f"mediumType must be email or mobile; got {m.mediumType!r}.",
            )
    return email, phone


# ----------------------------------------------------------------------------------- response bodies


def contact_medium_json(m: ContactMedium) -> dict[str, Any]:
    if m.medium_type == "email":
        characteristic = {"contactType": "email", "emailAddress": m.value}
    elif m.medium_type == "mobile":
        characteristic = {"contactType": "mobile", "phoneNumber": m.value}
    else:
        characteristic = {"contactType": m.medium_type, "street1": m.value}
    period = {"startDateTime": time_json(m.valid_from), "endDateTime": time_json(m.valid_to)}
    return {
        "mediumType": m.medium_type,
        "preferred": m.is_primary and m.valid_to is None,
        "characteristic": characteristic,
        "validFor": {k: v for k, v in period.items() if v},
    }


def engaged_party_json(view: CustomerView) -> dict[str, Any]:
    return {
        "id": view.customer.party_id,
        "href": f"{PARTY_BASE}/individual/{view.customer.party_id}",
        "name": view.name,
        "role": "customer",
        "@referredType": "Individual",
    }


def customer_json(view: CustomerView, methods: list[PaymentMethod] | None = None) -> dict[str, Any]:
    c = view.customer
    characteristic = [
        {"name": "kycStatus", "valueType": "string", "value": c.kyc_status},
        {"name": "customerSince", "valueType": "dateTime", "value": time_json(c.customer_since)},
    ]
    if c.kyc_verified_at:
        characteristic.append(
            {"name": "kycVerifiedAt", "valueType": "dateTime", "value": time_json(c.kyc_verified_at)}
        )
    if view.identity is not None:
        characteristic.append(
            {"name": "kycDocumentType", "valueType": "string", "value": view.identity.document_type}
        )
    body: dict[str, Any] = {
        "id": c.id,
        "href": f"{BASE}/customer/{c.id}",
        "@type": "Customer",
        "name": view.name,
        "status": c.status,
        "engagedParty": engaged_party_json(view),
        "contactMedium": [contact_medium_json(m) for m in view.contact_media],
        "characteristic": characteristic,
        "paymentMethod": [
            {
                "id": m.id,
                "href": f"{PAYMENT_BASE}/paymentMethod/{m.id}",
                "name": f"{m.brand} •••• {m.last4 or '????'}" + (" (default)" if m.is_default else ""),
                "@referredType": "PaymentMethod",
            }
            for m in methods or []
        ],
        "validFor": {"startDateTime": time_json(c.customer_since)},
    }
    if c.status_reason:
        body["statusReason"] = c.status_reason
    return body


async def _with_methods(session: AsyncSession, views: list[CustomerView]) -> list[dict[str, Any]]:
    methods = await active_methods_by_customer(session, [v.customer.id for v in views])
    return [customer_json(v, methods[v.customer.id]) for v in views]


# ----------------------------------------------------------------------------------------- routes


@router.post("/customer", status_code=201, summary="Create a customer (and its individual)")
async def create_customer(
    body: CustomerIn,
    response: Response,
    idempotency_key: str | None = IdempotencyKey,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    if body.engagedParty is not None and body.engagedParty.id:
        raise InvalidInput(
            "customer.create.engaged_party_must_be_new",
            "A customer is created with a new individual: give engagedParty a name, not an id.",
        )
    given, family, birth = _names(body)
    if not given:
        raise InvalidInput(
            "customer.create.name_required",
            "Give the customer's name: `name`, `engagedParty.name` or `individual.givenName`.",
        )
    email, phone = _contacts(body.contactMedium)
    view, replayed = await ops.create_customer(
        rt,
        ctx,
        given_name=given,
        family_name=family or "",
        email=email,
        phone=phone,
        date_of_birth=birth,
        status=body.status or "active",
        idempotency_key=idempotency_key,
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return customer_json(view)


@router.get("/customer", summary="List customers")
async def list_customers(
    response: Response,
    paging: tmf.Paging = Depends(),
    status: str | None = Query(None, max_length=20),
    name: str | None = Query(None, max_length=200, description="Part of the name (or id), case-insensitive."),
    email: str | None = Query(None, max_length=254, description="Exact email address, case-insensitive."),
    session: AsyncSession = Depends(read_session),
) -> list[dict[str, Any]]:
    tmf.choice(status, rules.CUSTOMER_STATUSES, "status")
    query = services.customer_query(status=status, name_contains=name, email=email)
    rows = await tmf.page(session, query, paging, response)
    views = await services.load_customer_views(session, list(rows))
    return tmf.listing(await _with_methods(session, views), paging)


@router.get("/customer/{id}", summary="One customer with contact media, KYC status and cards on file")
async def get_customer(
    id: str = IdPath,
    fields: str | None = Query(None, max_length=500),
    session: AsyncSession = Depends(read_session),
) -> dict[str, Any]:
    view = await services.customer_view(session, id)
    return tmf.one((await _with_methods(session, [view]))[0], fields)


@router.patch("/customer/{id}", summary="Update name, status, phone; add an email where none exists")
async def patch_customer(
    body: CustomerPatch,
    id: str = IdPath,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    given, family, birth = _names(body)
    email, phone = _contacts(body.contactMedium or [])
    view = await ops.update_customer(
        rt,
        ctx,
        id,
        given_name=given,
        family_name=family,
        date_of_birth=birth,
        status=body.status,
        status_reason=body.statusReason,
        phone=phone,
        email=email,
    )
    async with rt.db() as session:
        return (await _with_methods(session, [view]))[0]

"""TMF670 Payment Method: cards on file, as tokens.

POST a `bankCard` (cardNumber, expirationDate, nameOnCard, the customer in relatedParty): the
number is tokenized on arrival and forgotten. POST a `tokenizedCard` (token from a PSP) as is.
Every answer is a `tokenizedCard` with token, lastFourDigits and brand — never the number.
`relatedParty` is one object in TMF670; a list (as TMF622 writes it) is accepted too.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from api import tmf
from api.deps import context, read_session, runtime
from api.routers.customer import BASE as CUSTOMER_BASE
from api.routers.customer import TimePeriodIn, TmfIn, time_json
from core.context import RequestContext
from core.errors import InvalidInput
from domains.payment import services
from domains.payment.models import PaymentMethod
from ops import payment as ops
from ops.runtime import Runtime

BASE = "/tmf-api/paymentMethod/v4"
router = APIRouter(prefix=BASE, tags=["TMF670 Payment Method"])

IdPath = Path(max_length=32, description="Payment method id, e.g. PM-000001.")
STATUSES = ("active", "removed")


class RelatedPartyIn(TmfIn):
    id: str = Field(min_length=1, max_length=64)
    href: str | None = Field(None, max_length=500)
    name: str | None = Field(None, max_length=200)
    role: str | None = Field(None, max_length=50)
    at_referred_type: str | None = Field(None, alias="@referredType", max_length=50)


class PaymentMethodIn(TmfIn):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    at_type: Literal["bankCard", "tokenizedCard"] = Field(alias="@type")  # type: ignore[assignment]
    name: str | None = Field(None, max_length=100)
    description: str | None = Field(None, max_length=500)
    isPreferred: bool | None = None
    relatedParty: RelatedPartyIn | list[RelatedPartyIn] = Field(description="The customer (role customer).")
    expirationDate: str = Field(max_length=40, description="YYYY-MM, MM/YY, a date or a date-time.")
    # bankCard
    cardNumber: str | None = Field(None, max_length=23)
    nameOnCard: str | None = Field(None, max_length=100)
    cvv: str | None = Field(None, pattern=r"^[0-9]{3,4}$", description="Accepted, never stored.")
    cardType: str | None = Field(None, max_length=20)
    bank: str | None = Field(None, max_length=100)
    # tokenizedCard
    token: str | None = Field(None, max_length=120)
    tokenType: str | None = Field(None, max_length=50)
    lastFourDigits: str | None = Field(None, pattern=r"^[0-9]{4}$")
    brand: str | None = Field(None, max_length=20)
    issuer: str | None = Field(None, max_length=100)
    # TMF attributes accepted and not kept
    authorizationCode: str | None = Field(None, max_length=100)
    status: str | None = Field(None, max_length=20)
    statusDate: datetime | None = None
    statusReason: str | None = Field(None, max_length=200)
    validFor: TimePeriodIn | None = None
    account: list[dict[str, Any]] | None = Field(None, max_length=10)
    relatedPlace: dict[str, Any] | None = None


def customer_of(related: RelatedPartyIn | list[RelatedPartyIn]) -> str:
    parties = related if isinstance(related, list) else [related]
    customers = [p for p in parties if (p.role or "customer").lower() == "customer"]
    if len(customers) != 1:
        raise InvalidInput(
            "payment_method.add.customer_required",
            "relatedParty names exactly one party with role customer (its id is CUST-…).",
        )
    return customers[0].id


_MONTH_YEAR = re.compile(r"^(\d{1,2})/(\d{2}|\d{4})$")
_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{2})(?:-\d{2}(?:[T ].*)?)?$")


def expiry_of(value: str) -> tuple[int, int]:
    """(month, year) from `2030-12`, `2030-12-31`, `2030-12-31T23:59:59Z`, `12/30` or `12/2030`."""
    text = value.strip()
    if m := _MONTH_YEAR.match(text):
        month, year = int(m.group(1)), int(m.group(2))
        year += 2000 if year < 100 else 0
    elif m := _YEAR_MONTH.match(text):
        year, month = int(m.group(1)), int(m.group(2))
    else:
        raise InvalidInput(
            "payment_method.add.expiry_invalid", "expirationDate is YYYY-MM, MM/YY, a date or a date-time."
        )
    if not 1 <= month <= 12:
        raise InvalidInput("payment_method.add.expiry_invalid", "The expiry month is 1 to 12.")
    return month, year


def expiry_json(month: int, year: int) -> str:
    """The last second the card is good for: the end of its expiry month."""
    return f"{year:04d}-{month:02d}-{calendar.monthrange(year, month)[1]:02d}T23:59:59Z"


def payment_method_json(m: PaymentMethod) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": m.id,
        "href": f"{BASE}/paymentMethod/{m.id}",
        "@type": "tokenizedCard",
        "@baseType": "PaymentMethod",
        "name": f"{m.brand.capitalize()} •••• {m.last4 or '????'}",
        "isPreferred": m.is_default,
        "status": m.status,
        "statusDate": time_json(m.removed_at or m.created_at),
        "token": m.token,
        "tokenType": m.token_provider,
        "brand": m.brand,
        "cardType": "credit",
        "expirationDate": expiry_json(m.exp_month, m.exp_year),
        "relatedParty": {
            "id": m.customer_id,
            "href": f"{CUSTOMER_BASE}/customer/{m.customer_id}",
            "role": "customer",
            "@referredType": "Customer",
        },
        "validFor": {
            "startDateTime": time_json(m.created_at),
            "endDateTime": expiry_json(m.exp_month, m.exp_year),
        },
    }
    if m.last4:
        body["lastFourDigits"] = m.last4
    if m.name_on_card:
        body["nameOnCard"] = m.name_on_card
    return body


@router.post("/paymentMethod", status_code=201, summary="Put a card on file (tokenized)")
async def add_payment_method(
    body: PaymentMethodIn,
    response: Response,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200),
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    if body.at_type == "bankCard" and (not body.cardNumber or body.token):
        raise InvalidInput(
            "payment_method.add.card_number_required", "A bankCard carries a cardNumber (no token)."
        )
    if body.at_type == "tokenizedCard" and (not body.token or body.cardNumber):
        raise InvalidInput(
            "payment_method.add.token_required", "A tokenizedCard carries a token (no cardNumber)."
        )
    month, year = expiry_of(body.expirationDate)
    method, replayed = await ops.add_payment_method(
        rt,
        ctx,
        customer_id=customer_of(body.relatedParty),
        card_number=body.cardNumber,
        token=body.token,
        exp_month=month,
        exp_year=year,
        name_on_card=body.nameOnCard,
        set_default=body.isPreferred,
        last4=body.lastFourDigits,
        brand=(body.brand or "").lower() or None,
        idempotency_key=idempotency_key,
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return payment_method_json(method)


@router.get("/paymentMethod", summary="List cards on file (active ones unless status is given)")
async def list_payment_methods(
    response: Response,
    paging: tmf.Paging = Depends(),
    related_party_id: str | None = Query(None, alias="relatedParty.id", max_length=64),
    customer_id: str | None = Query(None, alias="customerId", max_length=64),
    status: str | None = Query("active", max_length=20),
    session: AsyncSession = Depends(read_session),
) -> list[dict[str, Any]]:
    tmf.choice(status, STATUSES, "status")
    if related_party_id and customer_id and related_party_id != customer_id:
        raise InvalidInput("payment_method.list.customer_conflict", "relatedParty.id and customerId differ.")
    query = services.payment_method_query(related_party_id or customer_id, status)
    rows = await tmf.page(session, query, paging, response)
    return tmf.listing([payment_method_json(m) for m in rows], paging)


@router.get("/paymentMethod/{id}", summary="One card on file")
async def get_payment_method(
    id: str = IdPath,
    fields: str | None = Query(None, max_length=500),
    session: AsyncSession = Depends(read_session),
) -> dict[str, Any]:
    return tmf.one(payment_method_json(await services.get_payment_method(session, id)), fields)


@router.delete("/paymentMethod/{id}", status_code=204, summary="Remove a card (the next one becomes default)")
async def remove_payment_method(
    id: str = IdPath, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> Response:
    await ops.remove_payment_method(rt, ctx, id)
    return Response(status_code=204)


@router.post("/paymentMethod/{id}/setDefault", summary="Make this card the one charged")
async def set_default(
    id: str = IdPath, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    return payment_method_json(await ops.set_default(rt, ctx, id))

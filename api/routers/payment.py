"""TMF676 Payment Management (read): the card charges made by orders, renewals and top-ups.

Payments are created by the workflows (exactly once per idempotency key), never by a POST here.
Extensions beside the TMF attributes: `purpose` (activation / renewal / vas), `declineCode`,
`declineReason`, and for a refunded payment `refundReference` and `refundDate`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from api import tmf
from api.deps import read_session
from domains.payment import charges
from domains.payment.charges import Payment

BASE = "/tmf-api/paymentManagement/v4"
PAYMENT_METHOD_BASE = "/tmf-api/paymentMethod/v4"
CUSTOMER_BASE = "/tmf-api/customerManagement/v4"
router = APIRouter(prefix=BASE, tags=["TMF676 Payment"])

PURPOSE_NAMES = {"activation": "Plan activation", "renewal": "Plan renewal", "vas": "Top-up"}


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def payment_json(p: Payment) -> dict[str, Any]:
    customer = {
        "id": p.customer_id,
        "href": f"{CUSTOMER_BASE}/customer/{p.customer_id}",
        "@referredType": "Customer",
    }
    money = {"unit": p.currency, "value": float(p.amount)}  # prices are tax inclusive
    body: dict[str, Any] = {
        "id": p.id,
        "href": f"{BASE}/payment/{p.id}",
        "@type": "Payment",
        "name": f"{PURPOSE_NAMES.get(p.purpose, p.purpose)} {p.id}",
        "description": f"{PURPOSE_NAMES.get(p.purpose, p.purpose)} charge",
        "status": p.status,
        "statusDate": _time(p.refunded_at or p.attempted_at),
        "paymentDate": _time(p.attempted_at),
        "correlatorId": p.idempotency_key,
        "amount": money,
        "totalAmount": money,
        "taxAmount": {"unit": p.currency, "value": 0.0},
        "account": {"name": f"Prepaid account of {p.customer_id}", **customer},
        "payer": {"role": "customer", **customer},
        "paymentMethod": {
            "id": p.payment_method_id,
            "href": f"{PAYMENT_METHOD_BASE}/paymentMethod/{p.payment_method_id}",
            "@referredType": "PaymentMethod",
        },
        "purpose": p.purpose,
    }
    if p.gateway_ref and p.status in ("approved", "refunded"):
        body["authorizationCode"] = p.gateway_ref
    if p.decline_code:
        body["declineCode"] = p.decline_code
        body["declineReason"] = p.decline_reason
    if p.refund_ref:
        body["refundReference"] = p.refund_ref
        body["refundDate"] = _time(p.refunded_at)
    return body


@router.get("/payment", summary="List payments (card charges), newest first")
async def list_payments(
    response: Response,
    customer_id: str | None = Query(None, alias="customerId", max_length=32, description="CUST-…"),
    related_party_id: str | None = Query(
        None, alias="relatedParty.id", max_length=32, description="Same as customerId."
    ),
    status: str | None = Query(None, max_length=20, description="approved, declined, errored or refunded."),
    paging: tmf.Paging = Depends(),
    session: AsyncSession = Depends(read_session),
) -> list[dict[str, Any]]:
    tmf.choice(status, charges.STATUSES, "status")
    customer = customer_id or related_party_id
    if customer_id and related_party_id and customer_id != related_party_id:
        return _empty(response)
    rows, total = await charges.list_payments(
        session, customer_id=customer, status=status, offset=paging.offset, limit=paging.limit
    )
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(rows))
    return tmf.listing([payment_json(p) for p in rows], paging)


@router.get("/payment/{id}", summary="One payment")
async def get_payment(
    payment_id: str = Path(alias="id", max_length=32, description="PAY-000001"),
    fields: str | None = Query(None, max_length=500),
    session: AsyncSession = Depends(read_session),
) -> dict[str, Any]:
    return tmf.one(payment_json(await charges.get_payment(session, payment_id)), fields)


def _empty(response: Response) -> list[dict[str, Any]]:
    response.headers["X-Total-Count"] = "0"
    response.headers["X-Result-Count"] = "0"
    return []

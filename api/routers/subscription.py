"""Subscriptions (our own API, CONTRACT.md) and the same lines as TMF637 products.

Read-only for now; the lifecycle actions (VAS, renew, terminate, plan change) arrive with the
subscription workflow. A blocked line is a `suspended` product in TMF637's words.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import read_session
from api.routers.product_order import BASE as ORDERING
from api.routers.product_order import CATALOG, ID_PATTERN, PRODUCT, customer_party, time_json
from api.routers.service_order import INVENTORY, service_ref
from api.tmf import Paging, choice, listing, one, page
from domains.catalog.models import ProductOffering
from domains.ordering.models import ProductOrderItem
from domains.service_ordering.models import Service
from domains.subscription import rules
from domains.subscription import services as subscriptions
from domains.subscription.models import Subscription

RESOURCES = "/tmf-api/resourceInventoryManagement/v4"
STATES = (rules.PENDING, rules.ACTIVE, rules.BLOCKED, rules.TERMINATED)
# our subscription state -> TMF637 ProductStatusType
PRODUCT_STATUS = {
    rules.PENDING: "pendingActive",
    rules.ACTIVE: "active",
    rules.BLOCKED: "suspended",
    rules.TERMINATED: "terminated",
}
SubscriptionId = Path(alias="id", pattern=ID_PATTERN, description="e.g. SUB-000001")

bss = APIRouter(prefix="/bss-api/v1/subscription", tags=["Subscriptions (BSS)"])


@bss.get("", summary="A customer's lines, with their balances")
async def list_subscriptions(
    response: Response,
    paging: Paging = Depends(),
    customer_id: str | None = Query(None, alias="customerId", pattern=ID_PATTERN),
    state: str | None = Query(None, max_length=20, description=", ".join(STATES)),
    msisdn: str | None = Query(None, pattern=r"^[0-9]{8,15}$"),
    session: AsyncSession = Depends(read_session),
) -> list[dict[str, Any]]:
    choice(state, STATES, "state")
    query = select(Subscription).order_by(col(Subscription.created_at), col(Subscription.id))
    if customer_id:
        query = query.where(Subscription.customer_id == customer_id)
    if state:
        query = query.where(Subscription.state == state)
    if msisdn:
        query = query.where(Subscription.msisdn == msisdn)
    rows = await page(session, query, paging, response)
    return listing([await subscriptions.subscription_view(session, sub.id) for sub in rows], paging)


@bss.get("/{id}", summary="One line: state, number, eSIM, period and balances")
async def get_subscription(
    subscription_id: str = SubscriptionId, session: AsyncSession = Depends(read_session)
) -> dict[str, Any]:
    return await subscriptions.subscription_view(session, subscription_id)


async def product_json(session: AsyncSession, sub: Subscription) -> dict[str, Any]:
    offering = await session.get(ProductOffering, sub.offering_id)
    cfs = (
        await session.exec(
            select(Service)
            .where(Service.subscription_id == sub.id, Service.type == "CFS")
            .order_by(col(Service.id))
        )
    ).all()
    item = (
        await session.exec(select(ProductOrderItem).where(ProductOrderItem.order_id == sub.order_id))
    ).first()
    body: dict[str, Any] = {
        "id": sub.id,
        "href": f"{PRODUCT}/product/{sub.id}",
        "@type": "Product",
        "name": offering.name if offering else sub.offering_id,
        "isBundle": True,
        "isCustomerVisible": True,
        "status": PRODUCT_STATUS.get(sub.state, sub.state),
        "statusReason": sub.state_reason,
        "productSerialNumber": sub.msisdn,
        "orderDate": time_json(sub.created_at),
        "startDate": time_json(sub.activated_at),
        "productOffering": {
            "id": sub.offering_id,
            "href": f"{CATALOG}/productOffering/{sub.offering_id}",
            "name": offering.name if offering else None,
            "@referredType": "ProductOffering",
        },
        "productCharacteristic": [
            {"name": "msisdn", "valueType": "string", "value": sub.msisdn},
            {"name": "iccid", "valueType": "string", "value": sub.iccid},
            {"name": "currentPeriodEnd", "valueType": "string", "value": time_json(sub.current_period_end)},
        ],
        "productPrice": [
            {
                "priceType": "recurring",
                "recurringChargePeriod": "30 days",
                "price": {
                    "taxIncludedAmount": {"unit": sub.price_currency, "value": float(sub.price_amount)}
                },
                "productOfferingPrice": {"id": sub.price_id},
            }
        ],
        "relatedParty": [customer_party(sub.customer_id)],
        "realizingService": [{**service_ref(s), "href": f"{INVENTORY}/service/{s.id}"} for s in cfs],
        "realizingResource": [
            {
                "id": sub.msisdn,
                "href": f"{RESOURCES}/resource/{sub.msisdn}",
                "value": sub.msisdn,
                "@referredType": "MSISDN",
            },
            {
                "id": sub.iccid,
                "href": f"{RESOURCES}/resource/{sub.iccid}",
                "value": sub.iccid,
                "@referredType": "EsimProfile",
            },
        ],
        "productOrderItem": [
            {
                "productOrderId": sub.order_id,
                "productOrderHref": f"{ORDERING}/productOrder/{sub.order_id}",
                "orderItemId": item.id if item else sub.order_id,
                "orderItemAction": "add",
                "role": "activation",
            }
        ],
    }
    if sub.terminated_at:
        body["terminationDate"] = time_json(sub.terminated_at)
    return body


tmf = APIRouter(prefix=PRODUCT, tags=["TMF637 Product Inventory"])


@tmf.get("/product", summary="List lines as TMF637 products")
async def list_products(
    response: Response,
    paging: Paging = Depends(),
    party_id: str | None = Query(None, alias="relatedParty.id", pattern=ID_PATTERN),
    status: str | None = Query(None, max_length=20, description=", ".join(PRODUCT_STATUS.values())),
    session: AsyncSession = Depends(read_session),
) -> list[dict[str, Any]]:
    choice(status, tuple(PRODUCT_STATUS.values()), "status")
    query = select(Subscription).order_by(col(Subscription.created_at), col(Subscription.id))
    if party_id:
        query = query.where(Subscription.customer_id == party_id)
    if status:
        ours = next(k for k, v in PRODUCT_STATUS.items() if v == status)
        query = query.where(Subscription.state == ours)
    rows = await page(session, query, paging, response)
    return listing([await product_json(session, sub) for sub in rows], paging)


@tmf.get("/product/{id}", summary="One line as a TMF637 product (blocked shows as suspended)")
async def get_product(
    subscription_id: str = SubscriptionId,
    fields: str | None = Query(None, max_length=500),
    session: AsyncSession = Depends(read_session),
) -> dict[str, Any]:
    sub = await subscriptions.get_subscription(session, subscription_id)
    return one(await product_json(session, sub), fields)


router = APIRouter()
router.include_router(bss)
router.include_router(tmf)

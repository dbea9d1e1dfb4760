"""Subscriptions (our own API, CONTRACT.md) and the same lines as TMF637 products.

A line reads with its balances, pending plan change, pending price migration and running day
passes. Its actions are updates of the line's workflow (ops.subscriptions): each answers 200 with
the line as it stands afterwards (nothing new gets a URL of its own, so not 201), or the rule
that refused it (422), before anything happened. `Idempotency-Key` on the two that charge
(`/vas`, `/renew`): the same key answers the first outcome and charges once.
A blocked line is a `suspended` product in TMF637's words.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import context, read_session, runtime
from api.routers.product_order import BASE as ORDERING
from api.routers.product_order import CATALOG, ID_PATTERN, PRODUCT, customer_party, time_json
from api.routers.service_order import INVENTORY, service_ref
from api.tmf import Paging, choice, listing, one, page
from core.context import RequestContext
from domains.catalog.models import ProductOffering
from domains.ordering.models import ProductOrderItem
from domains.service_ordering.models import Service
from domains.subscription import lifecycle, rules
from domains.subscription import services as subscriptions
from domains.subscription.models import Subscription
from ops import subscriptions as ops
from ops.idempotency import check_key
from ops.runtime import Runtime

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
IdempotencyKey = Header(None, alias="Idempotency-Key", max_length=200)
# Catalogue ids are capitals, digits and underscores (VAS_DATA_1GB, PLAN_M): no NUL, no spaces.
CatalogId = Field(min_length=2, max_length=64, pattern=r"^[A-Z][A-Z0-9_]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VasPurchaseIn(Strict):
    vasOfferingId: str = CatalogId


class PlanChangeIn(Strict):
    offeringId: str = CatalogId


class TerminateIn(Strict):
    reason: str | None = Field(None, max_length=200, pattern=r"^[^\x00-\x1f]*$")


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
    return listing([await lifecycle.status_view(session, sub.id) for sub in rows], paging)


@bss.get("/{id}", summary="One line: state, number, eSIM, period, balances and what is pending")
async def get_subscription(
    subscription_id: str = SubscriptionId, session: AsyncSession = Depends(read_session)
) -> dict[str, Any]:
    return await lifecycle.status_view(session, subscription_id)


@bss.post("/{id}/vas", summary="Buy a top-up, charged to the card on file (unblocks an exhausted line)")
async def purchase_vas(
    body: VasPurchaseIn = Body(...),
    subscription_id: str = SubscriptionId,
    idempotency_key: str | None = IdempotencyKey,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    key = check_key(idempotency_key)
    return await ops.purchase_vas(rt, ctx, subscription_id, body.vasOfferingId, key)


@bss.post("/{id}/renew", summary="Renew now: charge once, start a new period, reactivate a blocked line")
async def renew_now(
    subscription_id: str = SubscriptionId,
    idempotency_key: str | None = IdempotencyKey,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return await ops.renew_now(rt, ctx, subscription_id, check_key(idempotency_key))


@bss.post("/{id}/terminate", summary="End the line: number to quarantine, eSIM back to the pool")
async def terminate(
    body: TerminateIn | None = Body(None),
    subscription_id: str = SubscriptionId,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return await ops.terminate(rt, ctx, subscription_id, body.reason if body else None)


@bss.post("/{id}/plan-change", summary="Move to another plan at the next renewal")
async def schedule_plan_change(
    body: PlanChangeIn = Body(...),
    subscription_id: str = SubscriptionId,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return await ops.schedule_plan_change(rt, ctx, subscription_id, body.offeringId)


@bss.delete("/{id}/plan-change", summary="Cancel the pending plan change (none pending is not an error)")
async def cancel_plan_change(
    subscription_id: str = SubscriptionId,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return await ops.cancel_plan_change(rt, ctx, subscription_id)


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

"""TMF638 Service Inventory (read-only): the CFS MobileBroadband of each line and the RFS it rests
on (DataService, VoiceService), with their network identity and state history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import read_session
from api.routers.product_order import ID_PATTERN, PRODUCT, customer_party, time_json
from api.routers.service_order import BASE as ORDERING
from api.routers.service_order import INVENTORY as BASE
from api.routers.service_order import SERVICE_STATE, service_ref
from api.tmf import Paging, choice, listing, one, page
from domains.service_ordering import rules
from domains.service_ordering import services as som
from domains.service_ordering.models import Service, ServiceOrder, ServiceOrderItem, ServiceStateHistory

TYPES = {"CFS": "CustomerFacingService", "RFS": "ResourceFacingService"}
# The state filter takes TMF's names and ours: `active` and `activated` are the same services.
STATE_FILTER = {
    "designed": [rules.DESIGNED],
    "reserved": [rules.RESERVED],
    "active": [rules.ACTIVATED],
    "activated": [rules.ACTIVATED],
    "terminated": [rules.TERMINATED, rules.FAILED],
    "failed": [rules.FAILED],
}


async def service_views(session: AsyncSession, services: Sequence[Service]) -> list[dict[str, Any]]:
    ids = [s.id for s in services]
    if not ids:
        return []
    parents = {s.id for s in services if s.type == "CFS"}
    children: dict[str, list[Service]] = {}
    for child in await session.exec(
        select(Service).where(col(Service.parent_service_id).in_(parents)).order_by(col(Service.id))
    ):
        children.setdefault(child.parent_service_id or "", []).append(child)
    history: dict[str, list[ServiceStateHistory]] = {}
    for h in await session.exec(
        select(ServiceStateHistory)
        .where(col(ServiceStateHistory.service_id).in_(ids))
        .order_by(col(ServiceStateHistory.id))
    ):
        history.setdefault(h.service_id, []).append(h)
    customers = dict(
        (
            await session.exec(
                select(ServiceOrder.id, ServiceOrder.customer_id).where(
                    col(ServiceOrder.id).in_({s.service_order_id for s in services})
                )
            )
        ).all()
    )
    # Every service of a service order comes from its one item (the CFS it decomposes).
    items: dict[str, str] = {}
    for so_id, item_id in await session.exec(
        select(ServiceOrderItem.service_order_id, ServiceOrderItem.id)
        .where(col(ServiceOrderItem.service_order_id).in_({s.service_order_id for s in services}))
        .order_by(col(ServiceOrderItem.id))
    ):
        items.setdefault(so_id, str(item_id))
    return [
        service_json(
            s,
            children.get(s.id, []),
            history.get(s.id, []),
            customers.get(s.service_order_id),
            items.get(s.service_order_id),
        )
        for s in services
    ]


def service_json(
    s: Service,
    children: list[Service],
    history: list[ServiceStateHistory],
    customer_id: str | None,
    item_id: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": s.id,
        "href": f"{BASE}/service/{s.id}",
        "@type": TYPES.get(s.type, "Service"),
        "@baseType": "Service",
        "serviceType": s.type,
        "name": s.name,
        "category": s.type,
        "state": SERVICE_STATE.get(s.state, s.state),
        "lifecycleState": s.state,
        "isStateful": True,
        "hasStarted": s.activated_at is not None,
        "isServiceEnabled": s.state == rules.ACTIVATED,
        "serviceDate": time_json(s.created_at),
        "serviceSpecification": {
            "id": s.spec_id,
            "name": s.name,
            "@referredType": "ServiceSpecification",
        },
        "serviceCharacteristic": [
            {"name": name, "valueType": "string", "value": value}
            for name, value in (s.characteristics or {}).items()
            if value is not None
        ],
        "supportingService": [service_ref(c) for c in children],
        "serviceOrderItem": [
            {
                "serviceOrderId": s.service_order_id,
                "itemId": item_id or "1",
                "serviceOrderHref": f"{ORDERING}/serviceOrder/{s.service_order_id}",
                "itemAction": "add",
                "@referredType": "ServiceOrderItem",
            }
        ],
        "serviceOrderId": s.service_order_id,
        "stateHistory": [
            {
                "from": h.from_state,
                "to": h.to_state,
                "at": time_json(h.at),
                "reason": h.reason,
            }
            for h in history
        ],
    }
    if customer_id:
        body["relatedParty"] = [customer_party(customer_id)]
    if s.parent_service_id:
        body["serviceRelationship"] = [
            {
                "relationshipType": "supports",
                "service": {"id": s.parent_service_id, "href": f"{BASE}/service/{s.parent_service_id}"},
            }
        ]
    if s.subscription_id:
        body["subscriptionId"] = s.subscription_id
        body["relatedEntity"] = [
            {
                "id": s.subscription_id,
                "href": f"{PRODUCT}/product/{s.subscription_id}",
                "role": "realizes",
                "@referredType": "Product",
            }
        ]
    if s.activated_at:
        body["startDate"] = time_json(s.activated_at)
    if s.terminated_at:
        body["endDate"] = time_json(s.terminated_at)
    return body


router = APIRouter(prefix=BASE, tags=["TMF638 Service Inventory"])


@router.get("/service", summary="List services (CFS and RFS)")
async def list_services(
    response: Response,
    paging: Paging = Depends(),
    service_order_id: str | None = Query(None, alias="serviceOrderId", pattern=ID_PATTERN),
    subscription_id: str | None = Query(None, alias="subscriptionId", pattern=ID_PATTERN),
    state: str | None = Query(None, max_length=20, description=", ".join(STATE_FILTER)),
    service_type: str | None = Query(None, alias="serviceType", max_length=3, description="CFS or RFS"),
    session: AsyncSession = Depends(read_session),
) -> list[dict[str, Any]]:
    choice(state, tuple(STATE_FILTER), "state")
    choice(service_type, tuple(TYPES), "serviceType")
    query = select(Service).order_by(col(Service.id))
    if service_order_id:
        query = query.where(Service.service_order_id == service_order_id)
    if subscription_id:
        query = query.where(Service.subscription_id == subscription_id)
    if state:
        query = query.where(col(Service.state).in_(STATE_FILTER[state]))
    if service_type:
        query = query.where(Service.type == service_type)
    rows = await page(session, query, paging, response)
    return listing(await service_views(session, rows), paging)


@router.get("/service/{id}", summary="One service, with its characteristics and state history")
async def get_service(
    service_id: str = Path(alias="id", pattern=ID_PATTERN, description="e.g. SVC-000001"),
    fields: str | None = Query(None, max_length=500),
    session: AsyncSession = Depends(read_session),
) -> dict[str, Any]:
    service = await som.get_service(session, service_id)
    return one((await service_views(session, [service]))[0], fields)

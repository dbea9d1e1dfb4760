"""TMF641 Service Ordering (read-only): the service order the saga made of a product order, with
its item (the CFS MobileBroadband), its state history and its provisioning tasks.

Service orders are created by the order saga, never through this API. `externalId` is the
product order the service order fulfils.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import read_session
from api.routers.product_order import BASE as ORDERING
from api.routers.product_order import ID_PATTERN, customer_party, time_json
from api.tmf import Paging, choice, listing, one
from domains.audit.models import DomainEvent
from domains.service_ordering import rules
from domains.service_ordering import services as som
from domains.service_ordering.models import ProvisioningTask, Service, ServiceOrder, ServiceOrderItem

BASE = "/tmf-api/serviceOrdering/v4"
INVENTORY = "/tmf-api/serviceInventory/v4"
TASKS = "/bss-api/v1/provisioning/task"

# our service order state -> TMF641 ServiceOrderStateType
TMF_STATE = {
    rules.ACKNOWLEDGED: "acknowledged",
    rules.IN_PROGRESS: "inProgress",
    rules.COMPLETED: "completed",
    rules.FAILED: "failed",
}
OUR_STATE = {tmf: ours for ours, tmf in TMF_STATE.items()}
# our service state -> TMF638 ServiceStateType (a failed service was never live: terminated)
SERVICE_STATE = {
    rules.DESIGNED: "designed",
    rules.RESERVED: "reserved",
    rules.ACTIVATED: "active",
    rules.TERMINATED: "terminated",
    rules.FAILED: "terminated",
}


def task_json(t: ProvisioningTask) -> dict[str, Any]:
    return {
        "id": t.id,
        "href": f"{TASKS}/{t.id}",
        "@type": "ProvisioningTask",
        "serviceOrderId": t.service_order_id,
        "serviceId": t.service_id,
        "taskType": t.task_type,
        "state": t.state,
        "attempts": t.attempts,
        "lastError": t.last_error,
        "ticketId": t.ticket_id,
        "resolutionNote": t.resolution_note,
        "createdAt": time_json(t.created_at),
        "startedAt": time_json(t.started_at),
        "completedAt": time_json(t.completed_at),
    }


def service_ref(s: Service) -> dict[str, Any]:
    return {"id": s.id, "href": f"{INVENTORY}/service/{s.id}", "name": s.name, "@referredType": "Service"}


async def service_order_views(session: AsyncSession, orders: Sequence[ServiceOrder]) -> list[dict[str, Any]]:
    """TMF641 bodies for a page of service orders, one query per kind of row."""
    ids = [so.id for so in orders]
    if not ids:
        return []
    items: dict[str, list[ServiceOrderItem]] = {}
    for item in await session.exec(
        select(ServiceOrderItem)
        .where(col(ServiceOrderItem.service_order_id).in_(ids))
        .order_by(col(ServiceOrderItem.id))
    ):
        items.setdefault(item.service_order_id, []).append(item)
    services = {
        s.id: s for s in await session.exec(select(Service).where(col(Service.service_order_id).in_(ids)))
    }
    tasks: dict[str, list[ProvisioningTask]] = {}
    for t in await session.exec(
        select(ProvisioningTask)
        .where(col(ProvisioningTask.service_order_id).in_(ids))
        .order_by(col(ProvisioningTask.id))
    ):
        tasks.setdefault(t.service_order_id, []).append(t)
    # The service order keeps no history table; its audit events are the history.
    history: dict[str, list[DomainEvent]] = {}
    for e in await session.exec(
        select(DomainEvent)
        .where(
            DomainEvent.aggregate_type == som.SO,
            col(DomainEvent.aggregate_id).in_(ids),
            col(DomainEvent.event_type).in_([f"service_order.{s}" for s in TMF_STATE]),
        )
        .order_by(col(DomainEvent.id))
    ):
        history.setdefault(e.aggregate_id, []).append(e)
    return [
        service_order_json(so, items.get(so.id, []), services, tasks.get(so.id, []), history.get(so.id, []))
        for so in orders
    ]


def service_order_json(
    so: ServiceOrder,
    items: list[ServiceOrderItem],
    services: dict[str, Service],
    tasks: list[ProvisioningTask],
    history: list[DomainEvent],
) -> dict[str, Any]:
    state = TMF_STATE.get(so.state, so.state)
    body: dict[str, Any] = {
        "id": so.id,
        "href": f"{BASE}/serviceOrder/{so.id}",
        "@type": "ServiceOrder",
        "state": state,
        "externalId": so.order_id,
        "category": "MobileBroadband",
        "orderDate": time_json(so.created_at),
        "relatedParty": [customer_party(so.customer_id)],
        "serviceOrderItem": [],
        "productOrder": {"id": so.order_id, "href": f"{ORDERING}/productOrder/{so.order_id}"},
        "stateHistory": [
            {
                "from": TMF_STATE.get(e.payload.get("from"), e.payload.get("from")),
                "to": TMF_STATE.get(e.event_type.removeprefix("service_order."), e.event_type),
                "at": time_json(e.occurred_at),
                "reason": e.payload.get("reason"),
            }
            for e in history
        ],
        "provisioningTask": [task_json(t) for t in tasks],
    }
    for item in items:
        service = services.get(item.service_id)
        ref: dict[str, Any] = {"id": item.service_id, "href": f"{INVENTORY}/service/{item.service_id}"}
        if service is not None:
            ref.update(
                name=service.name,
                state=SERVICE_STATE.get(service.state, service.state),
                serviceSpecification={"id": service.spec_id, "name": service.name},
                supportingService=[
                    service_ref(s) for s in services.values() if s.parent_service_id == service.id
                ],
                **{"@type": "CustomerFacingService", "@referredType": "Service"},
            )
        body["serviceOrderItem"].append(
            {
                "id": str(item.id),
                "action": item.action,
                "state": state,
                "service": ref,
                "@type": "ServiceOrderItem",
            }
        )
    if so.started_at:
        body["startDate"] = time_json(so.started_at)
    if so.completed_at:
        body["completionDate"] = time_json(so.completed_at)
    if so.failure_reason:
        failed_at = history[-1].occurred_at if history else so.updated_at
        body["note"] = [{"text": so.failure_reason, "date": time_json(failed_at), "author": "bss"}]
    return body


tmf = APIRouter(prefix=BASE, tags=["TMF641 Service Ordering"])


@tmf.get("/serviceOrder", summary="List service orders")
async def list_service_orders(
    response: Response,
    paging: Paging = Depends(),
    state: str | None = Query(None, max_length=20, description=", ".join(OUR_STATE)),
    external_id: str | None = Query(None, alias="externalId", pattern=ID_PATTERN, description="ORD id"),
    customer_id: str | None = Query(None, alias="customerId", pattern=ID_PATTERN),
    session: AsyncSession = Depends(read_session),
) -> list[dict[str, Any]]:
    choice(state, tuple(OUR_STATE), "state")
    rows, total = await som.list_service_orders(
        session,
        state=OUR_STATE[state] if state else None,
        customer_id=customer_id,
        order_id=external_id,
        offset=paging.offset,
        limit=paging.limit,
    )
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(rows))
    return listing(await service_order_views(session, rows), paging)


@tmf.get("/serviceOrder/{id}", summary="One service order, with its tasks and state history")
async def get_service_order(
    service_order_id: str = Path(alias="id", pattern=ID_PATTERN, description="e.g. SO-000001"),
    fields: str | None = Query(None, max_length=500),
    session: AsyncSession = Depends(read_session),
) -> dict[str, Any]:
    so = await som.get_service_order(session, service_order_id)
    return one((await service_order_views(session, [so]))[0], fields)


router = tmf

"""TMF688 Event: the audit log (audit.domain_event, written in the transaction of every write),
read through one topic, `audit`. Filters: `customerId` (events about the customer, their orders
and their lines), `orderId`, `subscriptionId`, `eventType` (a trailing `*` matches a prefix),
`since` / `until` (date-times, business time). Newest first. Read-only: no hubs, no publishing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response

from api.deps import read_session
from api.routers.customer import time_json
from api.tmf import Paging, listing, one
from core.errors import InvalidInput, NotFound
from domains.audit import queries

BASE = "/tmf-api/event/v4"
TOPIC = "audit"

router = APIRouter(prefix=BASE, tags=["TMF688 Event"])

ID = r"^[A-Za-z0-9_.:-]+$"


def topic() -> dict[str, Any]:
    return {
        "id": TOPIC,
        "href": f"{BASE}/topic/{TOPIC}",
        "@type": "Topic",
        "name": "audit",
        "headerQuery": "customerId, orderId, subscriptionId, eventType, since, until",
    }


def to_tmf(e: Any) -> dict[str, Any]:
    payload = e.payload or {}
    customer = payload.get("customer_id") or payload.get("customerId")
    if e.aggregate_type in queries.CUSTOMER_AGGREGATES:
        customer = e.aggregate_id
    parties: list[dict[str, Any]] = [
        {"id": e.actor, "name": e.actor, "role": "actor", "@referredType": "Actor"}
    ]
    if isinstance(customer, str) and customer:
        parties.append({"id": customer, "role": "customer", "@referredType": "Customer"})
    body: dict[str, Any] = {
        "id": str(e.event_id),
        "href": f"{BASE}/topic/{TOPIC}/event/{e.event_id}",
        "@type": "Event",
        "eventId": str(e.event_id),
        "eventType": e.event_type,
        "title": e.event_type,
        "domain": e.aggregate_type,
        "eventTime": time_json(e.occurred_at),
        "timeOccurred": time_json(e.occurred_at),
        "source": {"id": e.aggregate_id, "name": e.aggregate_type, "@referredType": e.aggregate_type},
        "reportingSystem": {"id": e.service_identity, "name": e.channel},
        "relatedParty": parties,
        "event": payload,
        "analyticCharacteristic": [
            {"name": "sequence", "valueType": "integer", "value": e.id},
            {"name": "actor", "valueType": "string", "value": e.actor},
            {"name": "channel", "valueType": "string", "value": e.channel},
            {"name": "serviceIdentity", "valueType": "string", "value": e.service_identity},
        ],
    }
    if e.trace_id:
        body["correlationId"] = e.trace_id
    return body


def _topic(topic_id: str) -> None:
    if topic_id != TOPIC:
        raise NotFound("event.topic.not_found", f"No topic {topic_id}; the audit log is topic {TOPIC!r}.")


def _when(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(f"{name}.timezone_required", f"{name} needs a time zone (e.g. Z or +08:00).")
    try:
        return value.astimezone(UTC) if value is not None else None
    except (OverflowError, ValueError):
        raise InvalidInput(f"{name}.invalid", f"{name} is out of range.") from None


@router.get("/topic", summary="The topics: one, `audit`", response_model=list[dict[str, Any]])
async def list_topics(response: Response) -> list[dict[str, Any]]:
    response.headers["X-Total-Count"] = response.headers["X-Result-Count"] = "1"
    return [topic()]


@router.get("/topic/{id}", summary="One topic")
async def get_topic(topic_id: str = Path(alias="id", max_length=40)) -> dict[str, Any]:
    _topic(topic_id)
    return topic()


@router.get(
    "/topic/{topicId}/event",
    summary="Audit events, newest first, by customer, order, line, type or time",
    response_model=list[dict[str, Any]],
)
async def list_events(
    response: Response,
    topic_id: str = Path(alias="topicId", max_length=40),
    customer_id: str | None = Query(None, alias="customerId", max_length=64, pattern=ID),
    order_id: str | None = Query(None, alias="orderId", max_length=40, pattern=ID),
    subscription_id: str | None = Query(None, alias="subscriptionId", max_length=40, pattern=ID),
    event_type: str | None = Query(None, alias="eventType", max_length=100, pattern=r"^[A-Za-z0-9_.]+\*?$"),
    since: datetime | None = Query(None, description="ISO 8601 date-time with a zone"),
    until: datetime | None = Query(None, description="ISO 8601 date-time with a zone"),
    paging: Paging = Depends(),
    session=Depends(read_session),
) -> list[dict[str, Any]]:
    _topic(topic_id)
    total, rows = await queries.list_events(
        session,
        customer_id=customer_id,
        order_id=order_id,
        subscription_id=subscription_id,
        event_type=event_type,
        since=_when(since, "since"),
        until=_when(until, "until"),
        offset=paging.offset,
        limit=paging.limit,
    )
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(rows))
    return listing([to_tmf(e) for e in rows], paging)


@router.get("/topic/{topicId}/event/{id}", summary="One audit event")
async def get_event(
    topic_id: str = Path(alias="topicId", max_length=40),
    event_id: str = Path(alias="id", max_length=40),
    fields: str | None = Query(None, max_length=500),
    session=Depends(read_session),
) -> dict[str, Any]:
    _topic(topic_id)
    return one(to_tmf(await queries.get_event(session, event_id)), fields)

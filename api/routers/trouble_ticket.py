"""TMF621 Trouble Ticket: create, list, get and patch tickets.

- The customer is the `relatedParty` with role `customer` (or `@referredType: Customer`); the agent
  working the ticket is the `relatedParty` with role `assignee` (`@referredType: Agent`, id `AGT-…`,
  see `GET /bss-api/v1/agent`). A PATCH naming another assignee reassigns the ticket.
- A case is a `relatedEntity` with role `case` (`CASE-…`); an order (`ORD-…`) or a line (`SUB-…`)
  may be named the same way (roles `order`, `subscription`).
- `priority` is one of low, normal, high, urgent; the SLA due time (`expectedResolutionDate`) comes
  from the seeded SLA policies (ticket type x priority), and a ticket still open when it passes is
  escalated (priority up one level, assigned to the supervisor, with a note).
- TMF621 v4 has no `open` status: a ticket the system took in shows `status: acknowledged` with our
  own lifecycle state beside it in `state` (open, acknowledged, in_progress, pending, resolved,
  closed, cancelled). A PATCH of `status` moves the ticket along that lifecycle: `acknowledged`
  (ack: needs an assignee), `inProgress` (start, resume or reopen), `pending`, `resolved` (needs
  `resolutionNotes` or `statusChangeReason`), `closed`, `cancelled`. An illegal move is a 422 with
  the rule code and changes nothing (the whole PATCH is one transaction).
- `note` items without an `id` in a PATCH are added to the ticket (notes are never edited).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import Field

from api import tmf
from api.deps import context, runtime
from api.routers.customer import TmfIn, time_json
from core.context import RequestContext
from core.errors import InvalidInput, PolicyViolation
from domains.crm import rules
from ops import crm as ops
from ops.crm import TicketDetail
from ops.runtime import Runtime

BASE = "/tmf-api/troubleTicket/v4"
CUSTOMER_HREF = "/tmf-api/customerManagement/v4/customer"
CASE_HREF = "/bss-api/v1/case"
router = APIRouter(prefix=BASE, tags=["TMF621 Trouble Ticket"])

IdPath = Path(alias="id", max_length=64, description="Ticket id, e.g. TKT-1a2b3c4d.")
IdempotencyKey = Header(None, alias="Idempotency-Key", max_length=200)
SEVERITY = {"low": "Minor", "normal": "Minor", "high": "Major", "urgent": "Critical"}
TmfStatus = Literal["acknowledged", "inProgress", "pending", "resolved", "closed", "cancelled"]


# ----------------------------------------------------------------------------------- request bodies


class RefIn(TmfIn):
    id: str = Field(max_length=64)
    href: str | None = Field(None, max_length=500)
    name: str | None = Field(None, max_length=200)
    role: str | None = Field(None, max_length=50)
    at_referred_type: str | None = Field(None, alias="@referredType", max_length=50)


class NoteIn(TmfIn):
    id: str | None = Field(None, max_length=64)
    author: str | None = Field(None, max_length=200)
    date: datetime | None = None
    text: str = Field(min_length=1, max_length=4000)


class ChannelIn(TmfIn):
    id: str | None = Field(None, max_length=64)
    href: str | None = Field(None, max_length=500)
    name: str | None = Field(None, max_length=100)
    at_referred_type: str | None = Field(None, alias="@referredType", max_length=50)


class TroubleTicketIn(TmfIn):
    name: str | None = Field(None, max_length=200, description="Subject; the description's start if absent.")
    description: str = Field(max_length=4000)
    ticketType: str = Field(max_length=40, description=f"One of {', '.join(rules.TICKET_TYPES)}.")
    severity: str | None = Field(None, max_length=40, description="Accepted; shown as derived from priority.")
    priority: str | None = Field(None, max_length=20, description="low, normal (default), high or urgent.")
    externalId: str | None = Field(None, max_length=100)
    requestedResolutionDate: datetime | None = None
    status: Literal["acknowledged"] | None = Field(
        None, description="A new ticket is always acknowledged (state open)."
    )
    channel: ChannelIn | None = None
    relatedParty: list[RefIn] = Field(default_factory=list, max_length=10)
    relatedEntity: list[RefIn] = Field(default_factory=list, max_length=10)
    note: list[NoteIn] = Field(default_factory=list, max_length=20)
    attachment: list[dict[str, Any]] | None = Field(
        None, max_length=0, description="Not kept: must be empty."
    )


class TroubleTicketPatch(TmfIn):
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=4000)
    priority: str | None = Field(None, max_length=20)
    severity: str | None = Field(None, max_length=40)
    status: TmfStatus | None = None
    statusChangeReason: str | None = Field(None, max_length=500)
    resolutionNotes: str | None = Field(None, max_length=4000, description="Required to resolve.")
    relatedParty: list[RefIn] | None = Field(None, max_length=10)
    note: list[NoteIn] | None = Field(None, max_length=20)


def _is(ref: RefIn, role: str, *types: str) -> bool:
    return (ref.role or "").lower() == role or (ref.at_referred_type or "") in types


def _customer(parties: list[RefIn]) -> str | None:
    found = [p.id for p in parties if _is(p, "customer", "Customer")]
    if len(found) > 1:
        raise InvalidInput("ticket.open.one_customer", "A ticket has one customer in relatedParty.")
    return found[0] if found else None


def _assignee(parties: list[RefIn]) -> str | None:
    found = [p.id for p in parties if _is(p, "assignee", "Agent")]
    if len(found) > 1:
        raise InvalidInput("ticket.assign.one_agent", "A ticket has one assignee in relatedParty.")
    return found[0] if found else None


def _entities(entities: list[RefIn]) -> dict[str, str | None]:
    out: dict[str, str | None] = {"case_id": None, "related_order_id": None, "related_service_id": None}
    for e in entities:
        if _is(e, "case", "Case") or e.id.startswith("CASE-"):
            key = "case_id"
        elif _is(e, "order", "ProductOrder") or e.id.startswith("ORD-"):
            key = "related_order_id"
        elif _is(e, "subscription", "Subscription", "Product", "Service") or e.id.startswith(
            ("SUB-", "SVC-")
        ):
            key = "related_service_id"
        else:
            raise InvalidInput(
                "ticket.open.related_entity_unknown",
                f"relatedEntity {e.id!r}: a case (CASE-…), an order (ORD-…) or a line (SUB-…).",
            )
        if out[key] is not None:
            raise InvalidInput(
                "ticket.open.related_entity_twice", f"Only one {key.replace('_id', '')} per ticket."
            )
        out[key] = e.id
    return out


# ----------------------------------------------------------------------------------- response bodies


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def trouble_ticket_json(d: TicketDetail) -> dict[str, Any]:
    t = d.ticket
    parties = []
    if t.customer_id:
        parties.append(
            {
                "id": t.customer_id,
                "href": f"{CUSTOMER_HREF}/{t.customer_id}",
                "role": "customer",
                "@referredType": "Customer",
            }
        )
    if t.assigned_to_agent_id:
        parties.append({"id": t.assigned_to_agent_id, "role": "assignee", "@referredType": "Agent"})
    entities = []
    if t.case_id:
        entities.append(
            {"id": t.case_id, "href": f"{CASE_HREF}/{t.case_id}", "role": "case", "@referredType": "Case"}
        )
    if t.related_order_id:
        entities.append({"id": t.related_order_id, "role": "order", "@referredType": "ProductOrder"})
    if t.related_service_id:
        kind = "subscription" if t.related_service_id.startswith("SUB-") else "service"
        entities.append({"id": t.related_service_id, "role": kind, "@referredType": kind.capitalize()})
    last = d.history[-1] if d.history else None
    return _drop_none(
        {
            "id": t.id,
            "href": f"{BASE}/troubleTicket/{t.id}",
            "@type": "TroubleTicket",
            "name": t.subject,
            "description": t.description,
            "ticketType": t.ticket_type,
            "priority": t.priority,
            "severity": SEVERITY.get(t.priority, "Minor"),
            "status": rules.TMF_TICKET_STATUS[t.state],
            "state": t.state,
            "creationDate": time_json(t.opened_at),
            "lastUpdate": time_json(t.updated_at or t.opened_at),
            "expectedResolutionDate": time_json(t.sla_due_at),
            "resolutionDate": time_json(t.resolved_at),
            "statusChangeDate": time_json(last.changed_at) if last else None,
            "statusChangeReason": last.reason if last and last.reason else None,
            "resolutionNotes": t.resolution_notes,
            "escalations": t.escalations,
            "waitingWorkflowId": t.waiting_workflow_id,
            "relatedParty": parties,
            "relatedEntity": entities,
            "note": [
                {
                    "id": str(n.id),
                    "author": n.author,
                    "date": time_json(n.created_at),
                    "text": n.body,
                    "@type": "Note",
                }
                for n in d.notes
            ],
            "statusChange": [
                _drop_none(
                    {
                        "status": rules.TMF_TICKET_STATUS[h.to_state],
                        "changeDate": time_json(h.changed_at),
                        "changeReason": h.reason or h.trigger,
                        "@type": "StatusChange",
                    }
                )
                for h in d.history
            ],
        }
    )


# ----------------------------------------------------------------------------------------- routes


@router.post("/troubleTicket", status_code=201, summary="Open a trouble ticket")
async def create_ticket(
    body: TroubleTicketIn,
    response: Response,
    idempotency_key: str | None = IdempotencyKey,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    customer_id = _customer(body.relatedParty)
    entities = _entities(body.relatedEntity)
    if customer_id is None and entities["case_id"] is None:
        raise PolicyViolation(
            "ticket.open.requires_customer",
            "A ticket needs its customer in relatedParty (role customer) or a case in relatedEntity.",
        )
    subject = (body.name or "").strip() or body.description.strip()[:80]
    detail, replayed = await ops.open_ticket(
        rt,
        ctx,
        idempotency_key=idempotency_key,
        ticket_type=body.ticketType,
        subject=subject,
        description=body.description,
        customer_id=customer_id,
        priority=body.priority or "normal",
        assigned_to_agent_id=_assignee(body.relatedParty),
        notes=[n.text for n in body.note],
        **entities,
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"{BASE}/troubleTicket/{detail.ticket.id}"
    return trouble_ticket_json(detail)


@router.get("/troubleTicket", summary="List trouble tickets, newest first")
async def list_tickets(
    response: Response,
    paging: tmf.Paging = Depends(),
    state: str | None = Query(None, max_length=20, description="Our state; `open` = any open state."),
    customer: str | None = Query(None, alias="relatedParty.id", max_length=64, description="Customer id."),
    customer_id: str | None = Query(None, alias="customerId", max_length=64),
    case_id: str | None = Query(None, alias="caseId", max_length=64),
    agent_id: str | None = Query(None, alias="assignee", max_length=64, description="Agent id."),
    priority: str | None = Query(None, max_length=20),
    rt: Runtime = Depends(runtime),
) -> list[dict[str, Any]]:
    tmf.choice(state, ("open", *rules.TICKET_STATES), "state")
    tmf.choice(priority, rules.TICKET_PRIORITIES, "priority")
    if customer and customer_id and customer != customer_id:
        raise InvalidInput("ticket.list.customer_twice", "relatedParty.id and customerId disagree.")
    rows, total = await ops.list_tickets(
        rt,
        offset=paging.offset,
        limit=paging.limit,
        state=state,
        customer_id=customer or customer_id,
        case_id=case_id,
        agent_id=agent_id,
        priority=priority,
    )
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(rows))
    return tmf.listing([trouble_ticket_json(d) for d in rows], paging)


@router.get("/troubleTicket/{id}", summary="One trouble ticket, with notes and status history")
async def get_ticket(
    ticket_id: str = IdPath,
    fields: str | None = Query(None, max_length=500),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    return tmf.one(trouble_ticket_json(await ops.ticket_detail(rt, ticket_id)), fields)


@router.patch("/troubleTicket/{id}", summary="Change, assign, annotate or move a trouble ticket")
async def patch_ticket(
    body: TroubleTicketPatch,
    ticket_id: str = IdPath,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    if body.relatedParty is not None and _customer(body.relatedParty) is not None:
        raise InvalidInput("ticket.update.customer_fixed", "A ticket's customer cannot be changed.")
    if body.name is not None and not body.name.strip():
        raise InvalidInput("ticket.open.subject_required", "A ticket needs a subject.")
    detail = await ops.change_ticket(
        rt,
        ctx,
        ticket_id,
        subject=body.name,
        description=body.description,
        priority=body.priority,
        agent_id=_assignee(body.relatedParty or []),
        notes=[n.text for n in body.note or [] if n.id is None],
        status=body.status,
        reason=body.statusChangeReason,
        resolution_notes=body.resolutionNotes,
    )
    return trouble_ticket_json(detail)

"""Tickets a workflow waits on (BSS, not TMF621): a renewal that cannot be charged, a refund the
gateway keeps refusing, … The operator tells the workflow to `retry` the step or that it was
`resolve`d by hand; both are signals, so they answer 202 and the workflow closes the ticket."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from api.deps import context, runtime
from core.context import RequestContext
from ops import attention as ops
from ops.runtime import Runtime
from ops.som import temporal_guard

BASE = "/bss-api/v1/ticket"
TicketId = Path(alias="id", pattern=r"^TKT-[0-9a-f]{8}$", description="e.g. TKT-1a2b3c4d")

router = APIRouter(prefix=BASE, tags=["Tickets waited on by workflows (BSS)"])


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: StrictStr = Field("", max_length=2000, description="What was done by hand; required.")


def ticket_json(t) -> dict[str, Any]:
    return {
        "id": t.id,
        "href": f"{BASE}/{t.id}",
        "ticketType": t.ticket_type,
        "subject": t.subject,
        "description": t.description,
        "state": t.state,
        "priority": t.priority,
        "customerId": t.customer_id,
        "relatedOrderId": t.related_order_id,
        "relatedSubscriptionId": t.related_service_id,
        "waitingWorkflowId": t.waiting_workflow_id,
        "waitingTopic": t.waiting_topic,
        "openedAt": t.opened_at.isoformat() if t.opened_at else None,
        "resolvedAt": t.resolved_at.isoformat() if t.resolved_at else None,
        "resolutionNotes": t.resolution_notes,
    }


@router.get("", summary="Tickets a workflow waits on (open ones by default)")
async def list_waiting(
    state: str = Query("open", pattern=r"^(open|resolved|closed|cancelled|all)$"),
    rt: Runtime = Depends(runtime),
) -> list[dict[str, Any]]:
    rows = await ops.waiting_tickets(rt, state=None if state == "all" else state)
    return [ticket_json(t) for t in rows]


@router.get("/{id}", summary="One ticket")
async def get_one(ticket_id: str = TicketId, rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    return ticket_json(await ops.get_ticket(rt, ticket_id))


@router.post("/{id}/retry", status_code=202, summary="Tell the waiting workflow to try its step again")
async def retry(
    ticket_id: str = TicketId, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    async with temporal_guard("ticket"):
        return ticket_json(await ops.decide(rt, ctx, ticket_id, "retry"))


@router.post("/{id}/resolve", status_code=202, summary="The step was done by hand (note required)")
async def resolve(
    body: Resolution,
    ticket_id: str = TicketId,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    async with temporal_guard("ticket"):
        return ticket_json(await ops.decide(rt, ctx, ticket_id, "resolve", body.note))

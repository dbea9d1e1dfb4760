"""Cases (BSS, not TMF): a customer's matter grouping its trouble tickets, and the agents.

`POST /case` opens one for an active customer; tickets join it through TMF621 (`relatedEntity`
role `case`). States open → in_progress ⇄ pending_customer → resolved → closed
(`POST /case/{id}/transition {"trigger"}`: take, await_customer, resume, resolve, cancel);
`POST /case/{id}/close {"resolutionCode"}` resolves (when every ticket of the case is resolved,
closed or cancelled) and closes in one step. A closed case takes no notes or changes.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from api import tmf
from api.deps import context, runtime
from core.context import RequestContext
from domains.crm import rules
from ops import crm as ops
from ops.crm import CaseDetail
from ops.runtime import Runtime

BASE = "/bss-api/v1"
TICKET_HREF = "/tmf-api/troubleTicket/v4/troubleTicket"
router = APIRouter(prefix=BASE, tags=["Cases (BSS)"])

CaseId = Path(alias="id", pattern=r"^CASE-[0-9a-f]{8}$", description="e.g. CASE-1a2b3c4d")
IdempotencyKey = Header(None, alias="Idempotency-Key", max_length=200)


def _t(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customerId: StrictStr = Field(max_length=64)
    subject: StrictStr = Field(min_length=1, max_length=200)
    description: StrictStr = Field("", max_length=4000)
    priority: StrictStr = Field("normal", max_length=20, description=", ".join(rules.CASE_PRIORITIES))
    category: StrictStr = Field("other", max_length=30, description=", ".join(rules.CASE_CATEGORIES))
    agentId: StrictStr | None = Field(None, max_length=16, description="The agent opening it (AGT-…).")


class CasePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: StrictStr | None = Field(None, max_length=20)
    subject: StrictStr | None = Field(None, min_length=1, max_length=200)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StrictStr = Field(min_length=1, max_length=4000)


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trigger: Literal["take", "await_customer", "resume", "resolve", "cancel"]
    note: StrictStr | None = Field(None, max_length=4000)


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolutionCode: StrictStr = Field("", max_length=50, description="Required, e.g. fixed, duplicate.")
    note: StrictStr | None = Field(None, max_length=4000)


def case_json(d: CaseDetail | Any, *, full: bool = True) -> dict[str, Any]:
    c = d.case if isinstance(d, CaseDetail) else d
    body: dict[str, Any] = {
        "id": c.id,
        "href": f"{BASE}/case/{c.id}",
        "customerId": c.customer_id,
        "subject": c.subject,
        "description": c.description,
        "state": c.state,
        "priority": c.priority,
        "category": c.category,
        "resolutionCode": c.resolution_code,
        "openedBy": c.opened_by,
        "openedByAgentId": c.opened_by_agent_id,
        "openedAt": _t(c.opened_at),
        "updatedAt": _t(c.updated_at),
        "resolvedAt": _t(c.resolved_at),
        "closedAt": _t(c.closed_at),
    }
    if full and isinstance(d, CaseDetail):
        body["notes"] = [{"author": n.author, "text": n.body, "createdAt": _t(n.created_at)} for n in d.notes]
        body["tickets"] = [
            {
                "id": t.id,
                "href": f"{TICKET_HREF}/{t.id}",
                "subject": t.subject,
                "ticketType": t.ticket_type,
                "state": t.state,
                "priority": t.priority,
                "assignee": t.assigned_to_agent_id,
                "slaDueAt": _t(t.sla_due_at),
            }
            for t in d.tickets
        ]
    return body


@router.post("/case", status_code=201, summary="Open a case for a customer")
async def open_case(
    body: CaseIn,
    response: Response,
    idempotency_key: str | None = IdempotencyKey,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    detail, replayed = await ops.open_case(
        rt,
        ctx,
        idempotency_key=idempotency_key,
        customer_id=body.customerId,
        subject=body.subject,
        description=body.description,
        priority=body.priority,
        category=body.category,
        agent_id=body.agentId,
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return case_json(detail)


@router.get("/case", summary="Cases, newest first")
async def list_cases(
    response: Response,
    paging: tmf.Paging = Depends(),
    customer_id: str | None = Query(None, alias="customerId", max_length=64),
    state: str | None = Query(None, max_length=20, description="A case state, or `open` for any open one."),
    rt: Runtime = Depends(runtime),
) -> list[dict[str, Any]]:
    tmf.choice(state, ("open", *rules.CASE_STATES), "state")
    rows, total = await ops.list_cases(
        rt, customer_id=customer_id, state=state, offset=paging.offset, limit=paging.limit
    )
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(rows))
    return tmf.listing([case_json(c, full=False) for c in rows], paging)


@router.get("/case/{id}", summary="One case, with its notes and tickets")
async def get_case(case_id: str = CaseId, rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    return case_json(await ops.case_detail(rt, case_id))


@router.patch("/case/{id}", summary="Change a case's priority or subject")
async def patch_case(
    body: CasePatch,
    case_id: str = CaseId,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return case_json(await ops.update_case(rt, ctx, case_id, priority=body.priority, subject=body.subject))


@router.post("/case/{id}/note", summary="Add an internal note")
async def note_case(
    body: NoteIn,
    case_id: str = CaseId,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return case_json(await ops.note_case(rt, ctx, case_id, body.text))


@router.post("/case/{id}/transition", summary="Move a case along its lifecycle")
async def transition_case(
    body: TransitionIn,
    case_id: str = CaseId,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return case_json(await ops.transition_case(rt, ctx, case_id, body.trigger, body.note))


@router.post("/case/{id}/close", summary="Resolve (if it can) and close, with a resolution code")
async def close_case(
    body: CloseIn,
    case_id: str = CaseId,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return case_json(await ops.close_case(rt, ctx, case_id, body.resolutionCode, body.note))


@router.get("/agent", summary="Agents tickets can be assigned to")
async def list_agents(
    role: Literal["csr", "supervisor", "engineer", "system"] | None = Query(None),
    rt: Runtime = Depends(runtime),
) -> list[dict[str, Any]]:
    return [
        {"id": a.id, "name": a.name, "email": a.email, "role": a.role, "status": a.status}
        for a in await ops.list_agents(rt, role)
    ]

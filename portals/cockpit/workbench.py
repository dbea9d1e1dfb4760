"""The case and ticket workbench: queues by SLA due time on the business clock (overdue first,
with the time left or overdue), filtered mine / unassigned / all; a ticket's and a case's page;
assign (to oneself, or by a supervisor to any agent), note, resolve, close. A ticket's close and a
case's close are final, and retry / resolve of a ticket a workflow waits on moves that workflow:
those go through a confirm step. Everything through ops.crm / ops.attention as the operator."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.errors import InvalidInput
from domains.staff.models import Operator
from ops import attention, crm, workbench
from portals.cockpit.base import (
    SUPERVISOR,
    confirm,
    confirmed,
    context_for,
    done,
    local,
    page,
    runtime_of,
    signed_in,
    text,
)
from portals.web.app import form_data

router = APIRouter()
TICKET_ACTIONS = ("note", "assign", "resolve", "close", "retry")
CASE_ACTIONS = ("note", "take", "resolve", "close")


def _view(request: Request) -> str:
    view = request.query_params.get("view", "all")
    if view not in workbench.VIEWS:
        raise InvalidInput("cockpit.queue.view", f"A queue view is one of {', '.join(workbench.VIEWS)}.")
    return view


@router.get("/tickets")
async def tickets(request: Request) -> Response:
    op = await signed_in(request)
    rt = runtime_of(request)
    view = _view(request)
    me = await workbench.agent_of(rt, op.email)
    rows = await workbench.ticket_queue(rt, view=view, agent_id=me.id if me else None)
    return page(
        request,
        "tickets.html",
        {"rows": rows, "view": view, "me": me, "flash": request.query_params.get("done")},
    )


async def _work(
    request: Request, kind: str, actions: tuple[str, ...]
) -> tuple[Operator, dict[str, str], str, str]:
    """A posted ticket or case action: the operator, the form, the action (one of `actions`, else
    400 cockpit.<kind>.action) and its note (cockpit.<kind>.note_length when too long)."""
    op = await signed_in(request)
    form = await form_data(request)
    action = form.get("action", "")
    if action not in actions:
        raise InvalidInput(f"cockpit.{kind}.action", f"A {kind} action is one of {', '.join(actions)}.")
    note = text(form, "text", code=f"cockpit.{kind}.note_length")
    return op, form, action, note


@router.get("/tickets/{ticket_id}")
async def ticket(request: Request, ticket_id: str) -> Response:
    op = await signed_in(request)
    rt = runtime_of(request)
    return page(
        request,
        "ticket.html",
        {
            "t": await workbench.ticket_page(rt, ticket_id),
            "me": await workbench.agent_of(rt, op.email),
            "agents": await workbench.active_agents(rt),
            "flash": request.query_params.get("done"),
        },
    )


@router.post("/tickets/{ticket_id}")
async def work_ticket(request: Request, ticket_id: str) -> Response:
    op, form, action, note = await _work(request, "ticket", TICKET_ACTIONS)
    rt, ctx = runtime_of(request), context_for(op)
    found = await attention.get_ticket(rt, ticket_id[:16])
    back = local(form.get("back") or "/tickets")
    if action == "assign":
        who = form.get("agent", "me").strip()[:16]
        if who == "me":
            agent_id = (await workbench.ensure_agent(rt, ctx, op)).id
        else:
            await signed_in(request, SUPERVISOR)  # handing work to someone else
            agent_id = who
        await crm.change_ticket(rt, ctx, found.id, agent_id=agent_id)
        return done(back, f"assigned {found.id} to {agent_id}")
    waits = found.waiting_workflow_id is not None or await workbench.stuck_task_of(rt, found.id) is not None
    if action == "close" or (waits and action in ("retry", "resolve")):
        if action != "close":
            await signed_in(request, SUPERVISOR)  # a workflow's stuck step, as on the order queue
        plan = await workbench.ticket_plan(rt, found.id, action, note)
        if not confirmed(form):
            return confirm(request, plan, f"/tickets/{found.id}", back)
    await workbench.answer_ticket(rt, ctx, found.id, action, note)
    return done(back, f"{action} {found.id}")


@router.get("/cases")
async def cases(request: Request) -> Response:
    op = await signed_in(request)
    rt = runtime_of(request)
    view = _view(request)
    me = await workbench.agent_of(rt, op.email)
    rows = await workbench.case_queue(rt, view=view, agent_id=me.id if me else None, actor=op.email)
    return page(
        request, "cases.html", {"rows": rows, "view": view, "flash": request.query_params.get("done")}
    )


@router.get("/cases/{case_id}")
async def case(request: Request, case_id: str) -> Response:
    await signed_in(request)
    return page(
        request,
        "case.html",
        {
            "c": await workbench.case_page(runtime_of(request), case_id),
            "flash": request.query_params.get("done"),
        },
    )


@router.post("/cases/{case_id}")
async def work_case(request: Request, case_id: str) -> Response:
    op, form, action, note = await _work(request, "case", CASE_ACTIONS)
    rt, ctx = runtime_of(request), context_for(op)
    found = (await crm.case_detail(rt, case_id[:16])).case
    back = local(form.get("back") or f"/cases/{found.id}")
    if action == "note":
        await crm.note_case(rt, ctx, found.id, note)
    elif action == "take":
        await crm.transition_case(rt, ctx, found.id, "take", note or None)
    elif action == "resolve":
        await crm.transition_case(rt, ctx, found.id, "resolve", note or None)
    else:
        code = text(form, "resolution_code", 50, code="cockpit.case.resolution_code_length")
        plan = await workbench.case_close_plan(rt, found.id, code, note)
        if not confirmed(form):
            return confirm(request, plan, f"/cases/{found.id}", back)
        await crm.close_case(rt, ctx, found.id, code, note or None)
    return done(back, f"{action} {found.id}")

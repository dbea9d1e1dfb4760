"""Port requests by state; a supervisor approves or rejects one (with a reason) after a confirm
step that says exactly what will happen. Through ops.porting (updates of the port workflow)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.errors import InvalidInput
from domains.porting.rules import MAX_REASON, STATES
from ops import porting, workbench
from portals.cockpit.base import (
    SUPERVISOR,
    confirm,
    confirmed,
    context_for,
    done,
    page,
    runtime_of,
    signed_in,
    text,
)
from portals.web.app import form_data

router = APIRouter()


@router.get("/porting")
async def port_requests(request: Request) -> Response:
    await signed_in(request)
    state = request.query_params.get("state", "") or None
    if state is not None and state not in STATES:
        raise InvalidInput("cockpit.port.state", f"A port request's state is one of {', '.join(STATES)}.")
    total, rows = await porting.listing(runtime_of(request), state=state, limit=200)
    return page(
        request,
        "porting.html",
        {
            "rows": rows,
            "total": total,
            "state": state or "",
            "states": STATES,
            "flash": request.query_params.get("done"),
        },
    )


@router.post("/porting/{port_id}")
async def decide(request: Request, port_id: str) -> Response:
    op = await signed_in(request, SUPERVISOR)
    form = await form_data(request)
    action = form.get("action", "")
    if action not in ("approve", "reject"):
        raise InvalidInput("cockpit.port.action", "Approve or reject.")
    reason = text(form, "reason", MAX_REASON, code="port.reject.reason_too_long")
    rt = runtime_of(request)
    plan = await workbench.port_plan(rt, port_id, action, reason)
    if not confirmed(form):
        return confirm(request, plan, f"/porting/{port_id[:20]}", "/porting")
    if action == "approve":
        out = await porting.approve(rt, context_for(op), port_id[:20])
    else:
        out = await porting.reject(rt, context_for(op), port_id[:20], reason)
    return done("/porting", f"{action} {out['id']}: now {out['state']}")

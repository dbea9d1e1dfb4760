"""The order queue: running orders, stuck ones first with their reason and a link to the workflow
in the Temporal UI; a supervisor retries or resolves the stuck step after a confirm step."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from core.errors import InvalidInput
from ops import cockpit
from portals.cockpit.base import NOTE_MAX, SUPERVISOR, context_for, page, runtime_of, signed_in
from portals.web.app import form_data

router = APIRouter()


@router.get("/orders")
async def orders(request: Request) -> Response:
    await signed_in(request)
    rows = await cockpit.order_queue(runtime_of(request))
    return page(request, "orders.html", {"rows": rows, "flash": request.query_params.get("done")})


@router.post("/orders/{order_id}/stuck")
async def stuck(request: Request, order_id: str) -> Response:
    """Two steps: the first post shows exactly what will happen; the confirmed one does it."""
    op = await signed_in(request, SUPERVISOR)
    form = await form_data(request)
    action, note = form.get("action", ""), form.get("note", "").strip()
    if action not in ("retry", "resolve"):
        raise InvalidInput("cockpit.stuck.action", "Choose retry or resolve.")
    if len(note) > NOTE_MAX:
        raise InvalidInput("cockpit.stuck.note_length", f"A note is at most {NOTE_MAX} characters.")
    rt = runtime_of(request)
    row = await cockpit.stuck_work(rt, order_id)
    if form.get("confirmed") != "yes":
        return page(request, "confirm_stuck.html", {"row": row, "action": action, "note": note})
    await cockpit.decide_stuck(rt, context_for(op), row.order.id, action, note)
    return RedirectResponse(f"/orders?done={quote(action)}+{quote(row.order.id)}", status_code=303)

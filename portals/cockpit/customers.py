"""Customer search, the 360 view, and a line's page with its lifecycle actions (each behind a
confirm step that spells out the charge, the card and what ends; terminate is a supervisor's)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from core.errors import InvalidInput
from ops import cockpit
from portals.cockpit.base import SUPERVISOR, context_for, page, runtime_of, signed_in
from portals.web.app import form_data

router = APIRouter()
LINE_ACTIONS = ("topup", "renew", "plan_change", "cancel_plan_change", "terminate")


@router.get("/customers")
async def customers(request: Request, q: str = "") -> Response:
    await signed_in(request)
    found = await cockpit.search_customers(runtime_of(request), q) if q.strip() else []
    return page(
        request,
        "customers.html",
        {"q": q[: cockpit.SEARCH_MAX], "found": found, "searched": bool(q.strip())},
    )


@router.get("/customers/{customer_id}")
async def customer(request: Request, customer_id: str) -> Response:
    await signed_in(request)
    c360 = await cockpit.customer_360(runtime_of(request), customer_id)
    return page(request, "customer.html", {"c": c360, "v": c360.view})


@router.get("/lines/{sub_id}")
async def line(request: Request, sub_id: str) -> Response:
    from ops import catalog, subscriptions

    await signed_in(request)
    rt = runtime_of(request)
    view = await subscriptions.status(rt, sub_id[:20])
    return page(
        request,
        "line.html",
        {
            "line": view,
            "vas": await catalog.list_vas(rt),
            "plans": await catalog.sellable_offerings(rt),
            "flash": request.query_params.get("done"),
        },
    )


@router.post("/lines/{sub_id}/act")
async def line_action(request: Request, sub_id: str) -> Response:
    """Every lifecycle action in two steps: the first post shows exactly what will happen (what
    is charged, to which card, what ends); only the confirmed post does it. Terminating a line
    is for a supervisor or an admin."""
    op = await signed_in(request)
    form = await form_data(request)
    action = form.get("action", "")
    if action not in LINE_ACTIONS:
        raise InvalidInput("cockpit.line.action", "Choose one of the line's actions.")
    if action == "terminate":
        await signed_in(request, SUPERVISOR)
    rt = runtime_of(request)
    plan = await cockpit.line_action_plan(rt, sub_id[:20], action, form)
    if form.get("confirmed") != "yes":
        return page(request, "confirm_line.html", {"plan": plan})
    await cockpit.do_line_action(rt, context_for(op), plan)
    return RedirectResponse(f"/lines/{plan.sub_id}?done={quote(plan.title)}", status_code=303)

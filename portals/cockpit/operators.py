"""Operator accounts (admin only): create one with a generated password shown once, disable one
(after a confirm; never oneself) or enable one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from core.errors import InvalidInput, NotFound
from domains.staff.rules import STAFF_ROLES
from ops import staff
from ops.workbench import Plan
from portals.cockpit.base import ADMIN, confirm, confirmed, context_for, page, runtime_of, signed_in
from portals.web.app import form_data

router = APIRouter()


@router.get("/admin/operators")
async def operators(request: Request) -> Response:
    await signed_in(request, ADMIN)
    rows = await staff.list_operators(runtime_of(request))
    return page(request, "operators.html", {"rows": rows, "roles": STAFF_ROLES})


@router.post("/admin/operators")
async def create_operator(request: Request) -> Response:
    """A new operator with a generated password, shown on this answer only."""
    op = await signed_in(request, ADMIN)
    form = await form_data(request)
    rt = runtime_of(request)
    made, password = await staff.create_operator(
        rt,
        context_for(op),
        form.get("email", "")[:254],
        form.get("role", "")[:20],
        form.get("name", "")[:200],
    )
    rows = await staff.list_operators(rt)
    return page(
        request,
        "operators.html",
        {"rows": rows, "roles": STAFF_ROLES, "made": made, "password": password},
    )


@router.post("/admin/operators/{operator_id}/{change}")
async def change_operator(request: Request, operator_id: str, change: str) -> Response:
    """Enable at once; disable (which signs them out everywhere) after a confirm step."""
    op = await signed_in(request, ADMIN)
    rt = runtime_of(request)
    if change == "disable":
        if operator_id == op.id:
            raise InvalidInput("cockpit.operator.self_disable", "You cannot disable yourself.")
        target = await staff.get_operator(rt, operator_id[:16])
        if not confirmed(await form_data(request)):
            plan = Plan(
                f"disable {target.email}",
                [
                    f"Disable the {target.role} {target.name} ({target.email}, {target.id}).",
                    "They are signed out of every cockpit session at once and cannot sign in until enabled.",
                ],
            )
            return confirm(request, plan, f"/admin/operators/{target.id}/disable", "/admin/operators")
        await staff.disable_operator(rt, context_for(op), target.id)
    elif change == "enable":
        await staff.enable_operator(rt, context_for(op), operator_id[:16])
    else:
        raise NotFound("cockpit.page.not_found", "There is no such page.")
    return RedirectResponse("/admin/operators", status_code=303)

"""What every cockpit page module shares: the door, the signed-in operator and their role, the
operator's RequestContext, page rendering, the two-step confirm and form parsing.

A page module defines `router = APIRouter()` and its routes; portals/cockpit/app.py includes it.
Every route starts with `await signed_in(request, <least role>)`: no page without a signed-in
operator (else a redirect to /login), and a role below the least one gets a 403 page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from core.context import RequestContext
from core.errors import Forbidden, InvalidInput, NotFound
from domains.staff.models import Operator
from domains.staff.rules import StaffRole, at_least
from ops import staff
from ops.runtime import Runtime
from portals.web import sessions
from portals.web.app import Door, render

DOOR = Door(portal="cockpit", cookie_name="bss_cockpit", title="BSS Cockpit", channel="cockpit")
SERVICE_IDENTITY = "portal-cockpit"
NOTE_MAX = 1000

CSR, SUPERVISOR, ADMIN = StaffRole.CSR, StaffRole.SUPERVISOR, StaffRole.ADMIN


class LoginRequired(Exception):
    pass


def context_for(op: Operator | None, actor: str | None = None) -> RequestContext:
    return RequestContext(
        actor=op.email if op is not None else (actor or "anonymous"),
        channel=DOOR.channel,
        service_identity=SERVICE_IDENTITY,
    )


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


async def signed_in(request: Request, needed: StaffRole = CSR) -> Operator:
    """The operator of this session, still enabled, with at least the role `needed`; else a
    redirect to /login (no session) or a 403 page (role)."""
    op = getattr(request.state, "operator", None)
    if op is None:
        session = sessions.web_state(request).session
        if session is None or not session.subject:
            raise LoginRequired
        try:
            op = await staff.get_operator(runtime_of(request), session.subject)
        except NotFound:
            op = None
        if op is None or op.disabled_at is not None:
            await sessions.end(request)
            raise LoginRequired
        request.state.operator = op
    if not at_least(op.role, needed):
        raise Forbidden(
            "cockpit.role.forbidden", f"This is for the {needed.value} role or above; you are {op.role}."
        )
    return op


def may(op: Operator | None, role: str) -> bool:
    return op is not None and at_least(op.role, StaffRole(role))


def page(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    return render(
        request, name, {"operator": getattr(request.state, "operator", None), **(context or {})}, status_code
    )


def confirm(request: Request, plan: Any, post_to: str, back: str) -> Response:
    """The first step of a two-step action: exactly what will happen, and a form that does it."""
    return page(request, "confirm.html", {"plan": plan, "post_to": post_to, "back": back})


def confirmed(form: dict[str, str]) -> bool:
    return form.get("confirmed") == "yes"


def done(path: str, what: str) -> RedirectResponse:
    sep = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{sep}done={quote(what)}", status_code=303)


def local(target: str) -> str:
    """Only a path of this site is a place to go (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 200:
        return "/"
    return target


# ---- form fields --------------------------------------------------------------------------------


def text(
    form: dict[str, str], name: str, limit: int = NOTE_MAX, *, code: str = "cockpit.form.too_long"
) -> str:
    value = form.get(name, "").strip()
    if len(value) > limit:
        raise InvalidInput(code, f"{name} is at most {limit} characters.")
    return value


def _given(form: dict[str, str], name: str, *, required: bool) -> str | None:
    """The field's trimmed text; None when left empty and optional (an empty required one: 400)."""
    raw = form.get(name, "").strip()
    if not raw:
        if required:
            raise InvalidInput("cockpit.form.required", f"{name} is required.")
        return None
    return raw


def decimal(form: dict[str, str], name: str, *, required: bool = True) -> Decimal | None:
    raw = _given(form, name, required=required)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise InvalidInput("cockpit.form.number", f"{name} is a number, like 12.50.") from None
    if not value.is_finite() or abs(value) > Decimal("99999.99"):
        raise InvalidInput("cockpit.form.number", f"{name} is a number up to 99999.99.")
    return value


def integer(
    form: dict[str, str], name: str, *, required: bool = False, low: int = -1, high: int = 10_000_000
) -> int | None:
    raw = _given(form, name, required=required)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput("cockpit.form.integer", f"{name} is a whole number.") from None
    if not low <= value <= high:
        raise InvalidInput("cockpit.form.integer", f"{name} is between {low} and {high}.")
    return value


def moment(form: dict[str, str], name: str) -> datetime | None:
    """A date (YYYY-MM-DD, its start) or a date and time (YYYY-MM-DDTHH:MM), in UTC."""
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw[:32])
    except ValueError:
        raise InvalidInput("cockpit.form.date", f"{name} is a date like 2027-01-31.") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def when(value: Any) -> str:
    if not value:
        return "—"
    return (
        value.strftime("%d %b %Y %H:%M") if hasattr(value, "strftime") else str(value)[:16].replace("T", " ")
    )


def money(value: Any, currency: str = "SGD") -> str:
    return f"{currency} {Decimal(str(value)):.2f}"

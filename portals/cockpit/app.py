"""The operator cockpit (port 9002, BSS_COCKPIT_PORT): customer care staff sign in with email and
password (domains/staff, argon2, lockout) and see today's figures, find customers and their 360,
and work the order queue.

Server-rendered on portals/web (sessions in Postgres, CSRF on every form, the shared layout). No
page without a signed-in operator: anything else redirects to /login. Every operation runs in the
operations layer in-process as RequestContext(actor=<operator email>, channel="cockpit",
service_identity="portal-cockpit"), so the audit log names the operator. Roles: csr < supervisor
< admin; an admin page refuses the others with a 403 page.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from core.clock import clock
from core.context import RequestContext
from core.errors import Forbidden, InvalidInput, NotFound
from core.settings import Settings
from domains.staff.models import Operator
from domains.staff.rules import STAFF_ROLES, StaffRole, at_least
from ops import cockpit, staff
from ops.runtime import Runtime
from portals.web import sessions
from portals.web.app import Door, create_web_app, form_data, render, render_form_page

TEMPLATES = Path(__file__).resolve().parent / "templates"
DOOR = Door(portal="cockpit", cookie_name="bss_cockpit", title="BSS Cockpit", channel="cockpit")
SERVICE_IDENTITY = "portal-cockpit"
NOTE_MAX = 1000
LINE_ACTIONS = ("topup", "renew", "plan_change", "cancel_plan_change", "terminate")


class LoginRequired(Exception):
    pass


def context_for(op: Operator | None, actor: str | None = None) -> RequestContext:
    return RequestContext(
        actor=op.email if op is not None else (actor or "anonymous"),
        channel=DOOR.channel,
        service_identity=SERVICE_IDENTITY,
    )


async def signed_in(request: Request, needed: StaffRole = StaffRole.CSR) -> Operator:
    """The operator of this session, still enabled, with at least the role `needed`; else a
    redirect to /login (no session) or a 403 page (role)."""
    session = sessions.web_state(request).session
    if session is None or not session.subject:
        raise LoginRequired
    try:
        op = await staff.get_operator(request.app.state.runtime, session.subject)
    except NotFound:
        op = None
    if op is None or op.disabled_at is not None:
        await sessions.end(request)
        raise LoginRequired
    request.state.operator = op
    if not at_least(op.role, needed):
        raise Forbidden(
            "cockpit.role.forbidden", f"This page is for the {needed.value} role; you are {op.role}."
        )
    return op


def page(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    return render(
        request, name, {"operator": getattr(request.state, "operator", None), **(context or {})}, status_code
    )


def money(value: Any, currency: str = "SGD") -> str:
    return f"{currency} {Decimal(str(value)):.2f}"


def when(value: Any) -> str:
    if not value:
        return "—"
    return (
        value.strftime("%d %b %Y %H:%M") if hasattr(value, "strftime") else str(value)[:16].replace("T", " ")
    )


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    app = create_web_app(DOOR, TEMPLATES, settings, runtime)
    env = app.state.templates.env
    env.filters.update(money=money, when=when)
    ui_port = app.state.settings.temporal_ui_port
    env.globals["temporal_link"] = lambda workflow_id: cockpit.temporal_ui_link(ui_port, workflow_id)
    env.globals["is_admin"] = lambda op: op is not None and at_least(op.role, StaffRole.ADMIN)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path if request.method == "GET" else "/"
        response = RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        if request.headers.get("hx-request"):
            response.headers["HX-Redirect"] = "/login"
        return response

    # ---- sign in / out ---------------------------------------------------------------------------

    @app.get("/login")
    async def login_page(request: Request, next: str = "/") -> Response:
        return await render_form_page(request, "login.html", {"next": _local(next)})

    @app.post("/login")
    async def login_submit(request: Request) -> Response:
        form = await form_data(request)
        email, password = form.get("email", "")[:254], form.get("password", "")
        target = _local(form.get("next", "/"))
        rt: Runtime = request.app.state.runtime
        login = await staff.authenticate(
            rt,
            context_for(None, actor=email.strip().lower() or None),
            email,
            password,
            ip=sessions.client_ip(request),
        )
        if not login.ok or login.operator is None:
            error = "Wrong email or password. After 5 wrong passwords an account is locked for 15 minutes."
            return await render_form_page(
                request, "login.html", {"error": error, "email": email, "next": target}, status_code=401
            )
        await sessions.start_login(request, login.operator.id, login.operator.email)
        return RedirectResponse(target, status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        op = None
        try:
            op = await signed_in(request)
        except LoginRequired:
            pass
        if op is not None:
            await staff.signed_out(request.app.state.runtime, context_for(op), op.id)
        await sessions.end(request)
        return RedirectResponse("/login", status_code=303)

    # ---- home ------------------------------------------------------------------------------------

    @app.get("/")
    async def home(request: Request) -> Response:
        await signed_in(request)
        rt: Runtime = request.app.state.runtime
        figures = await cockpit.today_figures(rt)
        hours = await cockpit.orders_by_hour(rt)
        return page(request, "home.html", {"f": figures, "chart": _chart(hours)})

    # ---- customers -------------------------------------------------------------------------------

    @app.get("/customers")
    async def customers(request: Request, q: str = "") -> Response:
        await signed_in(request)
        found = await cockpit.search_customers(request.app.state.runtime, q) if q.strip() else []
        return page(
            request,
            "customers.html",
            {"q": q[: cockpit.SEARCH_MAX], "found": found, "searched": bool(q.strip())},
        )

    @app.get("/customers/{customer_id}")
    async def customer(request: Request, customer_id: str) -> Response:
        await signed_in(request)
        c360 = await cockpit.customer_360(request.app.state.runtime, customer_id)
        return page(request, "customer.html", {"c": c360, "v": c360.view})

    # ---- order queue -----------------------------------------------------------------------------

    @app.get("/orders")
    async def orders(request: Request) -> Response:
        await signed_in(request)
        rows = await cockpit.order_queue(request.app.state.runtime)
        return page(request, "orders.html", {"rows": rows, "flash": request.query_params.get("done")})

    @app.post("/orders/{order_id}/stuck")
    async def stuck(request: Request, order_id: str) -> Response:
        """Two steps: the first post shows exactly what will happen; the confirmed one does it."""
        op = await signed_in(request)
        form = await form_data(request)
        action, note = form.get("action", ""), form.get("note", "").strip()
        if action not in ("retry", "resolve"):
            raise InvalidInput("cockpit.stuck.action", "Choose retry or resolve.")
        if len(note) > NOTE_MAX:
            raise InvalidInput("cockpit.stuck.note_length", f"A note is at most {NOTE_MAX} characters.")
        rt: Runtime = request.app.state.runtime
        row = await cockpit.stuck_work(rt, order_id)
        if form.get("confirmed") != "yes":
            return page(request, "confirm_stuck.html", {"row": row, "action": action, "note": note})
        await cockpit.decide_stuck(rt, context_for(op), row.order.id, action, note)
        return RedirectResponse(f"/orders?done={quote(action)}+{quote(row.order.id)}", status_code=303)

    # ---- line detail -----------------------------------------------------------------------------

    @app.get("/lines/{sub_id}")
    async def line(request: Request, sub_id: str) -> Response:
        from ops import catalog, subscriptions

        await signed_in(request)
        rt: Runtime = request.app.state.runtime
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

    @app.post("/lines/{sub_id}/act")
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
            await signed_in(request, StaffRole.SUPERVISOR)
        rt: Runtime = request.app.state.runtime
        plan = await cockpit.line_action_plan(rt, sub_id[:20], action, form)
        if form.get("confirmed") != "yes":
            return page(request, "confirm_line.html", {"plan": plan})
        await cockpit.do_line_action(rt, context_for(op), plan)
        return RedirectResponse(f"/lines/{plan.sub_id}?done={quote(plan.title)}", status_code=303)

    # ---- tickets ---------------------------------------------------------------------------------

    @app.get("/tickets")
    async def tickets(request: Request) -> Response:
        await signed_in(request)
        rows = await cockpit.ticket_queue(request.app.state.runtime)
        return page(
            request,
            "tickets.html",
            {"rows": rows, "now": clock.now(), "flash": request.query_params.get("done")},
        )

    @app.post("/tickets/{ticket_id}")
    async def work_ticket(request: Request, ticket_id: str) -> Response:
        op = await signed_in(request)
        form = await form_data(request)
        action, text = form.get("action", ""), form.get("text", "")
        if len(text) > NOTE_MAX:
            raise InvalidInput("cockpit.ticket.note_length", f"A note is at most {NOTE_MAX} characters.")
        done = await cockpit.work_ticket(request.app.state.runtime, context_for(op), ticket_id, action, text)
        ticket_ref = getattr(getattr(done, "ticket", done), "id", ticket_id)
        return RedirectResponse(f"/tickets?done={quote(action)}+{quote(ticket_ref)}", status_code=303)

    # ---- admin -----------------------------------------------------------------------------------

    @app.get("/admin/operators")
    async def operators(request: Request) -> Response:
        await signed_in(request, StaffRole.ADMIN)
        rows = await staff.list_operators(request.app.state.runtime)
        return page(request, "operators.html", {"rows": rows, "roles": STAFF_ROLES})

    @app.get("/admin/catalog")
    async def catalog_page(request: Request) -> Response:
        """Every plan (retired ones too) with all its price rows and their windows, and the VAS."""
        from ops import catalog

        await signed_in(request, StaffRole.ADMIN)
        rt: Runtime = request.app.state.runtime
        plans = await cockpit.all_offerings(rt)
        return page(request, "catalog.html", {"plans": plans, "vas": await catalog.list_vas(rt)})

    @app.post("/admin/operators")
    async def create_operator(request: Request) -> Response:
        """A new operator with a generated password, shown on this answer only."""
        op = await signed_in(request, StaffRole.ADMIN)
        form = await form_data(request)
        rt: Runtime = request.app.state.runtime
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

    @app.post("/admin/operators/{operator_id}/{change}")
    async def change_operator(request: Request, operator_id: str, change: str) -> Response:
        op = await signed_in(request, StaffRole.ADMIN)
        rt: Runtime = request.app.state.runtime
        if change == "disable":
            if operator_id == op.id:
                raise InvalidInput("cockpit.operator.self_disable", "You cannot disable yourself.")
            await staff.disable_operator(rt, context_for(op), operator_id[:16])
        elif change == "enable":
            await staff.enable_operator(rt, context_for(op), operator_id[:16])
        else:
            raise NotFound("cockpit.page.not_found", "There is no such page.")
        return RedirectResponse("/admin/operators", status_code=303)

    return app


def _local(target: str) -> str:
    """Only a path of this site is a place to go after login (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 200:
        return "/"
    return target


def _chart(hours: list[tuple[Any, int, int]]) -> dict[str, Any]:
    """A server-rendered SVG bar chart of completed (and failed) orders per hour."""
    top = max([c + f for _, c, f in hours] + [1])
    width, height, gap = 24, 80, 4
    bars = []
    for i, (hour, completed, failed) in enumerate(hours):
        hc = round(completed / top * height)
        hf = round(failed / top * height)
        x = i * (width + gap)
        bars.append(
            {
                "x": x,
                "w": width,
                "hc": hc,
                "yc": height - hc,
                "hf": hf,
                "yf": height - hc - hf,
                "label": hour.strftime("%H:00"),
                "completed": completed,
                "failed": failed,
            }
        )
    return {"bars": bars, "width": len(hours) * (width + gap), "height": height}


def app_from_env() -> FastAPI:
    """Entry point for uvicorn --factory."""
    return create_app()

"""The operator cockpit (port 9002, BSS_COCKPIT_PORT): customer care staff sign in with email and
password (domains/staff, argon2, lockout) and see today's figures, find customers and their 360,
work the order queue, the case and ticket workbench, port requests and promotions; an admin also
edits the catalogue and the operator accounts.

Server-rendered on portals/web (sessions in Postgres, CSRF on every form, the shared layout). No
page without a signed-in operator: anything else redirects to /login. Every operation runs in the
operations layer in-process as RequestContext(actor=<operator email>, channel="cockpit",
service_identity="portal-cockpit"), so the audit log names the operator. Roles: csr < supervisor
< admin; a page above the operator's role is a 403 page. Each capability is a module of its own
(portals/cockpit/<capability>.py with a `router`), included below; portals/cockpit/base.py holds
what they share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from core.settings import Settings
from domains.staff.rules import StaffRole, at_least
from ops import cockpit, staff
from ops.runtime import Runtime
from portals.cockpit import base, catalog, chat, customers, operators, orders, porting, promotions, workbench
from portals.cockpit.base import DOOR, LoginRequired, context_for, local, page, signed_in
from portals.web import sessions
from portals.web.app import CsrfRefused, create_web_app, form_data, render_form_page

TEMPLATES = Path(__file__).resolve().parent / "templates"

# The page modules, each with a `router`; a new capability adds its module here (one line).
PAGE_MODULES = (customers, orders, workbench, porting, promotions, catalog, operators, chat)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    app = create_web_app(DOOR, TEMPLATES, settings, runtime)
    env = app.state.templates.env
    env.filters.update(money=base.money, when=base.when)
    ui_port = app.state.settings.temporal_ui_port
    env.globals["temporal_link"] = lambda workflow_id: cockpit.temporal_ui_link(ui_port, workflow_id)
    env.globals["is_admin"] = lambda op: op is not None and at_least(op.role, StaffRole.ADMIN)
    env.globals["may"] = base.may

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path if request.method == "GET" else "/"
        response = RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        if request.headers.get("hx-request"):
            response.headers["HX-Redirect"] = "/login"
        return response

    form_expired = app.exception_handlers[CsrfRefused]

    @app.exception_handler(CsrfRefused)
    async def csrf_or_login(request: Request, exc: CsrfRefused) -> Response:
        """A form posted with nobody signed in goes to the login page (nothing was done either way);
        a signed-in operator's form without its token is refused."""
        session = sessions.web_state(request).session
        if request.url.path != "/login" and (session is None or not session.subject):
            return await to_login(request, LoginRequired())
        return await form_expired(request, exc)

    # ---- sign in / out ---------------------------------------------------------------------------

    @app.get("/login")
    async def login_page(request: Request, next: str = "/") -> Response:
        return await render_form_page(request, "login.html", {"next": local(next)})

    @app.post("/login")
    async def login_submit(request: Request) -> Response:
        form = await form_data(request)
        email, password = form.get("email", "")[:254], form.get("password", "")
        target = local(form.get("next", "/"))
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

    for module in PAGE_MODULES:
        app.include_router(module.router)
    return app


def _chart(hours: list[tuple[Any, int, int]]) -> dict[str, Any]:
    """A server-rendered SVG bar chart of completed (and failed) orders per hour."""
    top = max([c + f for _, c, f in hours] + [1])
    width, height = 24, 80
    bars = []
    for i, (hour, completed, failed) in enumerate(hours):
        hc = round(completed / top * height)
        hf = round(failed / top * height)
        x = i * (width + 4)
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
    return {"bars": bars, "width": len(hours) * (width + 4), "height": height}


def app_from_env() -> FastAPI:
    """Entry point for uvicorn --factory."""
    return create_app()

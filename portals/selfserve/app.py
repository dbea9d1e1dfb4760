"""The self-serve portal (port 9001, BSS_PORTAL_PORT): plans and promotions for anyone, login by a
one-time email code, then the customer's lines.

Server-rendered (FastAPI + Jinja, portals/web), usable with JavaScript off; htmx only makes a few
forms lighter. Every operation goes through the operations layer in-process with the portal's own
channel identity: RequestContext(actor=<CUST id>, channel="portal-self-serve",
service_identity="portal-selfserve"), so the rules, audit rows and workflows are the API's. The
customer id comes from the session only; ops/ownership.py answers 404 for anybody else's line,
order, case or card.

The signed-in pages live in one module per capability (lines.py, payments.py, support.py,
stepup.py; shared pieces in common.py), each an APIRouter included in create_app below.
Money-moving and destructive actions show what will happen, then need a fresh step-up code
(ops/step_up.py, common.act).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from core.clock import clock
from core.errors import DomainError
from core.settings import Settings, get_settings
from ops.runtime import Runtime
from portals.selfserve import chat, lines, payments, signup, stepup, support
from portals.selfserve.common import (  # noqa: F401 - context_for, signed_in: the other page modules' API
    DOOR,
    SERVICE_IDENTITY,
    LoginRequired,
    context_for,
    customer_of,
    install_filters,
    pop_flash,
    signed_in,
)
from portals.selfserve.lines import offering_names
from portals.web import sessions
from portals.web.app import create_web_app, form_data, render, render_form_page

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


_pop_flash = pop_flash  # the name it had before the split


# ---- reads the pages share ----------------------------------------------------------------------


async def _plans(rt: Runtime) -> list[Any]:
    from ops.catalog import sellable_offerings

    return sorted(await sellable_offerings(rt), key=lambda d: (d.active_price.amount, d.offering.id))


async def _promotions_on_offer(rt: Runtime) -> list[Any]:
    """Public codes (not targeted at named customers) that are active now."""
    from ops.promotions import listing

    views, _ = await listing(rt, state="active", limit=50)
    now = clock.now()
    return [
        v.promotion
        for v in views
        if not v.promotion.targeted
        and (v.promotion.valid_from is None or v.promotion.valid_from <= now)
        and (v.promotion.valid_to is None or now < v.promotion.valid_to)
    ]


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    app = create_web_app(DOOR, TEMPLATES, settings, runtime)
    install_filters(app.state.templates.env)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return _to_login()

    # The signed-in customer's pages, one module per capability; each module is one include here
    # (the signup funnel and the customer chat add theirs below).
    app.include_router(lines.router)
    app.include_router(payments.router)
    app.include_router(support.router)
    app.include_router(stepup.router)
    app.include_router(signup.router)  # the signup funnel (/signup/...)
    app.include_router(chat.router)  # the help chat (/chat)

    @app.get("/")
    async def landing(request: Request) -> Response:
        rt: Runtime = request.app.state.runtime
        return render(
            request, "landing.html", {"plans": await _plans(rt), "promotions": await _promotions_on_offer(rt)}
        )

    # ---- login ------------------------------------------------------------------------------

    @app.get("/login")
    async def login_page(request: Request) -> Response:
        if signed_in(request):
            return RedirectResponse("/dashboard", status_code=303)
        return await render_form_page(request, "login.html")

    @app.post("/login")
    async def login_submit(request: Request) -> Response:
        from ops.login import request_code

        form = await form_data(request)
        email = (form.get("email") or "").strip()[:254]
        try:
            await request_code(
                request.app.state.runtime, context_for(request), email, sessions.client_ip(request)
            )
        except DomainError as exc:
            status = getattr(exc, "status", 422)
            return render(request, "login.html", {"error": exc.message, "email": email}, status)
        await sessions.update_data(request, login_email=email.lower())
        return RedirectResponse("/login/verify", status_code=303)

    @app.get("/login/verify")
    async def verify_page(request: Request) -> Response:
        if signed_in(request):
            return RedirectResponse("/dashboard", status_code=303)
        session = sessions.web_state(request).session
        email = session.data.get("login_email") if session else None
        if not email:
            return _to_login()
        return render(request, "verify.html", {"email": email})

    @app.post("/login/verify")
    async def verify_submit(request: Request) -> Response:
        from ops.login import verify_code

        session = sessions.web_state(request).session
        email = session.data.get("login_email") if session else None
        if not email:
            return _to_login()
        form = await form_data(request)
        code = (form.get("code") or "").strip()[:12]
        try:
            customer_id = await verify_code(
                request.app.state.runtime,
                context_for(request),
                email,
                code,
                sessions.client_ip(request),
                signup=True,  # an address without a customer: a prospect's session (signup.py)
            )
        except DomainError as exc:
            status = getattr(exc, "status", 422)
            spent = exc.code in ("login.code.burned", "login.code.expired")
            return render(
                request, "verify.html", {"email": email, "error": exc.message, "spent": spent}, status
            )
        return await signup.after_login(request, customer_id, email)  # dashboard, or the funnel

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await sessions.end(request)
        return RedirectResponse("/", status_code=303)

    # ---- the customer's own pages ---------------------------------------------------------------

    @app.get("/dashboard")
    async def dashboard(request: Request) -> Response:
        from ops.crm import get_customer
        from ops.ownership import own_lines

        customer_id = customer_of(request)
        rt: Runtime = request.app.state.runtime
        customer = await get_customer(rt, customer_id)
        return render(
            request,
            "dashboard.html",
            {
                "customer": customer,
                "lines": await own_lines(rt, customer_id),
                "offerings": await offering_names(rt),
                **await pop_flash(request),
            },
        )

    return app


def app_from_env() -> FastAPI:
    """Entry point for uvicorn --factory."""
    return create_app(get_settings())

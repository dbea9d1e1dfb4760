"""The self-serve portal (port 9001, BSS_PORTAL_PORT): plans and promotions for anyone, login by a
one-time email code, then the customer's lines.

Server-rendered (FastAPI + Jinja, portals/web), usable with JavaScript off; htmx only makes a few
forms lighter. Every operation goes through the operations layer in-process with the portal's own
channel identity: RequestContext(actor=<CUST id>, channel="portal-self-serve",
service_identity="portal-selfserve"), so the rules, audit rows and workflows are the API's. The
customer id comes from the session only; ops/ownership.py answers 404 for anybody else's line.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from core.clock import clock
from core.context import RequestContext
from core.errors import DomainError, InvalidInput
from core.settings import Settings, get_settings
from ops.runtime import Runtime
from portals.web import sessions
from portals.web.app import Door, create_web_app, form_data, render, render_form_page

TEMPLATES = Path(__file__).resolve().parent / "templates"
DOOR = Door(portal="selfserve", cookie_name="bss_portal", title="BSS Mobile", channel="portal-self-serve")
SERVICE_IDENTITY = "portal-selfserve"


def context_for(request: Request, customer_id: str | None = None) -> RequestContext:
    return RequestContext(
        actor=customer_id or "anonymous", channel=DOOR.channel, service_identity=SERVICE_IDENTITY
    )


def signed_in(request: Request) -> str | None:
    session = sessions.web_state(request).session
    return session.subject if session is not None else None


def _to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


# ---- template filters ---------------------------------------------------------------------------


def amount(quantity: int | None, unit: str | None) -> str:
    if quantity is None:
        return "—"
    if quantity < 0:
        return "Unlimited"
    if unit == "mb":
        return f"{quantity / 1024:.1f} GB".replace(".0 GB", " GB") if quantity >= 1024 else f"{quantity} MB"
    if unit == "minutes":
        return f"{quantity} min"
    if unit == "count":
        return f"{quantity} SMS"
    return f"{quantity} {unit or ''}".strip()


def money(value: Any, currency: str = "SGD") -> str:
    return f"{currency} {Decimal(str(value)):.2f}"


def day(value: str | datetime | None) -> str:
    if not value:
        return "—"
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.strftime("%d %b %Y")


ALLOWANCE_NAMES = {"data": "Data", "voice": "Calls", "sms": "SMS", "data_roaming": "Roaming data"}


def by_kind(allowances: list[Any]) -> list[Any]:
    """Data, calls, SMS, roaming: the order people read a plan in."""
    order = list(ALLOWANCE_NAMES)
    return sorted(allowances, key=lambda a: order.index(a.allowance_type) if a.allowance_type in order else 9)


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


async def _offering_names(rt: Runtime) -> dict[str, str]:
    from sqlmodel import select

    from domains.catalog.models import ProductOffering

    async with rt.db() as s:
        return {o.id: o.name for o in await s.exec(select(ProductOffering))}


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    app = create_web_app(DOOR, TEMPLATES, settings, runtime)
    env = app.state.templates.env
    env.filters.update(amount=amount, money=money, day=day, by_kind=by_kind)
    env.globals["allowance_name"] = lambda kind: ALLOWANCE_NAMES.get(kind, kind)

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
                request.app.state.runtime, context_for(request), email, code, sessions.client_ip(request)
            )
        except DomainError as exc:
            status = getattr(exc, "status", 422)
            spent = exc.code in ("login.code.burned", "login.code.expired")
            return render(
                request, "verify.html", {"email": email, "error": exc.message, "spent": spent}, status
            )
        await sessions.start_login(request, customer_id, email)
        return RedirectResponse("/dashboard", status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await sessions.end(request)
        return RedirectResponse("/", status_code=303)

    # ---- the customer's own pages ---------------------------------------------------------------

    @app.get("/dashboard")
    async def dashboard(request: Request) -> Response:
        from ops.crm import get_customer
        from ops.ownership import own_lines

        customer_id = signed_in(request)
        if not customer_id:
            return _to_login()
        rt: Runtime = request.app.state.runtime
        customer = await get_customer(rt, customer_id)
        return render(
            request,
            "dashboard.html",
            {
                "customer": customer,
                "lines": await own_lines(rt, customer_id),
                "offerings": await _offering_names(rt),
                "flash": await _pop_flash(request),
            },
        )

    @app.get("/lines/{sub_id}")
    async def line_page(request: Request, sub_id: str) -> Response:
        from ops.catalog import list_vas
        from ops.ownership import own_line, own_line_usage

        customer_id = signed_in(request)
        if not customer_id:
            return _to_login()
        rt: Runtime = request.app.state.runtime
        line = await own_line(rt, customer_id, sub_id)
        vas = [v for v in await list_vas(rt) if v.lifecycle_status == "Active"]
        return render(
            request,
            "line.html",
            {
                "line": line,
                "usage": await own_line_usage(rt, customer_id, sub_id),
                "offerings": await _offering_names(rt),
                "vas": vas,
                "topup_key": secrets.token_urlsafe(12),
                "flash": await _pop_flash(request),
            },
        )

    @app.post("/lines/{sub_id}/topup")
    async def topup(request: Request, sub_id: str) -> Response:
        from ops.ownership import check_line
        from ops.subscriptions import purchase_vas

        customer_id = signed_in(request)
        if not customer_id:
            return _to_login()
        rt: Runtime = request.app.state.runtime
        await check_line(rt, customer_id, sub_id)  # before anything else: 404 for another's line
        form = await form_data(request)
        vas_id = (form.get("vas") or "").strip()
        key = (form.get("key") or "").strip()[:64] or None
        if not vas_id or len(vas_id) > 64:
            raise InvalidInput("portal.topup.vas_missing", "Choose a top-up.")
        await purchase_vas(
            rt, context_for(request, customer_id), sub_id, vas_id, f"portal-{key}" if key else None
        )
        await sessions.update_data(request, flash="Top-up added.")
        return RedirectResponse(f"/lines/{sub_id}", status_code=303)

    return app


async def _pop_flash(request: Request) -> str | None:
    session = sessions.web_state(request).session
    if session is None or "flash" not in session.data:
        return None
    message = session.data.get("flash")
    await sessions.update_data(request, flash=None)
    return message


def app_from_env() -> FastAPI:
    """Entry point for uvicorn --factory."""
    return create_app(get_settings())

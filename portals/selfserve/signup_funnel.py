"""Where the self-serve signup funnel stands: the steps, the session's `signup` value, the first
step not done yet, the gates of each step and the page around it (signup.py has the steps' routes,
signup_order.py the order, its progress and the eSIM).
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse

from core.context import RequestContext
from core.errors import DomainError
from ops.runtime import Runtime
from portals.web import sessions
from portals.web.app import render_form_page

CHANNEL = "portal-self-serve"
SERVICE_IDENTITY = "portal-selfserve"
NUMBER_CHOICES = 5
DOCUMENT_TYPES = {"nric": "NRIC", "passport": "Passport", "fin": "FIN", "driving_license": "Driving licence"}
STEPS = (
    ("plan", "Plan"),
    ("email", "Email"),
    ("number", "Number"),
    ("details", "Your details"),
    ("kyc", "Identity"),
    ("card", "Card"),
    ("promo", "Promo code"),
    ("review", "Order"),
)
STEP_URLS = {
    "plan": "/signup",
    "email": "/login",
    "number": "/signup/number",
    "details": "/signup/details",
    "kyc": "/signup/kyc",
    "card": "/signup/card",
    "promo": "/signup/promo",
    "review": "/signup/review",
}


# ---- the funnel's state ---------------------------------------------------------------------------


def _session(request: Request) -> sessions.Session | None:
    return sessions.web_state(request).session


def verified_email(request: Request) -> str | None:
    """The email this session proved by a code (a customer's or a prospect's)."""
    session = _session(request)
    if session is None or not session.email or session.authenticated_at is None:
        return None
    return session.email


def customer_of(request: Request) -> str | None:
    session = _session(request)
    return session.subject if session is not None else None


def context_for(request: Request) -> RequestContext:
    actor = customer_of(request) or verified_email(request) or "anonymous"
    return RequestContext(actor=actor, channel=CHANNEL, service_identity=SERVICE_IDENTITY)


def funnel(request: Request) -> dict[str, Any]:
    session = _session(request)
    return dict(session.data.get("signup") or {}) if session is not None else {}


async def save(request: Request, state: dict[str, Any]) -> None:
    state.setdefault("id", secrets.token_hex(12))
    await sessions.update_data(request, signup=state)


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


def _go(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def _status(request: Request) -> Any:
    from ops.signup import signup_status

    customer_id = customer_of(request)
    return await signup_status(_rt(request), customer_id) if customer_id else None


async def next_step(request: Request, state: dict[str, Any] | None = None, status: Any = None) -> str:
    """The first step of the funnel not done yet."""
    state = funnel(request) if state is None else state
    if not state.get("plan"):
        return "plan"
    if verified_email(request) is None:
        return "email"
    if not state.get("msisdn"):
        return "number"
    status = status if status is not None else await _status(request)
    if status is None:
        return "details"
    if not status.kyc_verified:
        return "kyc"
    if status.card_last4 is None or state.get("card_refused"):
        return "card"
    if not state.get("promo_done"):
        return "promo"
    return "review"


async def _resume(request: Request) -> RedirectResponse:
    state = funnel(request)
    if state.get("order"):
        return _go(f"/signup/orders/{state['order']}")
    return _go(STEP_URLS[await next_step(request, state)])


def _gate(request: Request, step: str, state: dict[str, Any]) -> RedirectResponse | None:
    """A step needs a chosen plan and a verified email (and, after the details, a customer)."""
    if not state.get("plan"):
        return _go("/signup")
    if verified_email(request) is None:
        return _go("/login")
    if step in ("kyc", "card", "promo", "review") and customer_of(request) is None:
        return _go("/signup/details")
    return None


async def _page(request: Request, template: str, step: str, context: dict[str, Any], status: int = 200):
    done = {key for key, _ in STEPS[: [k for k, _ in STEPS].index(step)]}
    return await render_form_page(
        request,
        template,
        {"steps": STEPS, "step": step, "done_steps": done, "state": funnel(request), **context},
        status,
    )


def _error_status(exc: DomainError) -> int:
    return getattr(exc, "status", 422)

"""What every page module of the self-serve portal shares: the door, the customer of the session
(never of the URL or a form), flash messages, template filters, and the confirm-then-step-up flow
of money-moving and destructive actions (ops/step_up.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from core.context import RequestContext
from core.errors import Conflict, DomainError, InvalidInput, PolicyViolation
from ops.runtime import Runtime
from portals.web import sessions
from portals.web.app import Door, render

DOOR = Door(portal="selfserve", cookie_name="bss_portal", title="BSS Mobile", channel="portal-self-serve")
SERVICE_IDENTITY = "portal-selfserve"


class LoginRequired(Exception):
    """No signed-in customer: the app answers with a redirect to /login."""


def context_for(request: Request, customer_id: str | None = None) -> RequestContext:
    return RequestContext(
        actor=customer_id or "anonymous", channel=DOOR.channel, service_identity=SERVICE_IDENTITY
    )


def signed_in(request: Request) -> str | None:
    session = sessions.web_state(request).session
    return session.subject if session is not None else None


def customer_of(request: Request) -> str:
    """The signed-in customer's id, from the session only; LoginRequired otherwise."""
    customer_id = signed_in(request)
    if not customer_id:
        raise LoginRequired()
    return customer_id


def session_key(request: Request) -> str:
    session = sessions.web_state(request).session
    return session.id if session is not None else ""


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def local_path(target: str | None, default: str = "/dashboard") -> str:
    """Only a path on this site (no scheme, no host, no //) is followed after a form."""
    target = (target or "").strip()
    parts = urlsplit(target)
    if (
        not target.startswith("/")
        or target.startswith("//")
        or parts.scheme
        or parts.netloc
        or "\\" in target
    ):
        return default
    return target[:300]


def to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def flash(request: Request, message: str, *, error: bool = False) -> None:
    await sessions.update_data(request, **{"flash_error" if error else "flash": message})


async def pop_flash(request: Request) -> dict[str, str | None]:
    session = sessions.web_state(request).session
    if session is None or not ({"flash", "flash_error"} & set(session.data)):
        return {"flash": None, "flash_error": None}
    found = {"flash": session.data.get("flash"), "flash_error": session.data.get("flash_error")}
    await sessions.update_data(request, flash=None, flash_error=None)
    return found


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


def moment(value: str | datetime | None) -> str:
    if not value:
        return "—"
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.strftime("%d %b %Y %H:%M")


ALLOWANCE_NAMES = {"data": "Data", "voice": "Calls", "sms": "SMS", "data_roaming": "Roaming data"}


def by_kind(allowances: list[Any]) -> list[Any]:
    """Data, calls, SMS, roaming: the order people read a plan in."""
    order = list(ALLOWANCE_NAMES)
    return sorted(allowances, key=lambda a: order.index(a.allowance_type) if a.allowance_type in order else 9)


def card_text(card: Any) -> str:
    if card is None:
        return "no card on file"
    brand = (card.brand or "card").capitalize() if card.brand != "unknown" else "Card"
    return f"{brand} •••• {card.last4 or '????'}"


def install_filters(env: Any) -> None:
    env.filters.update(amount=amount, money=money, day=day, moment=moment, by_kind=by_kind, card=card_text)
    env.globals["allowance_name"] = lambda kind: ALLOWANCE_NAMES.get(kind, kind)


# ---- confirm, step up, act ----------------------------------------------------------------------

# What the step-up email says the code confirms.
PURPOSES = {
    "topup": "a top-up charged to your card",
    "renew": "renewing a line now, charged to your card",
    "plan": "a plan change",
    "terminate": "ending a line",
    "card_add": "adding a card",
    "card_default": "choosing your default card",
    "card_remove": "removing a card",
}


@dataclass
class Action:
    """A money-moving or destructive action, spelled out before it is done."""

    purpose: str  # a PURPOSES key
    title: str
    effects: list[str]
    post_url: str  # where the confirmed form goes
    back_url: str  # where "Cancel" and the success redirect go
    button: str
    fields: dict[str, str] = field(default_factory=dict)  # hidden fields the confirmed post carries
    done: str = "Done."
    danger: bool = False
    tick: str | None = None  # a box to tick before it is done (terminate)
    blocked: str | None = None  # why it cannot be done now (no card): no button then


async def show_confirm(
    request: Request, customer_id: str, action: Action, error: str | None = None, status_code: int = 200
) -> Response:
    from ops import step_up

    state = await step_up.state(runtime(request), customer_id, session_key(request))
    return render(
        request,
        "confirm.html",
        {"action": action, "stepup": state, "error": error, **await pop_flash(request)},
        status_code,
    )


async def step_up_or_refuse(request: Request, customer_id: str, form: dict[str, str]) -> DomainError | None:
    """Stepped up already, or the code in the form steps up now: None. Else the refusal (nothing
    may be done)."""
    from ops import step_up

    try:
        await step_up.confirm(
            runtime(request),
            context_for(request, customer_id),
            customer_id,
            session_key(request),
            (form.get("code") or "").strip()[:12],
            sessions.client_ip(request),
        )
    except DomainError as exc:
        return exc
    return None


async def act(
    request: Request,
    customer_id: str,
    action: Action,
    form: dict[str, str],
    do: Callable[[], Awaitable[Any]],
) -> Response:
    """The confirmed post: the tick box, then a fresh step-up, then the operation. A refusal is
    shown on the confirm page as a sentence; nothing is done."""
    if action.tick and form.get("confirm") != "yes":
        return await show_confirm(request, customer_id, action, "Tick the box to confirm.", 422)
    if action.blocked:
        return await show_confirm(request, customer_id, action, action.blocked, 422)
    refused = await step_up_or_refuse(request, customer_id, form)
    if refused is not None:
        return await show_confirm(request, customer_id, action, refused.message, refused.status)
    try:
        await do()
    except (PolicyViolation, InvalidInput, Conflict) as exc:
        return await show_confirm(request, customer_id, action, exc.message, exc.status)
    await flash(request, action.done)
    return to(action.back_url)

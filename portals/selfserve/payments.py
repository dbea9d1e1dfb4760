"""Payment methods: the cards on file, add one (test cards as on the API: the development
tokenizer), choose the default, remove one. Each change needs a fresh step-up code; a card number
passes through to the tokenizer and is never shown back or kept."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.errors import Conflict, InvalidInput, PolicyViolation
from ops.runtime import Runtime
from portals.selfserve.common import (
    Action,
    act,
    card_text,
    context_for,
    customer_of,
    flash,
    pop_flash,
    runtime,
    session_key,
    show_confirm,
    step_up_or_refuse,
    to,
)
from portals.web.app import form_data, render

router = APIRouter()


async def _card(request: Request, pm_id: str) -> tuple[str, Any]:
    from ops.ownership import own_payment_method

    customer_id = customer_of(request)
    return customer_id, await own_payment_method(runtime(request), customer_id, pm_id[:16])


async def _live_lines(rt: Runtime, customer_id: str) -> list[dict[str, Any]]:
    from ops.ownership import own_lines

    return [line for line in await own_lines(rt, customer_id) if line["state"] in ("active", "blocked")]


@router.get("/payment-methods")
async def methods_page(request: Request) -> Response:
    from ops.ownership import own_payment_methods

    customer_id = customer_of(request)
    cards = await own_payment_methods(runtime(request), customer_id)
    return render(request, "payments.html", {"cards": cards, **await pop_flash(request)})


# ---- add ----------------------------------------------------------------------------------------


async def _new_card_page(
    request: Request, customer_id: str, error: str | None = None, status_code: int = 200, **values: Any
) -> Response:
    from ops import step_up

    state = await step_up.state(runtime(request), customer_id, session_key(request))
    return render(
        request,
        "card_new.html",
        {
            "stepup": state,
            "error": error,
            "key": values.get("key") or secrets.token_urlsafe(12),
            "values": values,
            **await pop_flash(request),
        },
        status_code,
    )


@router.get("/payment-methods/new")
async def new_card(request: Request) -> Response:
    return await _new_card_page(request, customer_of(request))


def _month_year(form: dict[str, str]) -> tuple[int, int]:
    try:
        month, year = int(form.get("exp_month") or ""), int(form.get("exp_year") or "")
    except ValueError:
        raise InvalidInput("portal.card.expiry", "Enter the expiry month and the four-digit year.") from None
    return month, year


@router.post("/payment-methods")
async def add_card(request: Request) -> Response:
    from ops.payment import add_payment_method

    customer_id = customer_of(request)
    form = await form_data(request)
    keep = {
        "key": (form.get("key") or "")[:64],
        "exp_month": (form.get("exp_month") or "")[:2],
        "exp_year": (form.get("exp_year") or "")[:4],
        "name_on_card": (form.get("name_on_card") or "")[:100],
        "make_default": form.get("make_default") == "yes",
    }
    refused = await step_up_or_refuse(request, customer_id, form)
    if refused is not None:
        return await _new_card_page(request, customer_id, refused.message, refused.status, **keep)
    try:
        month, year = _month_year(form)
        method, _ = await add_payment_method(
            runtime(request),
            context_for(request, customer_id),
            customer_id=customer_id,
            card_number=(form.get("card_number") or "")[:40],
            exp_month=month,
            exp_year=year,
            name_on_card=keep["name_on_card"] or None,
            set_default=keep["make_default"] or None,
            idempotency_key=f"portal-{keep['key']}" if keep["key"] else None,
        )
    except (PolicyViolation, InvalidInput, Conflict) as exc:
        return await _new_card_page(request, customer_id, exc.message, exc.status, **keep)
    default = " It is your default card now." if method.is_default else ""
    await flash(request, f"{card_text(method)} added.{default}")
    return to("/payment-methods")


# ---- default, remove ----------------------------------------------------------------------------


def _default_action(card: Any) -> Action:
    if card.status != "active":
        raise PolicyViolation("payment_method.set_default.removed", f"{card_text(card)} was removed.")
    return Action(
        purpose="card_default",
        title=f"Make {card_text(card)} your default card",
        effects=[
            f"Charge top-ups, renewals and new orders to {card_text(card)} from now on.",
            "Nothing is charged now.",
        ],
        post_url=f"/payment-methods/{card.id}/default",
        back_url="/payment-methods",
        button="Make it the default",
        done=f"{card_text(card)} is your default card.",
    )


async def _remove_action(rt: Runtime, customer_id: str, card: Any) -> Action:
    from ops.ownership import own_payment_methods

    if card.status != "active":
        raise PolicyViolation(
            "payment_method.remove.already_removed", f"{card_text(card)} is already removed."
        )
    effects = [f"Remove {card_text(card)} from your account; it is never charged again."]
    if card.is_default:
        others = [c for c in await own_payment_methods(rt, customer_id) if c.id != card.id]
        if others:
            newest = max(others, key=lambda c: c.created_at)
            effects.append(f"{card_text(newest)} becomes your default card.")
        else:
            lines = await _live_lines(rt, customer_id)
            if lines:
                numbers = ", ".join(line["msisdn"] for line in lines)
                effects.append(
                    f"No card is left on file: the renewals of {numbers} will be declined and the "
                    "lines blocked until you add a card."
                )
    return Action(
        purpose="card_remove",
        title=f"Remove {card_text(card)}",
        effects=effects,
        post_url=f"/payment-methods/{card.id}/remove",
        back_url="/payment-methods",
        button="Remove the card",
        done=f"{card_text(card)} removed.",
        danger=True,
    )


@router.get("/payment-methods/{pm_id}/default")
async def default_confirm(request: Request, pm_id: str) -> Response:
    customer_id, card = await _card(request, pm_id)
    return await show_confirm(request, customer_id, _default_action(card))


@router.post("/payment-methods/{pm_id}/default")
async def make_default(request: Request, pm_id: str) -> Response:
    from ops.payment import set_default

    customer_id, card = await _card(request, pm_id)
    form = await form_data(request)
    rt, ctx = runtime(request), context_for(request, customer_id)
    return await act(request, customer_id, _default_action(card), form, lambda: set_default(rt, ctx, card.id))


@router.get("/payment-methods/{pm_id}/remove")
async def remove_confirm(request: Request, pm_id: str) -> Response:
    customer_id, card = await _card(request, pm_id)
    return await show_confirm(request, customer_id, await _remove_action(runtime(request), customer_id, card))


@router.post("/payment-methods/{pm_id}/remove")
async def remove(request: Request, pm_id: str) -> Response:
    from ops.payment import remove_payment_method

    customer_id, card = await _card(request, pm_id)
    form = await form_data(request)
    rt, ctx = runtime(request), context_for(request, customer_id)
    action = await _remove_action(rt, customer_id, card)
    return await act(request, customer_id, action, form, lambda: remove_payment_method(rt, ctx, card.id))

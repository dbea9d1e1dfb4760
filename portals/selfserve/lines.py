"""A customer's line: the line page, its usage history, and its actions — top-up, renew now, plan
change (and cancelling it), terminate. Money-moving and destructive ones go through a confirm page
that spells out what happens (price, card, line) and a fresh step-up code (common.act)."""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.clock import clock
from core.errors import InvalidInput, PolicyViolation
from ops.runtime import Runtime
from portals.selfserve.common import (
    Action,
    act,
    amount,
    card_text,
    context_for,
    customer_of,
    day,
    flash,
    money,
    pop_flash,
    runtime,
    show_confirm,
    to,
)
from portals.web.app import form_data, render

router = APIRouter()
USAGE_PAGE = 50


async def offering_names(rt: Runtime) -> dict[str, str]:
    from sqlmodel import select

    from domains.catalog.models import ProductOffering

    async with rt.db() as s:
        return {o.id: o.name for o in await s.exec(select(ProductOffering))}


async def _line(request: Request, sub_id: str) -> tuple[str, dict[str, Any]]:
    """The signed-in customer and their line (404 for anybody else's, before anything else)."""
    from ops.ownership import own_line

    customer_id = customer_of(request)
    return customer_id, await own_line(runtime(request), customer_id, sub_id[:20])


async def _posted(request: Request, sub_id: str) -> tuple[str, dict[str, Any], dict[str, str], str]:
    """The customer, their line, the posted form and its idempotency key (a fresh one if absent)."""
    customer_id, line = await _line(request, sub_id)
    form = await form_data(request)
    key = (form.get("key") or "").strip()[:64] or secrets.token_urlsafe(12)
    return customer_id, line, form, key


def _who(line: dict[str, Any]) -> str:
    return f"your line {line['msisdn']}"


async def _card(rt: Runtime, customer_id: str) -> Any:
    from ops.payment import default_payment_method

    return await default_payment_method(rt, customer_id)


def _no_card(card: Any) -> str | None:
    if card is None:
        return "There is no card on file to charge: add one under Payment methods first."
    return None


async def plan_options(rt: Runtime, line: dict[str, Any]) -> list[dict[str, Any]]:
    """The plans the line can move to, each with the price it renews at on the line's next renewal."""
    from ops.catalog import offering_details, sellable_offerings

    at = line.get("currentPeriodEnd")
    renewal = datetime.fromisoformat(at) if at else clock.now()
    options = []
    for d in await sellable_offerings(rt):
        if d.offering.id == line["offeringId"]:
            continue
        then = (await offering_details(rt, d.offering.id, renewal)).active_price or d.active_price
        options.append({"details": d, "price": then})
    return sorted(options, key=lambda o: (o["price"].amount, o["details"].offering.id))


# ---- the line page ------------------------------------------------------------------------------


@router.get("/lines/{sub_id}")
async def line_page(request: Request, sub_id: str) -> Response:
    from ops.catalog import list_vas
    from ops.ownership import own_line_usage

    customer_id, line = await _line(request, sub_id)
    rt = runtime(request)
    vas = [v for v in await list_vas(rt) if v.lifecycle_status == "Active"]
    plans = await plan_options(rt, line) if line["state"] == "active" and not line["pendingChange"] else []
    pending_price = None
    if line["pendingChange"]:
        from ops.catalog import offering_details

        try:
            details = await offering_details(
                rt, line["pendingChange"]["offeringId"], datetime.fromisoformat(line["currentPeriodEnd"])
            )
            pending_price = details.active_price
        except Exception:  # noqa: BLE001 - the page shows the change without its price
            pending_price = None
    return render(
        request,
        "line.html",
        {
            "line": line,
            "usage": await own_line_usage(rt, customer_id, line["id"], limit=10),
            "offerings": await offering_names(rt),
            "vas": vas,
            "plans": plans,
            "pending_price": pending_price,
            **await pop_flash(request),
        },
    )


@router.get("/lines/{sub_id}/usage")
async def usage_page(request: Request, sub_id: str, page: int = 1) -> Response:
    from ops.ownership import own_line_usage

    customer_id, line = await _line(request, sub_id)
    page = max(1, min(page, 1000))
    rows = await own_line_usage(
        runtime(request), customer_id, line["id"], limit=USAGE_PAGE + 1, offset=(page - 1) * USAGE_PAGE
    )
    return render(
        request,
        "usage.html",
        {"line": line, "usage": rows[:USAGE_PAGE], "page": page, "more": len(rows) > USAGE_PAGE},
    )


# ---- top-up -------------------------------------------------------------------------------------


async def _topup_action(rt: Runtime, customer_id: str, line: dict[str, Any], vas_id: str, key: str) -> Action:
    from ops.catalog import get_vas

    if not vas_id or len(vas_id) > 64:
        raise InvalidInput("portal.topup.vas_missing", "Choose a top-up.")
    vas = await get_vas(rt, vas_id)
    if vas.lifecycle_status != "Active":
        raise PolicyViolation("portal.topup.not_on_sale", f"{vas.name} is no longer on sale; choose another.")
    card = await _card(rt, customer_id)
    lasts = (
        f"for {vas.expiry_hours} hours"
        if vas.expiry_hours
        else f"until the end of the current period ({day(line['currentPeriodEnd'])})"
    )
    return Action(
        purpose="topup",
        title=f"Buy {vas.name}",
        effects=[
            f"Charge {money(vas.price_amount, vas.currency)} to {card_text(card)} now.",
            f"Add {amount(vas.allowance_quantity, vas.allowance_unit)} of "
            f"{vas.allowance_type.replace('_', ' ')} to {_who(line)} {lasts}.",
        ],
        post_url=f"/lines/{line['id']}/topup",
        back_url=f"/lines/{line['id']}",
        button=f"Buy for {money(vas.price_amount, vas.currency)}",
        fields={"vas": vas.id, "key": key},
        done="Top-up added.",
        blocked=_no_card(card),
    )


@router.get("/lines/{sub_id}/topup")
async def topup_confirm(request: Request, sub_id: str, vas: str = "") -> Response:
    customer_id, line = await _line(request, sub_id)
    key = secrets.token_urlsafe(12)
    action = await _topup_action(runtime(request), customer_id, line, vas.strip(), key)
    return await show_confirm(request, customer_id, action)


@router.post("/lines/{sub_id}/topup")
async def topup(request: Request, sub_id: str) -> Response:
    from ops.subscriptions import purchase_vas

    customer_id, line, form, key = await _posted(request, sub_id)
    rt = runtime(request)
    action = await _topup_action(rt, customer_id, line, (form.get("vas") or "").strip(), key)
    ctx = context_for(request, customer_id)
    return await act(
        request,
        customer_id,
        action,
        form,
        lambda: purchase_vas(rt, ctx, line["id"], action.fields["vas"], f"portal-{key}"),
    )


# ---- renew now ----------------------------------------------------------------------------------


async def _renewal_price(rt: Runtime, line: dict[str, Any]) -> tuple[Decimal, str, str]:
    """What renewing now charges: (amount, currency, plan), as the renewal itself works it out."""
    from domains.catalog import promotions
    from ops.catalog import offering_details

    now = clock.now()
    pending = line.get("pendingChange")
    if pending:
        details = await offering_details(rt, pending["offeringId"], now)
        if details.active_price is not None:
            return details.active_price.amount, details.active_price.currency, details.offering.name
    migration = line.get("pendingPriceMigration")
    names = await offering_names(rt)
    plan = names.get(line["offeringId"], line["offeringId"])
    if migration and datetime.fromisoformat(migration["effectiveAt"]) <= now:
        return Decimal(migration["amount"]), migration["currency"], plan
    price = Decimal(str(line["price"]["amount"]))
    async with rt.db() as s:
        claim = await promotions.line_discount(s, line["id"])
    if claim is not None:
        price = promotions.discounted(price, claim.discount_type, claim.discount_value)
    return price, line["price"]["currency"], plan


async def _renew_action(rt: Runtime, customer_id: str, line: dict[str, Any], key: str) -> Action:
    if line["state"] not in ("active", "blocked"):
        raise PolicyViolation(
            "subscription.renew.only_if_active_or_blocked",
            f"Line {line['msisdn']} is {line['state']}; only an active or blocked line can be renewed.",
        )
    price, currency, plan = await _renewal_price(rt, line)
    card = await _card(rt, customer_id)
    return Action(
        purpose="renew",
        title=f"Renew {line['msisdn']} now",
        effects=[
            f"Charge {money(price, currency)} to {card_text(card)} now for a new 30-day period of {plan}.",
            f"Start that period today with fresh allowances on {_who(line)}"
            + ("; the line works again at once." if line["state"] == "blocked" else "."),
            "What is left of the current period's allowances ends now.",
        ],
        post_url=f"/lines/{line['id']}/renew",
        back_url=f"/lines/{line['id']}",
        button=f"Renew for {money(price, currency)}",
        fields={"key": key},
        done="Line renewed.",
        blocked=_no_card(card),
    )


@router.get("/lines/{sub_id}/renew")
async def renew_confirm(request: Request, sub_id: str) -> Response:
    customer_id, line = await _line(request, sub_id)
    action = await _renew_action(runtime(request), customer_id, line, secrets.token_urlsafe(12))
    return await show_confirm(request, customer_id, action)


@router.post("/lines/{sub_id}/renew")
async def renew(request: Request, sub_id: str) -> Response:
    from ops.subscriptions import renew_now

    customer_id, line, form, key = await _posted(request, sub_id)
    rt = runtime(request)
    action = await _renew_action(rt, customer_id, line, key)
    ctx = context_for(request, customer_id)
    return await act(
        request, customer_id, action, form, lambda: renew_now(rt, ctx, line["id"], f"portal-{key}")
    )


# ---- plan change --------------------------------------------------------------------------------


async def _plan_action(rt: Runtime, line: dict[str, Any], offering_id: str) -> Action:
    if not offering_id or len(offering_id) > 64:
        raise InvalidInput("portal.plan_change.offering_missing", "Choose a plan.")
    if line["state"] != "active":
        raise PolicyViolation(
            "subscription.plan_change.not_eligible_state",
            f"Line {line['msisdn']} is {line['state']}; only an active line can change plan.",
        )
    option = next((o for o in await plan_options(rt, line) if o["details"].offering.id == offering_id), None)
    if option is None:
        raise PolicyViolation(
            "portal.plan_change.not_offered",
            "That plan cannot be chosen for this line; pick one from the list.",
        )
    names = await offering_names(rt)
    price = option["price"]
    return Action(
        purpose="plan",
        title=f"Change to {option['details'].offering.name}",
        effects=[
            f"Move {_who(line)} from {names.get(line['offeringId'], line['offeringId'])} to "
            f"{option['details'].offering.name} at its next renewal, on {day(line['currentPeriodEnd'])}.",
            f"From then it renews every {price.recurring_period_length or 30} days at "
            f"{money(price.amount, price.currency)}.",
            "Nothing is charged now; you can cancel the change until the renewal.",
        ],
        post_url=f"/lines/{line['id']}/plan",
        back_url=f"/lines/{line['id']}",
        button="Change plan at renewal",
        fields={"offering": offering_id},
        done=f"Your plan changes to {option['details'].offering.name} on {day(line['currentPeriodEnd'])}.",
    )


@router.get("/lines/{sub_id}/plan")
async def plan_confirm(request: Request, sub_id: str, offering: str = "") -> Response:
    customer_id, line = await _line(request, sub_id)
    action = await _plan_action(runtime(request), line, offering.strip())
    return await show_confirm(request, customer_id, action)


@router.post("/lines/{sub_id}/plan")
async def plan_change(request: Request, sub_id: str) -> Response:
    from ops.subscriptions import schedule_plan_change

    customer_id, line = await _line(request, sub_id)
    form = await form_data(request)
    rt = runtime(request)
    action = await _plan_action(rt, line, (form.get("offering") or "").strip())
    ctx = context_for(request, customer_id)
    return await act(
        request,
        customer_id,
        action,
        form,
        lambda: schedule_plan_change(rt, ctx, line["id"], action.fields["offering"]),
    )


@router.post("/lines/{sub_id}/plan/cancel")
async def plan_change_cancel(request: Request, sub_id: str) -> Response:
    """Keeping the plan one has moves no money: no step-up, the form's CSRF token is enough."""
    from ops.subscriptions import cancel_plan_change

    customer_id, line = await _line(request, sub_id)
    try:
        await cancel_plan_change(runtime(request), context_for(request, customer_id), line["id"])
    except (PolicyViolation, InvalidInput) as exc:
        await flash(request, exc.message, error=True)
    else:
        await flash(request, "The plan change is cancelled; the line keeps its plan.")
    return to(f"/lines/{line['id']}")


# ---- terminate ----------------------------------------------------------------------------------


def _terminate_action(line: dict[str, Any]) -> Action:
    if line["state"] == "terminated":
        raise PolicyViolation(
            "subscription.terminate.invalid_state", f"Line {line['msisdn']} is already terminated."
        )
    return Action(
        purpose="terminate",
        title=f"End line {line['msisdn']}",
        effects=[
            f"End {_who(line)} now: calls, texts and data stop at once, and it cannot be brought back.",
            f"The number {line['msisdn']} is given up (it rests 90 days before anyone else gets it); "
            "the eSIM stops working.",
            "What is left of this period and its allowances is not refunded. Nothing is charged.",
        ],
        post_url=f"/lines/{line['id']}/terminate",
        back_url=f"/lines/{line['id']}",
        button="End this line now",
        done=f"Line {line['msisdn']} has ended.",
        danger=True,
        tick=f"I understand that {line['msisdn']} stops working now and cannot be brought back.",
    )


@router.get("/lines/{sub_id}/terminate")
async def terminate_confirm(request: Request, sub_id: str) -> Response:
    customer_id, line = await _line(request, sub_id)
    return await show_confirm(request, customer_id, _terminate_action(line))


@router.post("/lines/{sub_id}/terminate")
async def terminate(request: Request, sub_id: str) -> Response:
    from ops.subscriptions import terminate as end_line

    customer_id, line = await _line(request, sub_id)
    form = await form_data(request)
    rt = runtime(request)
    action = _terminate_action(line)
    ctx = context_for(request, customer_id)
    return await act(
        request,
        customer_id,
        action,
        form,
        lambda: end_line(rt, ctx, line["id"], "ended by the customer on the portal"),
    )

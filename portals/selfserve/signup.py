"""The self-serve portal's signup funnel: plan → email code (the login door) → number → name and
contact → KYC → card → promo code → order → live progress → eSIM QR code.

A new customer comes in through `/login` like everyone: an address without a customer gets a code
for creating an account, and the right code gives a *prospect* session (a verified email, no
customer yet) that reaches only these pages (`after_login`). Every step is the API's own operation,
called in-process with RequestContext(actor=<CUST id once created, else the verified email>,
channel="portal-self-serve"), so rules, audit rows and workflows are the same as on the API.

Where the funnel stands is the session's `signup` value (plan, held number, promo code, the order
and its attempt) together with what the database already holds for the customer (created, KYC
verified, a card on file): a reload or a new visit resumes at the first step not done, and the
customer is created once per funnel (an idempotency key derived from the funnel's id). The order's
Idempotency-Key is derived from the funnel too, so a double submit makes one order.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.errors import DomainError, InvalidInput
from ops.runtime import Runtime
from portals.selfserve import signup_order
from portals.selfserve.signup_funnel import (
    DOCUMENT_TYPES,
    NUMBER_CHOICES,
    _error_status,
    _gate,
    _go,
    _page,
    _resume,
    _rt,
    _session,
    _status,
    context_for,
    customer_of,
    funnel,
    save,
    verified_email,
)
from portals.web import sessions
from portals.web.app import form_data

router = APIRouter(prefix="/signup", include_in_schema=False)


# ---- the login door hands over here --------------------------------------------------------------


async def after_login(request: Request, customer_id: str | None, email: str) -> Response:
    """A right code: a customer's session (dashboard), or a prospect's (the funnel). A plan picked
    before signing in is kept."""
    session = _session(request)
    carried = (
        {"signup": session.data["signup"]} if session is not None and session.data.get("signup") else None
    )
    await sessions.start_login(request, customer_id, email, data=carried)
    if customer_id is None or carried:
        return await _resume(request)
    return _go("/dashboard")


# ---- plan ---------------------------------------------------------------------------------------


async def _plans(rt: Runtime) -> list[Any]:
    from ops.catalog import sellable_offerings

    return sorted(await sellable_offerings(rt), key=lambda d: (d.active_price.amount, d.offering.id))


@router.get("")
async def plan_page(request: Request, plan: str | None = None) -> Response:
    state = funnel(request)
    plans = await _plans(_rt(request))
    chosen = plan if plan in {p.offering.id for p in plans} else state.get("plan")
    return await _page(request, "signup_plan.html", "plan", {"plans": plans, "chosen": chosen})


@router.post("/plan")
async def plan_submit(request: Request) -> Response:
    form = await form_data(request)
    plans = await _plans(_rt(request))
    chosen = (form.get("plan") or "").strip()
    if chosen not in {p.offering.id for p in plans}:
        return await _page(
            request,
            "signup_plan.html",
            "plan",
            {"plans": plans, "chosen": None, "error": "Choose one of the plans on sale."},
            400,
        )
    state = funnel(request)
    if state.get("order"):  # a new funnel after an order: a fresh start
        state = {}
    state["plan"] = chosen
    await save(request, state)
    return await _resume(request)


# ---- number -------------------------------------------------------------------------------------


async def _number_choices(rt: Runtime) -> list[str]:
    """A few available numbers, from a random place in the pool (two people rarely see the same)."""
    from ops.inventory import list_resources

    first = await list_resources(rt, types=("msisdn",), status="available", limit=1)
    offset = secrets.randbelow(max(first.total - NUMBER_CHOICES, 0) + 1)
    page = await list_resources(
        rt, types=("msisdn",), status="available", offset=offset, limit=NUMBER_CHOICES
    )
    return [n.msisdn for n in page.items]


@router.get("/number")
async def number_page(request: Request) -> Response:
    state = funnel(request)
    if (gate := _gate(request, "number", state)) is not None:
        return gate
    return await _page(
        request, "signup_number.html", "number", {"numbers": await _number_choices(_rt(request))}
    )


@router.post("/number")
async def number_submit(request: Request) -> Response:
    from ops.inventory import cancel_hold, hold_number

    state = funnel(request)
    if (gate := _gate(request, "number", state)) is not None:
        return gate
    form = await form_data(request)
    choice = (form.get("msisdn") or "").strip()
    if choice == state.get("msisdn"):
        return await _resume(request)
    if choice != "random" and not re.fullmatch(r"\d{6,15}", choice):
        error = "Choose a number, or let us pick one."
        numbers = await _number_choices(_rt(request))
        return await _page(request, "signup_number.html", "number", {"numbers": numbers, "error": error}, 400)
    rt, ctx = _rt(request), context_for(request)
    try:
        held = await hold_number(
            rt, ctx, msisdn=None if choice == "random" else choice, customer_id=customer_of(request)
        )
    except DomainError as exc:
        numbers = await _number_choices(rt)
        return await _page(
            request,
            "signup_number.html",
            "number",
            {"numbers": numbers, "error": exc.message},
            _error_status(exc),
        )
    previous = state.get("msisdn")
    state.update(msisdn=held.msisdn, held_until=held.expires_at.isoformat() if held.expires_at else None)
    await save(request, state)
    if previous:  # the number chosen before goes back to the pool
        try:
            await cancel_hold(rt, ctx, previous)
        except DomainError:
            pass  # already taken, expired or released: nothing of ours to give back
    return await _resume(request)


# ---- name and contact ---------------------------------------------------------------------------


@router.get("/details")
async def details_page(request: Request) -> Response:
    state = funnel(request)
    if (gate := _gate(request, "details", state)) is not None:
        return gate
    if customer_of(request):
        return await _resume(request)
    return await _page(
        request, "signup_details.html", "details", {"email": verified_email(request), "form": {}}
    )


@router.post("/details")
async def details_submit(request: Request) -> Response:
    from ops.crm import create_customer

    state = funnel(request)
    if (gate := _gate(request, "details", state)) is not None:
        return gate
    if customer_of(request):  # created already (a resent form): never a second customer
        return await _resume(request)
    form = await form_data(request)
    given = (form.get("given_name") or "").strip()[:100]
    family = (form.get("family_name") or "").strip()[:100]
    mobile = (form.get("mobile") or "").strip()[:20] or None
    email = verified_email(request)
    try:
        if not given or not family:
            raise InvalidInput("portal.signup.name_required", "Give your first and last name.")
        state.setdefault("id", secrets.token_hex(12))
        await save(request, state)
        customer, _ = await create_customer(
            _rt(request),
            context_for(request),
            given_name=given,
            family_name=family,
            email=email,
            phone=mobile,
            idempotency_key=f"portal-signup-{state['id']}",
        )
    except DomainError as exc:
        return await _page(
            request,
            "signup_details.html",
            "details",
            {"email": email, "form": form, "error": exc.message},
            _error_status(exc),
        )
    await sessions.bind_subject(request, customer.customer.id)
    return await _resume(request)


# ---- KYC ----------------------------------------------------------------------------------------


@router.get("/kyc")
async def kyc_page(request: Request) -> Response:
    state = funnel(request)
    if (gate := _gate(request, "kyc", state)) is not None:
        return gate
    return await _page(request, "signup_kyc.html", "kyc", {"types": DOCUMENT_TYPES, "form": {}})


@router.post("/kyc")
async def kyc_submit(request: Request) -> Response:
    from ops.kyc import KycMisconfigured, attest, dev_sign

    state = funnel(request)
    if (gate := _gate(request, "kyc", state)) is not None:
        return gate
    form = await form_data(request)
    customer_id = customer_of(request)
    assert customer_id is not None
    rt = _rt(request)
    fields = {
        "documentType": (form.get("document_type") or "").strip(),
        "documentNumber": (form.get("document_number") or "").strip().upper()[:40],
        "documentCountry": (form.get("document_country") or "SG").strip().upper()[:3],
        "verifiedBy": "prebaked",
    }
    try:
        if fields["documentType"] not in DOCUMENT_TYPES:
            raise InvalidInput("portal.signup.document_type", "Choose the kind of identity document.")
        if not fields["documentNumber"]:
            raise InvalidInput("portal.signup.document_number", "Type the document's number.")
        if len(fields["documentCountry"]) < 2:
            raise InvalidInput("portal.signup.document_country", "The country is a 2- or 3-letter code.")
        if rt.settings.kyc_public_key:
            raise KycMisconfigured(
                "portal.signup.kyc_provider",
                "Identity checks by the KYC provider are not connected to this portal yet.",
            )
        # Development: the prebaked provider checks and signs in-process, as `bss customer kyc` does.
        signature = dev_sign(rt.settings, {**fields, "customerId": customer_id})
        await attest(
            rt,
            context_for(request),
            customer_id,
            signed_fields=fields,
            signature=signature,
            document_type=fields["documentType"],
            document_number=fields["documentNumber"],
            document_country=fields["documentCountry"],
            verified_by=fields["verifiedBy"],
        )
    except DomainError as exc:
        shown = {k: v for k, v in form.items() if k != "document_number"}
        return await _page(
            request,
            "signup_kyc.html",
            "kyc",
            {"types": DOCUMENT_TYPES, "form": shown, "error": exc.message},
            _error_status(exc),
        )
    return await _resume(request)


# ---- card ---------------------------------------------------------------------------------------


async def _card_page(request: Request, context: dict[str, Any], status: int = 200) -> Response:
    return await _page(
        request,
        "signup_card.html",
        "card",
        {"form_key": secrets.token_urlsafe(12), "status": await _status(request), "form": {}, **context},
        status,
    )


@router.get("/card")
async def card_page(request: Request) -> Response:
    state = funnel(request)
    if (gate := _gate(request, "card", state)) is not None:
        return gate
    return await _card_page(request, {})


@router.post("/card")
async def card_submit(request: Request) -> Response:
    from ops.payment import add_payment_method

    state = funnel(request)
    if (gate := _gate(request, "card", state)) is not None:
        return gate
    form = await form_data(request)
    number = re.sub(r"[\s-]", "", form.get("card_number") or "")[:19]
    key = re.sub(r"[^A-Za-z0-9_-]", "", form.get("key") or "")[:32]
    try:
        try:
            month, year = int(form.get("exp_month") or ""), int(form.get("exp_year") or "")
        except ValueError:
            raise InvalidInput(
                "portal.signup.card_expiry", "Give the card's expiry month and year."
            ) from None
        if year < 100:
            year += 2000
        await add_payment_method(
            _rt(request),
            context_for(request),
            customer_id=customer_of(request) or "",
            card_number=number,
            exp_month=month,
            exp_year=year,
            name_on_card=(form.get("name_on_card") or "").strip()[:100] or None,
            set_default=True,
            idempotency_key=f"portal-card-{state.get('id', '')}-{key}" if key else None,
        )
    except DomainError as exc:
        # The card number is never shown back.
        shown = {k: v for k, v in form.items() if k in ("exp_month", "exp_year", "name_on_card")}
        return await _card_page(request, {"form": shown, "error": exc.message}, _error_status(exc))
    state.pop("card_refused", None)
    await save(request, state)
    return await _resume(request)


# ---- promo code ---------------------------------------------------------------------------------


@router.get("/promo")
async def promo_page(request: Request) -> Response:
    state = funnel(request)
    if (gate := _gate(request, "promo", state)) is not None:
        return gate
    return await _page(request, "signup_promo.html", "promo", {"code": state.get("promo") or ""})


@router.post("/promo")
async def promo_submit(request: Request) -> Response:
    state = funnel(request)
    if (gate := _gate(request, "promo", state)) is not None:
        return gate
    form = await form_data(request)
    code = "" if form.get("skip") else (form.get("code") or "").strip().upper()
    if len(code) > 64 or (code and not re.fullmatch(r"[A-Z0-9_-]+", code)):
        return await _page(
            request,
            "signup_promo.html",
            "promo",
            {"code": code[:64], "error": "A promo code is letters and digits."},
            400,
        )
    state.update(promo=code, promo_done=True)
    await save(request, state)
    return await _resume(request)


# ---- review, order, progress and the eSIM (signup_order.py) --------------------------------------

router.include_router(signup_order.router)

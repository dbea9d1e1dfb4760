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

import io
import re
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from core.context import RequestContext
from core.errors import DomainError, InvalidInput
from ops.runtime import Runtime
from portals.web import sessions
from portals.web.app import form_data, render, render_form_page

router = APIRouter(prefix="/signup", include_in_schema=False)

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


# ---- review and order ---------------------------------------------------------------------------


async def _review(request: Request, state: dict[str, Any], error: str | None = None, status: int = 200):
    from ops.catalog import offering_details
    from ops.signup import promo_preview

    rt = _rt(request)
    plan = await offering_details(rt, state["plan"])
    preview = (
        await promo_preview(rt, state["promo"], customer_of(request), plan.active_price.amount)
        if state.get("promo")
        else None
    )
    return await _page(
        request,
        "signup_review.html",
        "review",
        {"plan": plan, "status": await _status(request), "preview": preview, "error": error},
        status,
    )


@router.get("/review")
async def review_page(request: Request) -> Response:
    state = funnel(request)
    if (gate := _gate(request, "review", state)) is not None:
        return gate
    if state.get("order"):
        return _go(f"/signup/orders/{state['order']}")
    if await next_step(request, state) != "review":
        return await _resume(request)
    return await _review(request, state)


@router.post("/order")
async def order_submit(request: Request) -> Response:
    from ops.orders import OrderRequest, create_order

    state = funnel(request)
    if (gate := _gate(request, "review", state)) is not None:
        return gate
    if state.get("order"):  # placed already (a double submit that came after the first)
        return _go(f"/signup/orders/{state['order']}")
    if await next_step(request, state) != "review":
        return await _resume(request)
    customer_id = customer_of(request)
    assert customer_id is not None
    # One order per funnel and attempt, however often the form is sent (the API's Idempotency-Key).
    key = f"portal-signup-{state['id']}-{state.get('attempt', 0)}"
    try:
        order = await create_order(
            _rt(request),
            context_for(request),
            OrderRequest(
                customer_id,
                state["plan"],
                msisdn_preference=state["msisdn"],
                promo_code=state.get("promo") or None,
                idempotency_key=key,
            ),
        )
    except DomainError as exc:
        return await _review(request, state, exc.message, _error_status(exc))
    state["order"] = order.id
    await save(request, state)
    return _go(f"/signup/orders/{order.id}")


@router.post("/retry")
async def retry_submit(request: Request) -> Response:
    """After a failed order: a new attempt (new number hold, new order key), a new card first when
    the card was declined."""
    from ops.signup import order_progress

    state = funnel(request)
    customer_id = customer_of(request)
    if not customer_id or not state.get("order"):
        return await _resume(request)
    progress = await order_progress(_rt(request), customer_id, state["order"])
    if progress.state in ("failed", "cancelled"):
        state["attempt"] = int(state.get("attempt", 0)) + 1
        state.pop("order", None)
        state.pop("msisdn", None)  # the failed order gave its number back
        if declined(progress.reason):
            state["card_refused"] = True
        await save(request, state)
    return await _resume(request)


def declined(reason: str | None) -> bool:
    return bool(reason) and "payment_declined" in (reason or "")


# ---- progress and confirmation ------------------------------------------------------------------


def _no_customer(request: Request) -> RedirectResponse:
    """A prospect has no orders yet: back to the funnel; a visitor: sign in first."""
    return _go("/signup" if verified_email(request) else "/login")


async def _progress_context(request: Request, order_id: str) -> dict[str, Any]:
    from ops.catalog import offering_details
    from ops.signup import order_progress

    customer_id = customer_of(request) or ""
    progress = await order_progress(_rt(request), customer_id, order_id)
    plan = await offering_details(_rt(request), progress.offering_id)
    return {"progress": progress, "plan": plan, "declined": declined(progress.reason)}


@router.get("/orders/{order_id}")
async def progress_page(request: Request, order_id: str) -> Response:
    if not customer_of(request):
        return _no_customer(request)
    context = await _progress_context(request, order_id)
    if context["progress"].state == "completed":
        return _go(f"/signup/orders/{order_id}/done")
    return await render_form_page(request, "signup_progress.html", context)


@router.get("/orders/{order_id}/status")
async def progress_fragment(request: Request, order_id: str) -> Response:
    """The live part of the progress page, polled by htmx; a completed order sends it on."""
    if not customer_of(request):
        return _no_customer(request)
    context = await _progress_context(request, order_id)
    response = render(request, "_signup_status.html", context)
    if context["progress"].state == "completed" and request.headers.get("hx-request"):
        response.headers["HX-Redirect"] = f"/signup/orders/{order_id}/done"
    return response


@router.get("/orders/{order_id}/done")
async def done_page(request: Request, order_id: str) -> Response:
    from ops.catalog import offering_details
    from ops.signup import order_esim

    customer_id = customer_of(request)
    if not customer_id:
        return _no_customer(request)
    esim = await order_esim(_rt(request), customer_id, order_id)
    context = await _progress_context(request, order_id)
    if funnel(request).get("order") == order_id:
        await sessions.update_data(request, signup=None)  # the funnel is over; a new one starts fresh
    plan = await offering_details(_rt(request), context["progress"].offering_id)
    return render(request, "signup_done.html", {**context, "esim": esim, "plan": plan})


@router.get("/orders/{order_id}/esim.png")
async def esim_qr(request: Request, order_id: str) -> Response:
    """The eSIM's activation code as a QR code (PNG); the order must be the signed-in customer's."""
    import segno

    from ops.signup import order_esim

    customer_id = customer_of(request)
    if not customer_id:
        return _no_customer(request)
    esim = await order_esim(_rt(request), customer_id, order_id)
    out = io.BytesIO()
    segno.make(esim.activation_code, error="m").save(out, kind="png", scale=6, border=2)
    return Response(out.getvalue(), media_type="image/png", headers={"cache-control": "no-store"})

"""The signup funnel's end: the review and the order (one per funnel and attempt), a new attempt
after a failed order, the live progress page and the confirmation with the eSIM's QR code. Its
router is included in signup.py's (under /signup).
"""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from core.errors import DomainError
from portals.selfserve.signup_funnel import (
    _error_status,
    _gate,
    _go,
    _page,
    _resume,
    _rt,
    _status,
    context_for,
    customer_of,
    funnel,
    next_step,
    save,
    verified_email,
)
from portals.web import sessions
from portals.web.app import render, render_form_page

router = APIRouter(include_in_schema=False)


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

"""Orders, messages received, and cases (open one, follow it, add a note): the customer's own only
(ops/ownership.py answers 404 for anybody else's order or case)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.errors import Conflict, InvalidInput, PolicyViolation
from portals.selfserve.common import context_for, customer_of, flash, pop_flash, runtime, to
from portals.selfserve.lines import offering_names
from portals.web.app import form_data, render

router = APIRouter()


# ---- orders -------------------------------------------------------------------------------------


@router.get("/orders")
async def orders_page(request: Request) -> Response:
    from ops.ownership import own_orders

    customer_id = customer_of(request)
    rt = runtime(request)
    return render(
        request,
        "orders.html",
        {"orders": await own_orders(rt, customer_id), "offerings": await offering_names(rt)},
    )


@router.get("/orders/{order_id}")
async def order_page(request: Request, order_id: str) -> Response:
    from ops.ownership import own_order

    customer_id = customer_of(request)
    rt = runtime(request)
    view = await own_order(rt, customer_id, order_id[:20])
    return render(request, "order.html", {"view": view, "offerings": await offering_names(rt)})


# ---- messages -----------------------------------------------------------------------------------


@router.get("/messages")
async def messages_page(request: Request) -> Response:
    from ops.ownership import own_messages

    customer_id = customer_of(request)
    return render(request, "messages.html", {"messages": await own_messages(runtime(request), customer_id)})


# ---- cases --------------------------------------------------------------------------------------

CATEGORIES = {
    "technical": "My line or eSIM does not work",
    "billing": "A charge or a payment",
    "account": "My account",
    "information": "A question",
    "complaint": "A complaint",
    "other": "Something else",
}


@router.get("/cases")
async def cases_page(request: Request) -> Response:
    from ops.ownership import own_cases

    customer_id = customer_of(request)
    return render(
        request,
        "cases.html",
        {"cases": await own_cases(runtime(request), customer_id), **await pop_flash(request)},
    )


def _new_case_page(
    request: Request, error: str | None = None, status_code: int = 200, **values: str
) -> Response:
    values.setdefault("key", secrets.token_urlsafe(12))
    return render(
        request, "case_new.html", {"categories": CATEGORIES, "error": error, "values": values}, status_code
    )


@router.get("/cases/new")
async def new_case(request: Request) -> Response:
    customer_of(request)
    return _new_case_page(request)


@router.post("/cases")
async def open_case(request: Request) -> Response:
    from ops.crm import open_case as open_crm_case

    customer_id = customer_of(request)
    form = await form_data(request)
    values = {
        "subject": (form.get("subject") or "").strip()[:200],
        "description": (form.get("description") or "").strip()[:4000],
        "category": form.get("category") if form.get("category") in CATEGORIES else "other",
        "key": (form.get("key") or "")[:64],
    }
    if not values["subject"]:
        return _new_case_page(
            request, "Give your case a subject: a few words saying what it is about.", 422, **values
        )
    try:
        detail, _ = await open_crm_case(
            runtime(request),
            context_for(request, customer_id),
            idempotency_key=f"portal-{customer_id}-{values['key']}" if values["key"] else None,
            customer_id=customer_id,
            subject=values["subject"],
            description=values["description"],
            category=values["category"],
        )
    except (PolicyViolation, InvalidInput, Conflict) as exc:
        return _new_case_page(request, exc.message, exc.status, **values)
    await flash(request, f"Case {detail.case.id} is open; we answer here and by email.")
    return to(f"/cases/{detail.case.id}")


@router.get("/cases/{case_id}")
async def case_page(request: Request, case_id: str) -> Response:
    from ops.ownership import own_case

    customer_id = customer_of(request)
    detail = await own_case(runtime(request), customer_id, case_id[:16])
    return render(request, "case.html", {"detail": detail, **await pop_flash(request)})


@router.post("/cases/{case_id}/notes")
async def add_note(request: Request, case_id: str) -> Response:
    from ops.crm import note_case
    from ops.ownership import check_case

    customer_id = customer_of(request)
    rt = runtime(request)
    await check_case(rt, customer_id, case_id[:16])  # 404 for anybody else's, before anything else
    form = await form_data(request)
    try:
        await note_case(rt, context_for(request, customer_id), case_id[:16], (form.get("text") or "")[:4000])
    except (PolicyViolation, InvalidInput) as exc:
        await flash(request, exc.message, error=True)
    else:
        await flash(request, "Your message is added to the case.")
    return to(f"/cases/{case_id[:16]}")

"""Promotions: every code with its terms, uses against its cap, validity window and state; a
supervisor or admin creates one or exhausts one, each after a confirm step. Via ops.promotions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.errors import InvalidInput
from domains.catalog.promotions import CODE_KINDS, DISCOUNT_TYPES, cap
from ops import promotions, workbench
from portals.cockpit.base import (
    SUPERVISOR,
    confirm,
    confirmed,
    context_for,
    decimal,
    done,
    integer,
    moment,
    page,
    runtime_of,
    signed_in,
    text,
)
from portals.web.app import form_data

router = APIRouter()
FIELDS = ("code", "name", "discount_type", "discount_value", "periods", "code_kind", "max_uses")
FIELDS += ("valid_from", "valid_to", "eligible")


@router.get("/promotions")
async def listing(request: Request) -> Response:
    await signed_in(request)
    views, total = await promotions.listing(runtime_of(request), limit=200)
    return page(
        request,
        "promotions.html",
        {
            "rows": [(v, cap(v.promotion)) for v in views],
            "total": total,
            "kinds": CODE_KINDS,
            "types": DISCOUNT_TYPES,
            "flash": request.query_params.get("done"),
        },
    )


def _new_promotion(form: dict[str, str]) -> promotions.NewPromotion:
    code = text(form, "code", 32, code="catalog.promotion.code_invalid")
    name = text(form, "name", 200)
    if not code or not name:
        raise InvalidInput("cockpit.promotion.required", "A promotion needs a code and a name.")
    eligible = [c.strip() for c in form.get("eligible", "").replace("\n", ",").split(",") if c.strip()]
    if len(eligible) > 100:
        raise InvalidInput("cockpit.promotion.eligible", "At most 100 customers per form.")
    return promotions.NewPromotion(
        code=code,
        name=name,
        discount_type=form.get("discount_type", "").strip(),
        discount_value=decimal(form, "discount_value"),
        periods=integer(form, "periods", low=1, high=120),
        code_kind=form.get("code_kind", "").strip(),
        max_uses=integer(form, "max_uses", low=1, high=10_000_000),
        valid_from=moment(form, "valid_from"),
        valid_to=moment(form, "valid_to"),
        eligible_customer_ids=[c[:64] for c in eligible] or None,
    )


@router.post("/promotions")
async def create(request: Request) -> Response:
    op = await signed_in(request, SUPERVISOR)
    form = await form_data(request)
    req = _new_promotion(form)
    rt = runtime_of(request)
    plan = await workbench.promotion_create_plan(rt, req)
    if not confirmed(form):
        plan.fields = {k: form.get(k, "") for k in FIELDS}
        return confirm(request, plan, "/promotions", "/promotions")
    made = await promotions.create(rt, context_for(op), req)
    return done("/promotions", f"created {made.promotion.code}")


@router.post("/promotions/{code}/exhaust")
async def exhaust(request: Request, code: str) -> Response:
    op = await signed_in(request, SUPERVISOR)
    form = await form_data(request)
    rt = runtime_of(request)
    plan = await workbench.promotion_exhaust_plan(rt, code)
    if not confirmed(form):
        return confirm(request, plan, f"/promotions/{code[:32]}/exhaust", "/promotions")
    gone = await promotions.exhaust(rt, context_for(op), code[:32])
    return done("/promotions", f"exhausted {gone.promotion.code}")

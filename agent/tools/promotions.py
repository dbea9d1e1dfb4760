"""Operator tools: promotions (promo codes, assignment to customers, exhausting)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from agent.tools.base import Args, Page, PromoRef, ToolSet, _customer, _plan_text
from core.context import RequestContext
from ops.runtime import Runtime


def add_promotion_tools(ts: ToolSet, rt: Runtime, ctx: RequestContext) -> None:
    """Add these tools to `ts`, in this order (part of operator_tools)."""
    from ops import promotions, workbench

    add = ts.add

    # ------------------------------------------------------------------ promotions
    class PromoList(Page):
        state: Literal["active", "exhausted"] | None = None

    @add("promo_list", "Promotions (codes, discounts, state).", PromoList, ops=("ops.promotions.listing",))
    async def _(a, key):
        rows, total = await promotions.listing(rt, state=a.state, offset=a.offset, limit=a.limit)
        return {"total": total, "items": rows}

    @add(
        "promo_get",
        "One promotion: its terms, uses and eligible customers.",
        PromoRef,
        ops=("ops.promotions.show",),
    )
    async def _(a, key):
        return await promotions.show(rt, a.code)

    class NewPromo(Args):
        code: str = Field(min_length=3, max_length=40)
        name: str = Field(min_length=1, max_length=100)
        discount_type: Literal["percent", "absolute"]
        discount_value: Decimal = Field(gt=0, max_digits=10, decimal_places=2)
        periods: int | None = Field(
            None, ge=1, le=36, description="How many periods it discounts; none = the first only."
        )
        code_kind: Literal["single_use_shared", "multi_use", "single_use_per_customer"]
        max_uses: int | None = Field(None, ge=1)
        valid_from: datetime | None = None
        valid_to: datetime | None = None
        eligible_customer_ids: list[str] | None = Field(None, max_length=100)

    async def plan_promo(a):
        from ops.promotions import NewPromotion

        return _plan_text(await workbench.promotion_create_plan(rt, NewPromotion(**a.model_dump())))

    @add(
        "promo_create",
        "Create a promotion code. Proposes; the person confirms.",
        NewPromo,
        kind="act",
        min_role="admin",
        plan=plan_promo,
        ops=("ops.promotions.create", "ops.workbench.promotion_create_plan"),
    )
    async def _(a, key):
        from ops.promotions import NewPromotion

        return await promotions.create(rt, ctx, NewPromotion(**a.model_dump()))

    class PromoCustomer(PromoRef):
        customer_id: str = _customer()

    async def plan_assign(a):
        await promotions.show(rt, a.code)
        return f"Make {a.customer_id} eligible for promo {a.code}."

    async def plan_unassign(a):
        await promotions.show(rt, a.code)
        return f"Remove {a.customer_id} from the customers eligible for promo {a.code}."

    async def plan_exhaust(a):
        return _plan_text(await workbench.promotion_exhaust_plan(rt, a.code))

    @add(
        "promo_assign",
        "Make a customer eligible for a targeted promo. Proposes; the person confirms.",
        PromoCustomer,
        kind="act",
        min_role="admin",
        plan=plan_assign,
        ops=("ops.promotions.assign",),
    )
    async def _(a, key):
        return await promotions.assign(rt, ctx, a.code, a.customer_id)

    @add(
        "promo_unassign",
        "Remove a customer from a targeted promo. Proposes; the person confirms.",
        PromoCustomer,
        kind="act",
        min_role="admin",
        plan=plan_unassign,
        ops=("ops.promotions.unassign",),
    )
    async def _(a, key):
        return await promotions.unassign(rt, ctx, a.code, a.customer_id)

    @add(
        "promo_exhaust",
        "End a promotion now. Proposes; the person confirms.",
        PromoRef,
        kind="act",
        min_role="admin",
        plan=plan_exhaust,
        ops=("ops.promotions.exhaust", "ops.workbench.promotion_exhaust_plan"),
    )
    async def _(a, key):
        return await promotions.exhaust(rt, ctx, a.code)

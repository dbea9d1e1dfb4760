"""Operator tools: the catalogue (plans, prices and their windows, top-ups)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from agent.tools.base import Args, OfferingRef, ToolSet, VasRef, _plan_text
from core.context import RequestContext
from ops.runtime import Runtime


def add_catalog_tools(ts: ToolSet, rt: Runtime, ctx: RequestContext) -> None:
    """Add these tools to `ts`, in this order (part of operator_tools)."""
    from ops import catalog, cockpit, subscriptions, workbench

    add = ts.add

    # ------------------------------------------------------------------ catalogue
    @add(
        "catalog_plans",
        "The plans a customer can buy now, each with its price and allowances.",
        ops=("ops.catalog.sellable_offerings",),
    )
    async def _(a, key):
        return await catalog.sellable_offerings(rt)

    @add(
        "catalog_all_plans",
        "Every plan, retired ones too, with all their price rows and windows.",
        ops=("ops.cockpit.all_offerings",),
    )
    async def _(a, key):
        return await cockpit.all_offerings(rt)

    @add(
        "catalog_plan_get",
        "One plan: prices (the winning one now), allowances.",
        OfferingRef,
        ops=("ops.catalog.offering_details",),
    )
    async def _(a, key):
        return await catalog.offering_details(rt, a.offering_id)

    @add(
        "catalog_top_ups",
        "The top-ups (VAS) a line can buy, with prices and allowances.",
        ops=("ops.catalog.list_vas",),
    )
    async def _(a, key):
        return await catalog.list_vas(rt)

    @add("catalog_top_up_get", "One top-up (VAS).", VasRef, ops=("ops.catalog.get_vas",))
    async def _(a, key):
        return await catalog.get_vas(rt, a.vas_id)

    class NewOffering(Args):
        offering_id: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,39}$", description="e.g. PLAN_XL")
        name: str = Field(min_length=1, max_length=100)
        amount: Decimal = Field(
            gt=0, max_digits=10, decimal_places=2, description="SGD per 30 days, tax inclusive."
        )
        allowances: dict[Literal["data", "voice", "sms", "data_roaming"], int] = Field(
            description="Quantities per period: data and data_roaming in MB, voice in minutes, sms in count; -1 = unlimited."
        )
        description: str | None = Field(None, max_length=500)
        valid_from: datetime | None = None
        valid_to: datetime | None = None

    async def plan_offering(a):
        return _plan_text(
            await workbench.add_offering_plan(
                rt,
                offering_id=a.offering_id,
                name=a.name,
                amount=a.amount,
                allowances=dict(a.allowances),
                price_id=None,
                valid_from=a.valid_from,
                valid_to=a.valid_to,
            )
        )

    @add(
        "catalog_add_plan",
        "Add a plan with its price and allowances. Proposes; the person confirms.",
        NewOffering,
        kind="act",
        min_role="admin",
        plan=plan_offering,
        ops=("ops.catalog.add_offering", "ops.workbench.add_offering_plan"),
    )
    async def _(a, key):
        return await catalog.add_offering(rt, ctx, **a.model_dump())

    class NewPrice(OfferingRef):
        price_id: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,39}$")
        amount: Decimal = Field(gt=0, max_digits=10, decimal_places=2)
        valid_from: datetime | None = None
        valid_to: datetime | None = None

    async def plan_price(a):
        return _plan_text(
            await workbench.add_price_plan(rt, a.offering_id, a.price_id, a.amount, a.valid_from, a.valid_to)
        )

    @add(
        "catalog_add_price",
        "Add a price row (with its validity window) to a plan. Proposes; the person confirms.",
        NewPrice,
        kind="act",
        min_role="admin",
        plan=plan_price,
        ops=("ops.catalog.add_price", "ops.workbench.add_price_plan"),
    )
    async def _(a, key):
        return await catalog.add_price(rt, ctx, a.offering_id, a.price_id, a.amount, a.valid_from, a.valid_to)

    async def plan_retire(a):
        return _plan_text(await workbench.retire_plan(rt, a.offering_id))

    @add(
        "catalog_retire_plan",
        "Retire a plan (no new sales). Proposes; the person confirms.",
        OfferingRef,
        kind="act",
        min_role="admin",
        plan=plan_retire,
        ops=("ops.catalog.retire_offering", "ops.workbench.retire_plan"),
    )
    async def _(a, key):
        return await catalog.retire_offering(rt, ctx, a.offering_id)

    class Migrate(OfferingRef):
        new_price_id: str = Field(max_length=40)
        notice_days: int = Field(30, ge=0, le=365)

    async def plan_migrate(a):
        await catalog.offering_details(rt, a.offering_id)
        return f"Move every live line of {a.offering_id} to price {a.new_price_id} from its first renewal after {a.notice_days} days' notice; each customer is told."

    @add(
        "catalog_migrate_price",
        "Move every live line of a plan to a new price after a notice period. Proposes; the person confirms.",
        Migrate,
        kind="act",
        min_role="admin",
        plan=plan_migrate,
        ops=("ops.subscriptions.migrate_price",),
    )
    async def _(a, key):
        return {
            "linesMigrating": await subscriptions.migrate_price(
                rt, ctx, a.offering_id, a.new_price_id, a.notice_days
            )
        }

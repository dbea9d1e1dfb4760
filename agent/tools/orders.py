"""Operator tools: product orders (list, place, cancel, trace)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.tools.base import MSISDN, CustomerRef, OrderRef, Page, ToolSet, _customer, _sentences
from core.context import RequestContext
from ops.runtime import Runtime


def add_order_tools(ts: ToolSet, rt: Runtime, ctx: RequestContext) -> None:
    """Add these tools to `ts`, in this order (part of operator_tools)."""
    from ops import catalog, crm, orders, trace

    add = ts.add

    # ------------------------------------------------------------------ orders
    class OrderList(Page):
        customer_id: str | None = _customer("Only this customer's orders.")
        state: Literal["acknowledged", "in_progress", "completed", "failed", "cancelled"] | None = None

    @add(
        "order_list",
        "Product orders, newest first, by customer and/or state.",
        OrderList,
        ops=("ops.orders.list_orders",),
    )
    async def _(a, key):
        rows, total = await orders.list_orders(
            rt, customer_id=a.customer_id, state=a.state, offset=a.offset, limit=a.limit
        )
        return {"total": total, "items": rows}

    @add(
        "order_get",
        "One product order: state, plan, price, number, dates, failure reason.",
        OrderRef,
        ops=("ops.orders.get_order",),
    )
    async def _(a, key):
        return await orders.get_order(rt, a.order_id)

    class NewOrder(CustomerRef):
        offering_id: str = Field(max_length=64, description="The plan to sell.")
        msisdn_preference: str | None = Field(
            None, pattern=MSISDN, description="A number the customer asked for."
        )
        promo_code: str | None = Field(None, max_length=40)

    async def plan_order(a):
        from ops import payment as pay

        d = await catalog.offering_details(rt, a.offering_id)
        await crm.get_customer(rt, a.customer_id)
        card = await pay.default_payment_method(rt, a.customer_id)
        price = d.active_price
        return _sentences(
            f"Order the plan {d.offering.id} “{d.offering.name}” for {a.customer_id}"
            + (f" with the number {a.msisdn_preference}" if a.msisdn_preference else "")
            + (f" and promo {a.promo_code}" if a.promo_code else "")
            + ".",
            f"Charge {price.currency} {price.amount:.2f} (before any promo) to "
            + (f"{card.brand} •••• {card.last4}" if card else "no card on file (the order will fail)")
            + ", then activate a new line with an eSIM."
            if price
            else "That plan has no price on sale now; the order will be refused.",
        )

    @add(
        "order_create",
        "Sell a plan to a customer: a new line, charged to their default card. Proposes; the person confirms.",
        NewOrder,
        kind="act",
        plan=plan_order,
        ops=("ops.orders.create_order",),
    )
    async def _(a, key):
        from ops.orders import OrderRequest

        return await orders.create_order(rt, ctx, OrderRequest(**a.model_dump(), idempotency_key=key))

    class CancelOrder(OrderRef):
        reason: str | None = Field(None, max_length=200)

    async def plan_cancel_order(a):
        o = await orders.get_order(rt, a.order_id)
        return f"Cancel order {o.id} ({o.offering_id} for {o.customer_id}, now {o.state}); refused once provisioning has started. Anything charged is refunded by the order."

    @add(
        "order_cancel",
        "Cancel an order before provisioning starts. Proposes; the person confirms.",
        CancelOrder,
        kind="act",
        plan=plan_cancel_order,
        ops=("ops.orders.cancel_order",),
    )
    async def _(a, key):
        return await orders.cancel_order(rt, ctx, a.order_id, a.reason)

    @add(
        "order_trace",
        "The timeline of an order's saga (every step, retry and error, from Temporal).",
        OrderRef,
        ops=("ops.trace.order_trace",),
    )
    async def _(a, key):
        return await trace.order_trace(rt, a.order_id)

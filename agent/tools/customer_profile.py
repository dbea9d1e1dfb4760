"""The customer chat's tools, bound to one customer, and the ownership trip-wire on their results."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import Field

from agent.tools.base import LIST_MAX, Args, LineRef, Tool, ToolSet, _line_plan
from agent.tools.knowledge import _knowledge_tool
from core.context import RequestContext
from core.errors import NotFound
from ops.runtime import Runtime

# ================================================================================== customer tools

_CUST_IN_TEXT = re.compile(r"CUST-[0-9a-fA-F]{8}")
_SUB_IN_TEXT = re.compile(r"SUB-\d{6,}")


def customer_tools(rt: Runtime, ctx: RequestContext, customer_id: str) -> list[Tool]:
    """The customer chat's tools, bound to `customer_id`: no customer, order or case id parameter
    the model could point elsewhere; a line id is checked with ops/ownership.py before use, and
    every result is checked for other customers' things before the model sees it."""
    from ops import catalog, crm, ownership, subscriptions

    ts = ToolSet()
    add = ts.add

    async def own(line_id: str) -> None:
        await ownership.check_line(rt, customer_id, line_id)  # another customer's line = 404

    @add(
        "my_account",
        "The customer's own account: name, status, contact details, KYC status.",
        ops=("ops.crm.get_customer",),
    )
    async def _(a, key):
        return await crm.get_customer(rt, customer_id)

    @add(
        "my_lines",
        "The customer's own lines, live first, with state, plan, balances left and period end.",
        ops=("ops.ownership.own_lines",),
    )
    async def _(a, key):
        return await ownership.own_lines(rt, customer_id)

    @add(
        "line_status",
        "One of the customer's lines: state (and why blocked), plan, balances left, pending plan change.",
        LineRef,
        ops=("ops.ownership.own_line",),
    )
    async def _(a, key):
        return await ownership.own_line(rt, customer_id, a.line_id)

    class LineUsage(LineRef):
        limit: int = Field(20, ge=1, le=LIST_MAX)

    @add(
        "line_usage",
        "The latest usage (data, calls, texts) of one of the customer's lines, newest first.",
        LineUsage,
        ops=("ops.ownership.own_line_usage",),
    )
    async def _(a, key):
        return await ownership.own_line_usage(rt, customer_id, a.line_id, limit=a.limit)

    @add("my_orders", "The customer's own orders, newest first.", ops=("ops.ownership.own_orders",))
    async def _(a, key):
        return await ownership.own_orders(rt, customer_id, limit=20)

    @add("my_cases", "The customer's own support cases.", ops=("ops.ownership.own_cases",))
    async def _(a, key):
        return await ownership.own_cases(rt, customer_id, limit=20)

    @add(
        "my_payment_methods",
        "The customer's own cards on file (brand, last 4, expiry, default).",
        ops=("ops.ownership.own_payment_methods",),
    )
    async def _(a, key):
        return await ownership.own_payment_methods(rt, customer_id)

    @add("my_messages", "Messages we sent the customer, newest first.", ops=("ops.ownership.own_messages",))
    async def _(a, key):
        return await ownership.own_messages(rt, customer_id, limit=20)

    @add(
        "plans", "The plans on sale now, with price and allowances.", ops=("ops.catalog.sellable_offerings",)
    )
    async def _(a, key):
        return await catalog.sellable_offerings(rt)

    @add("top_ups", "The top-ups a line can buy, with price and allowance.", ops=("ops.catalog.list_vas",))
    async def _(a, key):
        return await catalog.list_vas(rt)

    class Help(Args):
        subject: str = Field(min_length=3, max_length=200)
        description: str = Field("", max_length=2000)
        category: Literal["account", "billing", "technical", "information", "complaint", "other"] = "other"

    @add(
        "open_case",
        "Open a support case for the customer so a person follows up (billing dispute, fraud, complaint, anything the chat cannot do).",
        Help,
        kind="write",
        ops=("ops.crm.open_case",),
    )
    async def _(a, key):
        detail, _replayed = await crm.open_case(
            rt, ctx, customer_id=customer_id, idempotency_key=key, **a.model_dump()
        )
        return detail

    class TopUp(LineRef):
        vas_id: str = Field(max_length=64, description="The top-up to buy (top_ups).")

    async def plan_topup(a):
        await own(a.line_id)
        return await _line_plan(rt, a.line_id, "topup", {"vas": a.vas_id})

    @add(
        "top_up",
        "Buy a top-up for one of the customer's lines, charged to their default card; a data top-up unblocks a line whose data ran out. Proposes; the customer confirms.",
        TopUp,
        kind="act",
        plan=plan_topup,
        ops=("ops.subscriptions.purchase_vas", "ops.ownership.check_line"),
    )
    async def _(a, key):
        await own(a.line_id)
        return await subscriptions.purchase_vas(rt, ctx, a.line_id, a.vas_id, idempotency_key=key)

    async def plan_renew(a):
        await own(a.line_id)
        return await _line_plan(rt, a.line_id, "renew", {})

    @add(
        "renew",
        "Renew one of the customer's lines now (charges the next period, unblocks it). Proposes; the customer confirms.",
        LineRef,
        kind="act",
        plan=plan_renew,
        ops=("ops.subscriptions.renew_now",),
    )
    async def _(a, key):
        await own(a.line_id)
        return await subscriptions.renew_now(rt, ctx, a.line_id, idempotency_key=key)

    class PlanChange(LineRef):
        offering_id: str = Field(max_length=64, description="The plan to move to (plans).")

    async def plan_change(a):
        await own(a.line_id)
        return await _line_plan(rt, a.line_id, "plan_change", {"offering": a.offering_id})

    @add(
        "change_plan",
        "Move one of the customer's lines to another plan at its next renewal. Proposes; the customer confirms.",
        PlanChange,
        kind="act",
        plan=plan_change,
        ops=("ops.subscriptions.schedule_plan_change",),
    )
    async def _(a, key):
        await own(a.line_id)
        return await subscriptions.schedule_plan_change(rt, ctx, a.line_id, a.offering_id)

    async def plan_cancel_change(a):
        await own(a.line_id)
        return await _line_plan(rt, a.line_id, "cancel_plan_change", {})

    @add(
        "cancel_plan_change",
        "Cancel the pending plan change of one of the customer's lines. Proposes; the customer confirms.",
        LineRef,
        kind="act",
        plan=plan_cancel_change,
        ops=("ops.subscriptions.cancel_plan_change",),
    )
    async def _(a, key):
        await own(a.line_id)
        return await subscriptions.cancel_plan_change(rt, ctx, a.line_id)

    class Terminate(LineRef):
        reason: str = Field("", max_length=200)

    async def plan_terminate(a):
        await own(a.line_id)
        return await _line_plan(rt, a.line_id, "terminate", {"reason": a.reason})

    @add(
        "terminate_line",
        "End one of the customer's lines for good (nothing refunded). Proposes; the customer confirms.",
        Terminate,
        kind="act",
        plan=plan_terminate,
        ops=("ops.subscriptions.terminate",),
    )
    async def _(a, key):
        await own(a.line_id)
        return await subscriptions.terminate(rt, ctx, a.line_id, a.reason or None)

    _knowledge_tool(ts, rt)
    from agent.escalation import escalation_tool  # fraud, disputes, regulator, identity, bereavement

    ts.tools.append(escalation_tool(rt, ctx, customer_id))

    async def check(result: Any) -> None:
        await check_owned(rt, customer_id, result)

    async def public(result: Any) -> None:
        """The handbook and docs are public text: an example id in them is no customer's data."""

    for t in ts.tools:
        t.check = public if t.name == "knowledge_search" else check
    return ts.tools


async def check_owned(rt: Runtime, customer_id: str, result: Any) -> None:
    """Trip-wire before the model sees a customer tool's result: any other customer's id, or a line
    that is not theirs, anywhere in it → NotFound (the model gets an error, not the data)."""
    from ops import ownership

    text = json.dumps(result, default=str)
    for other in set(_CUST_IN_TEXT.findall(text)):
        if other.lower() != customer_id.lower():
            raise NotFound("agent.ownership_violation", "That is not something of yours.")
    lines = set(_SUB_IN_TEXT.findall(text))
    if lines:
        mine = {v["id"] for v in await ownership.own_lines(rt, customer_id)}
        if lines - mine:
            raise NotFound("agent.ownership_violation", "That is not something of yours.")

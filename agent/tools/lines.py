"""Operator tools: lines (subscriptions): top-up, renew, plan change, terminate, trace."""

from __future__ import annotations

from pydantic import Field

from agent.tools.base import LineRef, ToolSet, _line_plan
from core.context import RequestContext
from ops.runtime import Runtime


def add_line_tools(ts: ToolSet, rt: Runtime, ctx: RequestContext) -> None:
    """Add these tools to `ts`, in this order (part of operator_tools)."""
    from ops import subscriptions, trace

    add = ts.add

    # ------------------------------------------------------------------ lines
    @add(
        "line_status",
        "A line: state (active, blocked and why, terminated), plan, price, period end, balances left "
        "per allowance, pending plan change or price migration, running day passes.",
        LineRef,
        ops=("ops.subscriptions.status",),
    )
    async def _(a, key):
        return await subscriptions.status(rt, a.line_id)

    class TopUp(LineRef):
        vas_id: str = Field(max_length=64, description="The top-up to buy (catalog_top_ups).")

    async def plan_topup(a):
        return await _line_plan(rt, a.line_id, "topup", {"vas": a.vas_id})

    @add(
        "line_top_up",
        "Buy a top-up (VAS) for a line, charged to the customer's default card; a data top-up brings "
        "back a line blocked because its data ran out. Proposes; the person confirms.",
        TopUp,
        kind="act",
        plan=plan_topup,
        ops=("ops.subscriptions.purchase_vas", "ops.cockpit.line_action_plan"),
    )
    async def _(a, key):
        return await subscriptions.purchase_vas(rt, ctx, a.line_id, a.vas_id, idempotency_key=key)

    async def plan_renew(a):
        return await _line_plan(rt, a.line_id, "renew", {})

    @add(
        "line_renew",
        "Charge the next period now and start it (unblocks a blocked line). Proposes; the person confirms.",
        LineRef,
        kind="act",
        plan=plan_renew,
        ops=("ops.subscriptions.renew_now",),
    )
    async def _(a, key):
        return await subscriptions.renew_now(rt, ctx, a.line_id, idempotency_key=key)

    class PlanChange(LineRef):
        offering_id: str = Field(max_length=64, description="The plan to move to at the next renewal.")

    async def plan_plan_change(a):
        return await _line_plan(rt, a.line_id, "plan_change", {"offering": a.offering_id})

    @add(
        "line_change_plan",
        "Move a line to another plan at its next renewal (nothing charged now). Proposes; the person confirms.",
        PlanChange,
        kind="act",
        plan=plan_plan_change,
        ops=("ops.subscriptions.schedule_plan_change",),
    )
    async def _(a, key):
        return await subscriptions.schedule_plan_change(rt, ctx, a.line_id, a.offering_id)

    async def plan_cancel_change(a):
        return await _line_plan(rt, a.line_id, "cancel_plan_change", {})

    @add(
        "line_cancel_plan_change",
        "Cancel a line's pending plan change. Proposes; the person confirms.",
        LineRef,
        kind="act",
        plan=plan_cancel_change,
        ops=("ops.subscriptions.cancel_plan_change",),
    )
    async def _(a, key):
        return await subscriptions.cancel_plan_change(rt, ctx, a.line_id)

    class Terminate(LineRef):
        reason: str = Field("", max_length=200)

    async def plan_terminate(a):
        return await _line_plan(rt, a.line_id, "terminate", {"reason": a.reason})

    @add(
        "line_terminate",
        "End a line for good (number to quarantine, eSIM back to the pool, nothing refunded). Proposes; the person confirms.",
        Terminate,
        kind="act",
        min_role="supervisor",
        plan=plan_terminate,
        ops=("ops.subscriptions.terminate",),
    )
    async def _(a, key):
        return await subscriptions.terminate(rt, ctx, a.line_id, a.reason or None)

    @add(
        "line_trace",
        "The life of a line: the saga that sold it, then every renewal, block and top-up (from Temporal).",
        LineRef,
        ops=("ops.trace.subscription_trace",),
    )
    async def _(a, key):
        return await trace.subscription_trace(rt, a.line_id)

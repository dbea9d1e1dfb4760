"""Operator tools: the operations desk (today's figures, network fault rules, the business clock, cockpit operator accounts)."""

from __future__ import annotations

from pydantic import Field

from agent.tools.base import Args, ToolSet
from core.context import RequestContext
from ops.runtime import Runtime


def add_operations_tools(ts: ToolSet, rt: Runtime, ctx: RequestContext) -> None:
    """Add these tools to `ts`, in this order (part of operator_tools)."""
    from ops import clock, cockpit, provisioning, staff

    add = ts.add

    # ------------------------------------------------------------------ home, faults, clock, operators
    @add(
        "today",
        "Today's figures: orders completed and failed, revenue, orders stuck, lines active and blocked, tickets past SLA.",
        ops=("ops.cockpit.today_figures",),
    )
    async def _(a, key):
        return await cockpit.today_figures(rt)

    class Hours(Args):
        hours: int = Field(12, ge=1, le=72)

    @add(
        "orders_by_hour",
        "Orders completed and failed per hour over the last hours.",
        Hours,
        ops=("ops.cockpit.orders_by_hour",),
    )
    async def _(a, key):
        return await cockpit.orders_by_hour(rt, a.hours)

    @add(
        "fault_rules",
        "The network fault-injection rules (for rehearsals).",
        ops=("ops.provisioning.fault_rules",),
    )
    async def _(a, key):
        return await provisioning.fault_rules(rt)

    class Fault(Args):
        task_type: str = Field(max_length=40, description="e.g. HLR_PROVISION")
        fault_type: str = Field(max_length=40, description="e.g. fail_always, fail_first_attempt, stuck")
        probability: float = Field(1.0, ge=0, le=1)
        enabled: bool = True

    async def plan_fault(a):
        return f"{'Enable' if a.enabled else 'Disable'} fault {a.fault_type} on {a.task_type} with probability {a.probability:g}: real orders hit it."

    @add(
        "fault_set",
        "Switch a network fault on or off for rehearsals. Proposes; the person confirms.",
        Fault,
        kind="act",
        min_role="admin",
        plan=plan_fault,
        ops=("ops.provisioning.set_fault",),
    )
    async def _(a, key):
        rule, _created = await provisioning.set_fault(rt, ctx, **a.model_dump())
        return rule

    class FaultChange(Args):
        rule_id: str = Field(max_length=40)
        enabled: bool | None = None
        probability: float | None = Field(None, ge=0, le=1)

    async def plan_fault_change(a):
        return (
            f"Change fault rule {a.rule_id}: "
            + ", ".join(f"{k}={v}" for k, v in a.model_dump(exclude={"rule_id"}).items() if v is not None)
            + "."
        )

    @add(
        "fault_change",
        "Change a fault rule by id. Proposes; the person confirms.",
        FaultChange,
        kind="act",
        min_role="admin",
        plan=plan_fault_change,
        ops=("ops.provisioning.change_fault_rule",),
    )
    async def _(a, key):
        return await provisioning.change_fault_rule(
            rt, ctx, a.rule_id, enabled=a.enabled, probability=a.probability
        )

    @add("clock_now", "The business clock: now, frozen or not (test stacks can move it).", ops=())
    async def _(a, key):
        return clock.read(rt)

    class Advance(Args):
        duration: str = Field(pattern=r"^[0-9A-Za-z.]{2,20}$", description="e.g. 30d, 25h, 90m, PT1H")

    async def plan_advance(a):
        return f"Move the business clock of this test stack forward by {a.duration}: renewals, day passes and SLA timers due in that time happen now."

    @add(
        "clock_advance",
        "Test stacks only: move business time forward. Proposes; the person confirms.",
        Advance,
        kind="act",
        min_role="admin",
        plan=plan_advance,
        ops=("ops.clock.advance",),
    )
    async def _(a, key):
        return await clock.advance(rt, ctx, a.duration)

    async def plan_freeze(a):
        return "Freeze the business clock of this test stack now."

    async def plan_unfreeze(a):
        return "Let the business clock of this test stack run again."

    @add(
        "clock_freeze",
        "Test stacks only: stop business time. Proposes; the person confirms.",
        kind="act",
        min_role="admin",
        plan=plan_freeze,
        ops=("ops.clock.freeze",),
    )
    async def _(a, key):
        return await clock.freeze(rt, ctx)

    @add(
        "clock_unfreeze",
        "Test stacks only: let business time run again. Proposes; the person confirms.",
        kind="act",
        min_role="admin",
        plan=plan_unfreeze,
        ops=("ops.clock.unfreeze",),
    )
    async def _(a, key):
        return await clock.unfreeze(rt, ctx)

    @add(
        "operator_list",
        "Cockpit operator accounts (email, role, enabled).",
        min_role="admin",
        ops=("ops.staff.list_operators",),
    )
    async def _(a, key):
        return await staff.list_operators(rt)

    class OperatorRef(Args):
        operator: str = Field(max_length=254, description="The operator's id or email.")

    @add(
        "operator_get",
        "One cockpit operator account, by its id.",
        OperatorRef,
        min_role="admin",
        ops=("ops.staff.get_operator",),
    )
    async def _(a, key):
        return await staff.get_operator(rt, a.operator)

    async def plan_disable(a):
        return f"Disable the cockpit account {a.operator}: signed out now, cannot sign in until enabled."

    async def plan_enable(a):
        return f"Enable the cockpit account {a.operator} again."

    @add(
        "operator_disable",
        "Disable a cockpit account. Proposes; the person confirms.",
        OperatorRef,
        kind="act",
        min_role="admin",
        plan=plan_disable,
        ops=("ops.staff.disable_operator",),
    )
    async def _(a, key):
        return await staff.disable_operator(rt, ctx, a.operator)

    @add(
        "operator_enable",
        "Enable a disabled cockpit account. Proposes; the person confirms.",
        OperatorRef,
        kind="act",
        min_role="admin",
        plan=plan_enable,
        ops=("ops.staff.enable_operator",),
    )
    async def _(a, key):
        return await staff.enable_operator(rt, ctx, a.operator)

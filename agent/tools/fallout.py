"""Operator tools: stuck work (order fallout, provisioning tasks, tickets waiting on a decision)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.tools.base import LIST_MAX, Args, OrderRef, TaskRef, TicketRef, ToolSet, _plan_text, _sentences
from core.context import RequestContext
from core.errors import PolicyViolation
from ops.runtime import Runtime


def add_fallout_tools(ts: ToolSet, rt: Runtime, ctx: RequestContext) -> None:
    """Add these tools to `ts`, in this order (part of operator_tools)."""
    from ops import attention, cockpit, orders, som, workbench

    add = ts.add

    # ------------------------------------------------------------------ stuck work
    @add(
        "order_queue",
        "Orders still running, stuck ones first, with the stuck task or waiting ticket.",
        ops=("ops.cockpit.order_queue",),
    )
    async def _(a, key):
        return (await cockpit.order_queue(rt))[:LIST_MAX]

    @add(
        "stuck_work",
        "What is stuck in one order right now: the task or the ticket to retry or resolve.",
        OrderRef,
        ops=("ops.cockpit.stuck_work",),
    )
    async def _(a, key):
        return await cockpit.stuck_work(rt, a.order_id)

    @add(
        "stuck_orders",
        "Workflows flagged stuck (BssStuck) in Temporal, with their stuck tasks and tickets.",
        ops=("ops.som.stuck_orders_with_tasks", "ops.orders.stuck_orders"),
    )
    async def _(a, key):
        return await som.stuck_orders_with_tasks(rt)

    class Decide(OrderRef):
        action: Literal["retry", "resolve"]
        note: str = Field("", max_length=1000, description="What was done by hand (required to resolve).")

    async def plan_decide(a):
        row = await cockpit.stuck_work(rt, a.order_id)
        what = f"task {row.task_id} ({row.task_type})" if row.task_id else f"ticket {row.ticket_id}"
        if a.action == "retry":
            return f"Retry the stuck {what} of order {a.order_id} now ({row.reason})."
        return f"Mark the stuck {what} of order {a.order_id} as done by hand (note: {a.note or '—'}); the order carries on as if it had succeeded."

    @add(
        "stuck_order_decide",
        "Retry or resolve (done by hand, with a note) an order's stuck work. Proposes; the person confirms.",
        Decide,
        kind="act",
        min_role="supervisor",
        plan=plan_decide,
        ops=("ops.cockpit.decide_stuck",),
    )
    async def _(a, key):
        return await cockpit.decide_stuck(rt, ctx, a.order_id, a.action, a.note)

    class TaskResolve(TaskRef):
        note: str = Field(min_length=3, max_length=1000)

    async def plan_task(a, verb):
        task, _wf = await orders._task_workflow(rt, a.task_id)
        return (
            f"{verb} provisioning task {task.id} ({task.task_type}, now {task.state})"
            + (f"; note: {a.note}" if getattr(a, "note", None) else "")
            + "."
        )

    async def plan_task_resolve(a):
        return await plan_task(a, "Mark as done by hand")

    async def plan_task_retry(a):
        return await plan_task(a, "Retry")

    @add(
        "task_resolve",
        "Mark a stuck provisioning task as done by hand. Proposes; the person confirms.",
        TaskResolve,
        kind="act",
        min_role="supervisor",
        plan=plan_task_resolve,
        ops=("ops.orders.resolve_task",),
    )
    async def _(a, key):
        return await orders.resolve_task(rt, ctx, a.task_id, a.note)

    @add(
        "task_retry",
        "Retry a stuck provisioning task. Proposes; the person confirms.",
        TaskRef,
        kind="act",
        min_role="supervisor",
        plan=plan_task_retry,
        ops=("ops.orders.retry_task",),
    )
    async def _(a, key):
        return await orders.retry_task(rt, ctx, a.task_id)

    class WaitingList(Args):
        state: Literal["open", "resolved", "closed", "cancelled"] | None = "open"

    @add(
        "waiting_tickets",
        "Tickets a workflow waits on (a renewal that cannot be charged, a refund refused…).",
        WaitingList,
        ops=("ops.attention.waiting_tickets",),
    )
    async def _(a, key):
        return (await attention.waiting_tickets(rt, state=a.state))[:LIST_MAX]

    class TicketDecide(TicketRef):
        action: Literal["retry", "resolve"]
        note: str = Field("", max_length=1000)

    async def plan_ticket_decide(a):
        task = await workbench.stuck_task_of(rt, a.ticket_id)
        if task is None:  # a workflow waits on the ticket: the cockpit's own confirm step
            return _plan_text(await workbench.ticket_plan(rt, a.ticket_id, a.action, a.note))
        if a.action == "retry":
            return f"Retry the stuck provisioning task {task.id} ({task.task_type}) behind ticket {a.ticket_id} now."
        if not a.note.strip():
            raise PolicyViolation(
                "provisioning.resolve_stuck.requires_note", "Say what was done: a note is required."
            )
        return _sentences(
            f"Mark the stuck provisioning task {task.id} ({task.task_type}) behind ticket {a.ticket_id} as done by hand.",
            f"Note: {a.note.strip()}",
            "The order carries on as if the step had succeeded.",
        )

    @add(
        "ticket_decide",
        "Answer what a ticket stands for: retry the stuck task or waiting workflow step behind it, "
        "or mark it resolved by hand (with a note). Proposes; the person confirms.",
        TicketDecide,
        kind="act",
        min_role="supervisor",
        plan=plan_ticket_decide,
        ops=(
            "ops.workbench.answer_ticket",
            "ops.workbench.stuck_task_of",
            "ops.workbench.ticket_plan",
            "ops.cockpit.work_ticket",
            "ops.attention.decide",
            "ops.attention.get_ticket",
        ),
    )
    async def _(a, key):
        return await workbench.answer_ticket(rt, ctx, a.ticket_id, a.action, a.note)

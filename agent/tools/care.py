"""Operator tools: customer care (cases, tickets, the SLA queue, support agents)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.tools.base import (
    CASE,
    LIST_MAX,
    ORD,
    Args,
    CaseRef,
    CustomerRef,
    Page,
    TicketRef,
    ToolSet,
    _customer,
    _plan_text,
)
from core.context import RequestContext
from ops.runtime import Runtime


def add_care_tools(ts: ToolSet, rt: Runtime, ctx: RequestContext) -> None:
    """Add these tools to `ts`, in this order (part of operator_tools)."""
    from ops import cockpit, crm, workbench

    add = ts.add

    # ------------------------------------------------------------------ cases
    class CaseList(Page):
        customer_id: str | None = _customer("Only this customer's cases.")
        state: Literal["open", "in_progress", "pending_customer", "resolved", "closed"] | None = None

    @add("case_list", "Cases, by customer and/or state.", CaseList, ops=("ops.crm.list_cases",))
    async def _(a, key):
        return await crm.list_cases(
            rt, customer_id=a.customer_id, state=a.state, offset=a.offset, limit=a.limit
        )

    @add(
        "case_get",
        "One case with its notes and its tickets (state, SLA due, assignee).",
        CaseRef,
        ops=("ops.workbench.case_page", "ops.crm.case_detail"),
    )
    async def _(a, key):
        return await workbench.case_page(rt, a.case_id)

    class Queue(Args):
        view: Literal["all", "mine", "unassigned"] = Field(
            "all", description="mine: assigned to the person (as a support agent), or opened by them."
        )

    @add(
        "case_queue",
        "Open cases by the SLA due time of their most pressing ticket, overdue first.",
        Queue,
        ops=("ops.workbench.case_queue", "ops.workbench.agent_of"),
    )
    async def _(a, key):
        agent = await workbench.agent_of(rt, ctx.actor)
        return await workbench.case_queue(
            rt, view=a.view, agent_id=agent.id if agent else None, actor=ctx.actor, limit=LIST_MAX
        )

    class NewCase(CustomerRef):
        subject: str = Field(min_length=3, max_length=200)
        description: str = Field("", max_length=2000)
        priority: Literal["low", "normal", "medium", "high", "critical"] = "normal"
        category: Literal["account", "billing", "technical", "information", "complaint", "other"] = "other"

    @add(
        "case_open", "Open a support case for a customer.", NewCase, kind="write", ops=("ops.crm.open_case",)
    )
    async def _(a, key):
        detail, _replayed = await crm.open_case(rt, ctx, **a.model_dump(), idempotency_key=key)
        return detail

    class CaseNote(CaseRef):
        text: str = Field(min_length=1, max_length=2000)

    @add("case_note", "Add an internal note to a case.", CaseNote, kind="write", ops=("ops.crm.note_case",))
    async def _(a, key):
        return await crm.note_case(rt, ctx, a.case_id, a.text)

    class CaseUpdate(CaseRef):
        priority: Literal["low", "normal", "medium", "high", "critical"] | None = None
        subject: str | None = Field(None, max_length=200)

    @add(
        "case_update",
        "Change a case's priority or subject.",
        CaseUpdate,
        kind="write",
        ops=("ops.crm.update_case",),
    )
    async def _(a, key):
        return await crm.update_case(
            rt,
            ctx,
            a.case_id,
            **{k: v for k, v in a.model_dump(exclude={"case_id"}).items() if v is not None},
        )

    class CaseMove(CaseRef):
        trigger: Literal["take", "await_customer", "resume", "resolve"]
        note: str | None = Field(None, max_length=1000)

    @add(
        "case_transition",
        "Move a case on: take, await_customer, resume, resolve (closing or cancelling is case_close).",
        CaseMove,
        kind="write",
        ops=("ops.crm.transition_case",),
    )
    async def _(a, key):
        return await crm.transition_case(rt, ctx, a.case_id, a.trigger, a.note)

    class CaseClose(CaseRef):
        resolution_code: str = Field(
            min_length=2,
            max_length=40,
            description="e.g. resolved, no_fault_found, duplicate, customer_withdrew",
        )
        note: str | None = Field(None, max_length=1000)

    async def plan_case_close(a):
        return _plan_text(await workbench.case_close_plan(rt, a.case_id, a.resolution_code, a.note or ""))

    @add(
        "case_close",
        "Close a case with a resolution code. Proposes; the person confirms.",
        CaseClose,
        kind="act",
        plan=plan_case_close,
        ops=("ops.crm.close_case", "ops.workbench.case_close_plan"),
    )
    async def _(a, key):
        return await crm.close_case(rt, ctx, a.case_id, a.resolution_code, a.note)

    # ------------------------------------------------------------------ tickets
    class TicketList(Page):
        state: str | None = Field(
            "open",
            max_length=20,
            description="open (any open state), resolved, closed, cancelled; none = all",
        )
        customer_id: str | None = _customer("Only this customer's tickets.")
        case_id: str | None = Field(None, pattern=CASE)
        priority: Literal["low", "normal", "high", "urgent"] | None = None

    @add(
        "ticket_list",
        "Trouble tickets, newest first, by state, customer, case or priority.",
        TicketList,
        ops=("ops.crm.list_tickets",),
    )
    async def _(a, key):
        filters = {k: v for k, v in a.model_dump(exclude={"offset", "limit"}).items() if v is not None}
        rows, total = await crm.list_tickets(rt, offset=a.offset, limit=a.limit, **filters)
        return {"total": total, "items": rows}

    @add(
        "ticket_queue",
        "Open tickets by SLA due time, overdue first (all, mine, or unassigned).",
        Queue,
        ops=("ops.workbench.ticket_queue", "ops.workbench.agent_of"),
    )
    async def _(a, key):
        agent = await workbench.agent_of(rt, ctx.actor)
        return await workbench.ticket_queue(
            rt, view=a.view, agent_id=agent.id if agent else None, limit=LIST_MAX
        )

    @add(
        "ticket_get",
        "One ticket with its notes, state history, SLA due time, assignee and case.",
        TicketRef,
        ops=("ops.workbench.ticket_page",),
    )
    async def _(a, key):
        return await workbench.ticket_page(rt, a.ticket_id)

    class Agents(Args):
        role: Literal["csr", "supervisor"] | None = None

    @add(
        "agent_list",
        "Support agents, to pick one to assign a ticket to.",
        Agents,
        ops=("ops.crm.list_agents",),
    )
    async def _(a, key):
        return await crm.list_agents(rt, a.role)

    class NewTicket(Args):
        ticket_type: Literal[
            "information_request",
            "service_outage",
            "billing_dispute",
            "configuration",
            "provisioning_exception",
            "payment_exception",
        ]
        subject: str = Field(min_length=3, max_length=200)
        description: str = Field(min_length=1, max_length=2000)
        customer_id: str | None = _customer("The customer concerned.")
        case_id: str | None = Field(None, pattern=CASE)
        related_order_id: str | None = Field(None, pattern=ORD)
        priority: Literal["low", "normal", "high", "urgent"] = "normal"

    @add(
        "ticket_open",
        "Open a trouble ticket (its SLA timer starts).",
        NewTicket,
        kind="write",
        ops=("ops.crm.open_ticket",),
    )
    async def _(a, key):
        detail, _replayed = await crm.open_ticket(
            rt, ctx, idempotency_key=key, **{k: v for k, v in a.model_dump().items() if v is not None}
        )
        return detail

    class TicketChange(TicketRef):
        note: str | None = Field(None, max_length=2000, description="A note to add.")
        agent_id: str | None = Field(None, max_length=20, description="Assign to this agent (agent_list).")
        priority: Literal["low", "normal", "high", "urgent"] | None = None
        trigger: Literal["ack", "start", "wait", "resume", "reopen"] | None = Field(
            None, description="Move the ticket on (resolve, close and cancel are separate tools)."
        )

    @add(
        "ticket_update",
        "Add a note, assign, change priority or move a ticket on (ack, start, wait, resume, reopen).",
        TicketChange,
        kind="write",
        ops=("ops.crm.change_ticket",),
    )
    async def _(a, key):
        return await crm.change_ticket(
            rt,
            ctx,
            a.ticket_id,
            notes=[a.note] if a.note else [],
            agent_id=a.agent_id,
            priority=a.priority,
            trigger=a.trigger,
        )

    class TicketNote(TicketRef):
        text: str = Field(min_length=1, max_length=1000)

    @add(
        "ticket_note",
        "Add a note to a ticket (as the cockpit's workbench does).",
        TicketNote,
        kind="write",
        ops=("ops.cockpit.work_ticket",),
    )
    async def _(a, key):
        return await cockpit.work_ticket(rt, ctx, a.ticket_id, "note", a.text)

    class TicketEnd(TicketRef):
        action: Literal["resolve", "close", "cancel"]
        notes: str = Field(
            "", max_length=1000, description="Resolution notes (required to resolve) or the reason to cancel."
        )

    async def plan_ticket_end(a):
        if a.action == "close":  # the cockpit's own confirm step
            return _plan_text(await workbench.ticket_plan(rt, a.ticket_id, "close", a.notes))
        d = await crm.ticket_detail(rt, a.ticket_id)
        t = d.ticket
        tail = (
            " Its waiting workflow is told and carries on."
            if t.waiting_workflow_id and a.action == "resolve"
            else ""
        )
        return (
            f"{a.action.capitalize()} ticket {t.id} “{t.subject}” (now {t.state})"
            + (f": {a.notes}" if a.notes else "")
            + "."
            + tail
        )

    @add(
        "ticket_finish",
        "Resolve (with notes), close or cancel a ticket. Proposes; the person confirms.",
        TicketEnd,
        kind="act",
        plan=plan_ticket_end,
        ops=(
            "ops.crm.change_ticket",
            "ops.cockpit.work_ticket",
            "ops.crm.ticket_detail",
            "ops.workbench.ticket_plan",
        ),
    )
    async def _(a, key):
        if a.action == "cancel":
            return await crm.change_ticket(rt, ctx, a.ticket_id, trigger="cancel", reason=a.notes or None)
        return await cockpit.work_ticket(rt, ctx, a.ticket_id, a.action, a.notes)

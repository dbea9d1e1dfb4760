"""Operator tools: number porting requests."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from agent.tools.base import MSISDN, Args, Page, PortRef, ToolSet, _customer, _line, _plan_text
from core.context import RequestContext
from ops.runtime import Runtime


def add_porting_tools(ts: ToolSet, rt: Runtime, ctx: RequestContext) -> None:
    """Add these tools to `ts`, in this order (part of operator_tools)."""
    from ops import porting, workbench

    add = ts.add

    # ------------------------------------------------------------------ porting
    class PortList(Page):
        state: str | None = Field(None, max_length=20)
        direction: Literal["port_in", "port_out"] | None = None
        customer_id: str | None = _customer("Only this customer's requests.")
        msisdn: str | None = Field(None, pattern=MSISDN)

    @add(
        "port_list",
        "Port requests (in and out), by state, direction, customer or number.",
        PortList,
        ops=("ops.porting.listing",),
    )
    async def _(a, key):
        total, rows = await porting.listing(
            rt,
            state=a.state,
            direction=a.direction,
            customer_id=a.customer_id,
            msisdn=a.msisdn,
            offset=a.offset,
            limit=a.limit,
        )
        return {"total": total, "items": rows}

    @add("port_get", "One port request.", PortRef, ops=("ops.porting.get",))
    async def _(a, key):
        return await porting.get(rt, a.port_id)

    class NewPort(Args):
        direction: Literal["port_in", "port_out"]
        msisdn: str = Field(pattern=MSISDN)
        requested_port_date: date
        donor_carrier: str | None = Field(None, max_length=60)
        recipient_carrier: str | None = Field(None, max_length=60)
        customer_id: str | None = _customer("Port-in: the customer who gets the line.")
        offering_id: str | None = Field(None, max_length=64, description="Port-in: the plan of the new line.")
        line_id: str | None = _line("Port-out: the line leaving.")

    async def plan_port(a):
        if a.direction == "port_in":
            return f"Open a port-in of {a.msisdn} from {a.donor_carrier or 'the donor'} on {a.requested_port_date} for {a.customer_id} on {a.offering_id}; once approved and completed it becomes a new line (charged like an order)."
        return f"Open a port-out of {a.msisdn} ({a.line_id}) to {a.recipient_carrier or 'the recipient'} on {a.requested_port_date}; when it completes, the line ends."

    @add(
        "port_create",
        "Open a port-in or port-out request. Proposes; the person confirms.",
        NewPort,
        kind="act",
        plan=plan_port,
        ops=("ops.porting.create",),
    )
    async def _(a, key):
        fields = a.model_dump(exclude={"line_id"})
        return await porting.create(rt, ctx, **fields, subscription_id=a.line_id, idempotency_key=key)

    async def plan_port_approve(a):
        return _plan_text(await workbench.port_plan(rt, a.port_id, "approve"))

    class Reject(PortRef):
        reason: str = Field(min_length=3, max_length=200)

    async def plan_port_reject(a):
        return _plan_text(await workbench.port_plan(rt, a.port_id, "reject", a.reason))

    @add(
        "port_approve",
        "Approve a port request. Proposes; the person confirms.",
        PortRef,
        kind="act",
        min_role="supervisor",
        plan=plan_port_approve,
        ops=("ops.porting.approve", "ops.workbench.port_plan"),
    )
    async def _(a, key):
        return await porting.approve(rt, ctx, a.port_id)

    @add(
        "port_reject",
        "Reject a port request with a reason. Proposes; the person confirms.",
        Reject,
        kind="act",
        min_role="supervisor",
        plan=plan_port_reject,
        ops=("ops.porting.reject",),
    )
    async def _(a, key):
        return await porting.reject(rt, ctx, a.port_id, a.reason)

"""Operator tools: inventory (eSIM profiles, MSISDNs, holds, ranges, devices)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.tools.base import ICCID, MSISDN, Args, Page, ToolSet, _customer
from core.context import RequestContext
from ops.runtime import Runtime


def add_inventory_tools(ts: ToolSet, rt: Runtime, ctx: RequestContext) -> None:
    """Add these tools to `ts`, in this order (part of operator_tools)."""
    from ops import inventory, orders, som

    add = ts.add

    # ------------------------------------------------------------------ inventory
    class Resources(Page):
        type: Literal["msisdn", "esim"] | None = None
        status: str | None = Field(
            None, max_length=20, description="available, held, reserved, assigned, quarantine…"
        )
        prefix: str | None = Field(None, max_length=19)

    @add(
        "inventory_list",
        "Numbers (MSISDN) and eSIM profiles in the pools, by status or prefix.",
        Resources,
        ops=("ops.inventory.list_resources",),
    )
    async def _(a, key):
        page = await inventory.list_resources(
            rt,
            types=(a.type,) if a.type else ("msisdn", "esim"),
            status=a.status,
            prefix=a.prefix,
            offset=a.offset,
            limit=a.limit,
        )
        return {"total": page.total, "items": page.items}

    class ResourceRef(Args):
        resource_id: str = Field(max_length=20, description="An MSISDN or an ICCID.")

    @add(
        "inventory_get",
        "One number or eSIM profile by MSISDN or ICCID.",
        ResourceRef,
        ops=("ops.inventory.get_resource",),
    )
    async def _(a, key):
        return await inventory.get_resource(rt, a.resource_id)

    class IccidRef(Args):
        iccid: str = Field(pattern=ICCID)

    @add("esim_get", "One eSIM profile from the inventory.", IccidRef, ops=("ops.inventory.get_esim",))
    async def _(a, key):
        return await inventory.get_esim(rt, a.iccid)

    @add(
        "esim_status",
        "An eSIM's live state (prepared, downloaded, installed) and its activation code.",
        IccidRef,
        ops=("ops.som.esim_status",),
    )
    async def _(a, key):
        return await som.esim_status(rt, a.iccid)

    @add(
        "inventory_counts",
        "How many numbers and eSIM profiles are in each state.",
        ops=("ops.inventory.pool_counts",),
    )
    async def _(a, key):
        return await inventory.pool_counts(rt)

    class MsisdnRef(Args):
        msisdn: str = Field(pattern=MSISDN)

    @add(
        "number_hold_get",
        "A number held for a signup: by whom, until when.",
        MsisdnRef,
        ops=("ops.inventory.get_hold",),
    )
    async def _(a, key):
        return await inventory.get_hold(rt, a.msisdn)

    class Hold(Args):
        msisdn: str | None = Field(
            None, pattern=MSISDN, description="A number to hold; none = any available."
        )
        customer_id: str | None = _customer("The customer it is held for, if known.")

    async def plan_hold(a):
        return (
            f"Hold {a.msisdn or 'an available number'} for 24 hours for a signup"
            + (f" of {a.customer_id}" if a.customer_id else "")
            + "; nobody else can take it meanwhile."
        )

    @add(
        "number_hold",
        "Hold a number 24 h for a signup. Proposes; the person confirms.",
        Hold,
        kind="act",
        plan=plan_hold,
        ops=("ops.inventory.hold_number",),
    )
    async def _(a, key):
        return await inventory.hold_number(rt, ctx, msisdn=a.msisdn, customer_id=a.customer_id)

    async def plan_cancel_hold(a):
        h = await inventory.get_hold(rt, a.msisdn)
        return f"Give back {h.msisdn} (held by {h.hold_ref} until {h.expires_at}) to the pool now."

    @add(
        "number_hold_cancel",
        "Give a signup's held number back now. Proposes; the person confirms.",
        MsisdnRef,
        kind="act",
        plan=plan_cancel_hold,
        ops=("ops.inventory.cancel_hold",),
    )
    async def _(a, key):
        return await inventory.cancel_hold(rt, ctx, a.msisdn)

    async def plan_rearm(a):
        p = await inventory.get_esim(rt, a.iccid)
        return f"Re-arm eSIM {p.iccid} of line {p.assigned_to_subscription_id} ({p.assigned_msisdn}) for a new device: a new activation code; the old one stops working."

    @add(
        "esim_rearm",
        "Issue a new activation code for a line's eSIM (new device). Proposes; the person confirms.",
        IccidRef,
        kind="act",
        plan=plan_rearm,
        ops=("ops.inventory.rearm_esim",),
    )
    async def _(a, key):
        return await inventory.rearm_esim(rt, ctx, a.iccid)

    class Range(Args):
        prefix: str = Field(pattern=r"^\d{2,12}$")
        count: int = Field(ge=1, le=10_000)

    async def plan_range(a):
        return (
            f"Add {a.count} numbers starting {a.prefix} to the pool as available (existing ones are skipped)."
        )

    @add(
        "inventory_add_numbers",
        "Add a range of numbers to the pool. Proposes; the person confirms.",
        Range,
        kind="act",
        min_role="admin",
        plan=plan_range,
        ops=("ops.inventory.add_msisdn_range",),
    )
    async def _(a, key):
        return {"added": await inventory.add_msisdn_range(rt, ctx, prefix=a.prefix, count=a.count)}

    async def plan_quarantine(a):
        return "Put every quarantined number whose 90 days are over back on sale."

    @add(
        "inventory_release_quarantine",
        "Release quarantined numbers whose time is up. Proposes; the person confirms.",
        kind="act",
        min_role="admin",
        plan=plan_quarantine,
        ops=("ops.inventory.release_expired_quarantine",),
    )
    async def _(a, key):
        return {"released": await inventory.release_expired_quarantine(rt, ctx)}

    class Device(IccidRef):
        event: Literal["downloaded", "installed"]

    async def plan_device(a):
        return f"Report to the eSIM flow of {a.iccid} that the device has {a.event} the profile (as the SM-DP+ would)."

    @add(
        "esim_device_event",
        "Play the device for a test: report an eSIM downloaded or installed. Proposes; the person confirms.",
        Device,
        kind="act",
        min_role="admin",
        plan=plan_device,
        ops=("ops.orders.device_event",),
    )
    async def _(a, key):
        await orders.device_event(rt, ctx, a.iccid, a.event)
        return {"sent": a.event, "iccid": a.iccid}

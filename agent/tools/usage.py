"""Operator tools: rated usage and balance buckets."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.tools.base import MSISDN, Args, Page, ToolSet, _customer, _line
from core.context import RequestContext
from ops.runtime import Runtime


def add_usage_tools(ts: ToolSet, rt: Runtime, ctx: RequestContext) -> None:
    """Add these tools to `ts`, in this order (part of operator_tools)."""
    from ops import usage

    add = ts.add

    # ------------------------------------------------------------------ usage and balances
    class UsageList(Page):
        line_id: str | None = _line("Only this line's usage.")
        msisdn: str | None = Field(None, pattern=MSISDN)
        usage_type: Literal["data", "voice", "sms", "data_roaming"] | None = None

    @add(
        "usage_list",
        "Rated usage events (data, voice, sms), newest first, by line or number.",
        UsageList,
        ops=("ops.usage.list_usage",),
    )
    async def _(a, key):
        total, rows = await usage.list_usage(
            rt,
            msisdn=a.msisdn,
            subscription_id=a.line_id,
            usage_type=a.usage_type,
            offset=a.offset,
            limit=a.limit,
        )
        return {"total": total, "items": rows}

    class UsageRef(Args):
        event_id: str = Field(max_length=40, description="e.g. UE-000123")

    @add("usage_get", "One rated usage event.", UsageRef, ops=("ops.usage.get_usage",))
    async def _(a, key):
        return await usage.get_usage(rt, a.event_id)

    class Buckets(Page):
        line_id: str | None = _line("Only this line's balances.")
        customer_id: str | None = _customer("Only this customer's balances.")
        msisdn: str | None = Field(None, pattern=MSISDN)

    @add(
        "balance_list",
        "Balance buckets (allowance left per line and type).",
        Buckets,
        ops=("ops.usage.list_buckets",),
    )
    async def _(a, key):
        total, rows = await usage.list_buckets(
            rt,
            subscription_id=a.line_id,
            customer_id=a.customer_id,
            msisdn=a.msisdn,
            offset=a.offset,
            limit=a.limit,
        )
        return {"total": total, "items": rows}

    class BucketRef(Args):
        bucket_id: str = Field(max_length=60)

    @add("balance_get", "One balance bucket.", BucketRef, ops=("ops.usage.get_bucket",))
    async def _(a, key):
        return await usage.get_bucket(rt, a.bucket_id)

    class Consumption(Args):
        line_id: str | None = _line()
        msisdn: str | None = Field(None, pattern=MSISDN)

    @add(
        "usage_consumption",
        "A line's balances and what was used since its period started.",
        Consumption,
        ops=("ops.usage.usage_consumption",),
    )
    async def _(a, key):
        return await usage.usage_consumption(rt, subscription_id=a.line_id, msisdn=a.msisdn)

"""Helpers for the subscription action tests (API and CLI): an active line with its workflow
running, real usage that exhausts it, and the rows a refused request must leave alone."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.api.order_flow import SUBSCRIPTIONS, customer, order_until, place, scalar
from tests.usage_harness import usage_body

USAGE = "/tmf-api/usageManagement/v4/usage"


async def live_line(saga: Any, api: httpx.AsyncClient, offering_id: str = "PLAN_S") -> tuple[str, str]:
    """Order a plan through the API and wait until its line's workflow answers. -> (SUB id, CUST id)"""
    cust = await customer(saga.runtime)
    created = await place(api, cust, offering_id=offering_id)
    order = await order_until(api, created["id"], {"completed", "failed"})
    assert order["state"] == "completed", order.get("note")
    sub_id = order["productOrderItem"][0]["product"]["id"]
    await workflow_ready(saga, sub_id)
    return sub_id, cust


async def workflow_ready(saga: Any, sub_id: str) -> Any:
    """The status query answers once the workflow has read its line (updates need that too)."""
    from workflows.subscription import SubscriptionWorkflow, subscription_workflow_id

    handle = saga.client.get_workflow_handle_for(SubscriptionWorkflow.run, subscription_workflow_id(sub_id))
    for _ in range(100):
        try:
            return await handle.query(SubscriptionWorkflow.status)
        except Exception:  # still starting
            await asyncio.sleep(0.05)
    raise AssertionError(f"the workflow of {sub_id} never answered")


async def workflow_status(saga: Any, sub_id: str) -> str:
    from workflows.subscription import subscription_workflow_id

    described = await saga.client.get_workflow_handle(subscription_workflow_id(sub_id)).describe()
    return described.status.name


async def line(api: httpx.AsyncClient, sub_id: str) -> dict[str, Any]:
    r = await api.get(f"{SUBSCRIPTIONS}/{sub_id}")
    assert r.status_code == 200, r.text
    return r.json()


def balance(view: dict[str, Any], allowance_type: str = "data") -> dict[str, Any]:
    return next(b for b in view["balances"] if b["allowanceType"] == allowance_type)


async def burn_data(api: httpx.AsyncClient, msisdn: str, megabytes: int) -> httpx.Response:
    """Real usage through TMF635: rating decrements, blocks at zero and signals the workflow."""
    return await api.post(USAGE, json=usage_body(msisdn, "data", megabytes, "MB"))


async def payments(runtime: Any, customer_id: str, purpose: str) -> int:
    return await scalar(
        runtime,
        "SELECT count(*) FROM payment.payment WHERE customer_id = :c AND purpose = :p",
        c=customer_id,
        p=purpose,
    )


async def footprint(runtime: Any, sub_id: str) -> dict[str, Any]:
    """What a refused request must leave as it was: the line, its balances, money, audit."""
    row = await scalar(
        runtime,
        "SELECT concat_ws('|', state, state_reason, offering_id, pending_offering_id, current_period_end, "
        "updated_at) FROM subscription.subscription WHERE id = :s",
        s=sub_id,
    )
    buckets = await scalar(
        runtime,
        "SELECT string_agg(concat_ws(':', allowance_type, total, consumed), ',' ORDER BY allowance_type) "
        "FROM subscription.bundle_balance WHERE subscription_id = :s",
        s=sub_id,
    )
    counts = {
        table: await scalar(runtime, f"SELECT count(*) FROM {table}")
        for table in (
            "payment.payment",
            "subscription.vas_purchase",
            "subscription.subscription_renewal",
            "subscription.price_migration",
            "audit.domain_event",
        )
    }
    return {"line": row, "buckets": buckets, **counts}

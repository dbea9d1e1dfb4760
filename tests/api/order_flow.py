"""Helpers for the order API tests: customers, TMF622 bodies, polling, error and snapshot checks."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from core.context import RequestContext
from core.db import transaction

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
CANCEL = "/tmf-api/productOrderingManagement/v4/cancelProductOrder"
SERVICE_ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"
SERVICES = "/tmf-api/serviceInventory/v4/service"
PRODUCTS = "/tmf-api/productInventory/v4/product"
TASKS = "/bss-api/v1/provisioning/task"
SUBSCRIPTIONS = "/bss-api/v1/subscription"
STUCK = "/bss-api/v1/order/stuck"
CTX = RequestContext(actor="api-test", channel="scenario", service_identity="test")


async def customer(runtime: Any, *, card: str | None = "4242424242424242") -> str:
    from domains.crm.services import create_customer
    from domains.payment.services import add_payment_method

    async with transaction(runtime.db) as s:
        cust = await create_customer(
            s,
            CTX,
            given_name="Grace",
            family_name="Hopper",
            email=f"grace-{uuid.uuid4().hex[:8]}@example.com",
        )
        if card:
            await add_payment_method(
                s, CTX, customer_id=cust.id, card_number=card, exp_month=12, exp_year=2035
            )
        return cust.id


def order_body(customer_id: str, offering_id: str = "PLAN_S", **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"id": "1", "action": "add", "productOffering": {"id": offering_id}}
    item.update(extra.pop("item", {}))
    return {
        "@type": "ProductOrder",
        "productOrderItem": [item],
        "relatedParty": [{"id": customer_id, "role": "customer", "@referredType": "Customer"}],
        **extra,
    }


async def until(
    fetch: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float = 20.0, every: float = 0.2
) -> Any:
    """Poll `fetch` until `done(result)`; the last result either way (the caller asserts)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await fetch()
        if done(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(every)


async def order_until(api: httpx.AsyncClient, order_id: str, states: set[str], timeout: float = 20.0) -> dict:
    async def fetch() -> dict:
        r = await api.get(f"{ORDERS}/{order_id}")
        assert r.status_code == 200, r.text
        return r.json()

    body = await until(fetch, lambda b: b["state"] in states, timeout=timeout)
    assert body["state"] in states, body
    return body


async def place(api: httpx.AsyncClient, customer_id: str, **extra: Any) -> dict:
    r = await api.post(ORDERS, json=order_body(customer_id, **extra))
    assert r.status_code == 201, r.text
    return r.json()


def error(r: httpx.Response, status: int, reason: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["@type"] == "Error" and body["status"] == str(status), body
    assert {"code", "reason", "message", "referenceError"} <= set(body)
    if reason:
        assert body["reason"] == reason, body
    return body


async def scalar(runtime: Any, sql: str, **params: Any) -> Any:
    async with runtime.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def snapshot(runtime: Any) -> dict[str, int]:
    """Row counts a refused request must leave as they were."""
    tables = (
        "ordering.product_order",
        "ordering.product_order_item",
        "ordering.order_state_history",
        "service_ordering.service_order",
        "service_ordering.provisioning_task",
        "subscription.subscription",
        "payment.payment",
        "audit.domain_event",
    )
    return {t: await scalar(runtime, f"SELECT count(*) FROM {t}") for t in tables}


def chars(resource: dict[str, Any], key: str = "serviceCharacteristic") -> dict[str, Any]:
    return {c["name"]: c["value"] for c in resource.get(key, [])}

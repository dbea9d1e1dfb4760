"""Active lines and usage records for the usage tests (domain, API, CLI)."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from core.context import RequestContext
from core.db import transaction
from domains.usage.rules import RawUsage

WORKER = RequestContext(actor="temporal-worker", channel="workflow", service_identity="worker")
PRICES = {"PLAN_S": "10.00", "PLAN_M": "25.00", "PLAN_L": "45.00"}
_orders = itertools.count(1)


async def active_line(runtime, offering_id: str = "PLAN_S") -> tuple[str, str]:
    """Sell a line as the order saga would: reserve a number and an eSIM, activate. -> (SUB id, MSISDN)"""
    from domains.inventory.services import reserve_esim, reserve_msisdn
    from domains.subscription.services import create_subscription

    order_id = f"ORD-{900000 + next(_orders):06d}"
    async with transaction(runtime.db) as s:
        msisdn = await reserve_msisdn(s, WORKER, reserved_for=order_id)
        profile = await reserve_esim(s, WORKER, reserved_for=order_id)
        sub = await create_subscription(
            s,
            WORKER,
            order_id=order_id,
            customer_id="CUST-0a0b0c0d",
            offering_id=offering_id,
            msisdn=msisdn,
            iccid=profile.iccid,
            service_order_id="SO-000001",
            price_id=f"PRICE_{offering_id}",
            price_amount=Decimal(PRICES[offering_id]),
            price_currency="SGD",
        )
        return sub.id, msisdn


def raw(
    msisdn: str,
    usage_type: str = "data",
    quantity: Any = 1,
    unit: Any = "MB",
    *,
    roaming: Any = False,
    id: str | None = None,
    index: int = 0,
) -> RawUsage:
    return RawUsage(index, id, usage_type, msisdn, quantity, unit, roaming, None)


def usage_body(
    msisdn: str,
    usage_type: str = "data",
    quantity: Any = 1,
    unit: Any = "MB",
    *,
    roaming: Any = False,
    **extra: Any,
) -> dict[str, Any]:
    """A TMF635 Usage as a switch would post it."""
    chars = [
        {"name": "msisdn", "value": msisdn},
        {"name": "quantity", "value": quantity},
        {"name": "unit", "value": unit},
        {"name": "roaming", "value": roaming},
    ]
    return {"usageType": usage_type, "usageCharacteristic": chars, **extra}


async def balances(runtime, subscription_id: str) -> dict[str, tuple[int, int]]:
    """allowance type -> (total, consumed)"""
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT allowance_type, total, consumed FROM subscription.bundle_balance WHERE subscription_id = :s"
            ),
            {"s": subscription_id},
        )
        return {kind: (total, consumed) for kind, total, consumed in rows}


async def fine_balances(runtime, subscription_id: str) -> dict[str, tuple[int, int, int]]:
    """allowance type -> (total, consumed, fraction in fine units)"""
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT b.allowance_type, b.total, b.consumed, coalesce(f.fine, 0) "
                "FROM subscription.bundle_balance b LEFT JOIN usage.balance_fraction f ON f.balance_id = b.id "
                "WHERE b.subscription_id = :s"
            ),
            {"s": subscription_id},
        )
        return {kind: (total, consumed, fine) for kind, total, consumed, fine in rows}


async def line_state(runtime, subscription_id: str) -> tuple[str, str | None]:
    async with runtime.engine.connect() as conn:
        row = await conn.execute(
            text("SELECT state, state_reason FROM subscription.subscription WHERE id = :s"),
            {"s": subscription_id},
        )
        state, reason = row.one()
        return state, reason


async def snapshot(runtime) -> dict[str, Any]:
    """What a refused request must leave untouched: events, balances, lines, history, audit."""
    async with runtime.engine.connect() as conn:
        out: dict[str, Any] = {}
        for name, query in {
            "events": "SELECT count(*) FROM usage.usage_event",
            "balances": "SELECT coalesce(sum(consumed), 0) FROM subscription.bundle_balance",
            "fractions": "SELECT coalesce(sum(fine), 0) FROM usage.balance_fraction",
            "states": "SELECT string_agg(id || ':' || state, ',' ORDER BY id) FROM subscription.subscription",
            "history": "SELECT count(*) FROM subscription.subscription_state_history",
            "audit": "SELECT count(*) FROM audit.domain_event",
        }.items():
            out[name] = (await conn.execute(text(query))).scalar_one()
        return out

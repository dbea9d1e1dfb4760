"""What a customer may see and touch through a self-service door: their own things only.

The self-serve portal takes the customer id from the session, never from the URL or a form, and
asks here. Another customer's line, order, case or payment method is answered exactly like one that
does not exist (404 `subscription.not_found`, `order.not_found`, `case.not_found`,
`payment_method.not_found`), so a guessed id tells nothing. Checked here, in the operations layer,
so every customer-facing door gets the same rule, not only one route.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.errors import NotFound
from ops.runtime import Runtime

STATE_ORDER = {"active": 0, "blocked": 1, "pending": 2, "terminated": 3}


def _not_found(sub_id: str) -> NotFound:
    return NotFound("subscription.not_found", f"No subscription {sub_id}.", subscription_id=sub_id)


async def require_own_line(session: AsyncSession, customer_id: str, sub_id: str) -> None:
    """NotFound unless `sub_id` is a line of `customer_id`."""
    from domains.subscription.models import Subscription

    if not customer_id or not sub_id or len(sub_id) > 20:
        raise _not_found(sub_id[:20])
    owner = (await session.exec(select(Subscription.customer_id).where(Subscription.id == sub_id))).first()
    if owner is None or owner != customer_id:
        raise _not_found(sub_id)


async def check_line(rt: Runtime, customer_id: str, sub_id: str) -> None:
    async with rt.db() as s:
        await require_own_line(s, customer_id, sub_id)


async def own_line(rt: Runtime, customer_id: str, sub_id: str) -> dict[str, Any]:
    """The line's status view (balances, pending change, day passes) if it is the customer's."""
    from domains.subscription import lifecycle

    async with rt.db() as s:
        await require_own_line(s, customer_id, sub_id)
        return await lifecycle.status_view(s, sub_id)


async def own_lines(rt: Runtime, customer_id: str) -> list[dict[str, Any]]:
    """Every line of the customer, live ones first, each as its status view."""
    from domains.subscription import lifecycle
    from domains.subscription.models import Subscription

    async with rt.db() as s:
        ids = list(
            await s.exec(
                select(Subscription.id)
                .where(Subscription.customer_id == customer_id)
                .order_by(col(Subscription.created_at), col(Subscription.id))
            )
        )
        views = [await lifecycle.status_view(s, sub_id) for sub_id in ids]
    return sorted(views, key=lambda v: STATE_ORDER.get(v["state"], 9))


async def own_line_usage(
    rt: Runtime, customer_id: str, sub_id: str, *, limit: int = 20, offset: int = 0
) -> list[Any]:
    """The line's latest rated usage events, newest first."""
    from domains.usage.models import UsageEvent

    async with rt.db() as s:
        await require_own_line(s, customer_id, sub_id)
        rows = await s.exec(
            select(UsageEvent)
            .where(UsageEvent.subscription_id == sub_id)
            .order_by(col(UsageEvent.seq).desc())
            .offset(offset)
            .limit(limit)
        )
        return list(rows)


# ---- orders -------------------------------------------------------------------------------------


@dataclass
class OrderView:
    order: Any
    items: list[Any] = field(default_factory=list)
    history: list[Any] = field(default_factory=list)


async def _own_row(
    session: AsyncSession, model: Any, customer_id: str, row_id: str, max_len: int, kind: str, noun: str
) -> Any:
    """The `model` row `row_id` if it is the customer's; else NotFound `<kind>.not_found` ("No <noun>
    <id>.", detail `<kind>_id`), the same as a row that does not exist. Ids longer than `max_len` are
    not looked up."""
    row = None
    if customer_id and row_id and len(row_id) <= max_len:
        row = (await session.exec(select(model).where(model.id == row_id))).first()
    if row is None or row.customer_id != customer_id:
        raise NotFound(
            f"{kind}.not_found", f"No {noun} {row_id[:max_len]}.", **{f"{kind}_id": row_id[:max_len]}
        )
    return row


async def require_own_order(session: AsyncSession, customer_id: str, order_id: str) -> Any:
    """The order if it is the customer's; else the same 404 as an order that does not exist."""
    from domains.ordering.models import ProductOrder

    return await _own_row(session, ProductOrder, customer_id, order_id, 20, "order", "product order")


async def own_order(rt: Runtime, customer_id: str, order_id: str) -> OrderView:
    """The order with its items and its state history, if it is the customer's."""
    from domains.ordering import services as ordering

    async with rt.db() as s:
        order = await require_own_order(s, customer_id, order_id)
        return OrderView(
            order, await ordering.order_items(s, order.id), await ordering.order_history(s, order.id)
        )


async def own_orders(rt: Runtime, customer_id: str, *, limit: int = 100) -> list[Any]:
    """The customer's orders, newest first."""
    from domains.ordering import services as ordering

    if not customer_id:
        return []
    async with rt.db() as s:
        rows, _ = await ordering.list_orders(s, customer_id=customer_id, limit=limit)
    return rows


# ---- cases --------------------------------------------------------------------------------------


async def require_own_case(session: AsyncSession, customer_id: str, case_id: str) -> Any:
    from domains.crm.models import SupportCase

    return await _own_row(session, SupportCase, customer_id, case_id, 16, "case", "case")


async def check_case(rt: Runtime, customer_id: str, case_id: str) -> None:
    async with rt.db() as s:
        await require_own_case(s, customer_id, case_id)


async def own_case(rt: Runtime, customer_id: str, case_id: str) -> Any:
    """The case with its notes and tickets (ops.crm.CaseDetail), if it is the customer's."""
    from ops.crm import case_detail

    await check_case(rt, customer_id, case_id)
    return await case_detail(rt, case_id)


async def own_cases(rt: Runtime, customer_id: str, *, limit: int = 100) -> list[Any]:
    """The customer's cases, newest first."""
    from ops.crm import list_cases

    if not customer_id:
        return []
    rows, _ = await list_cases(rt, customer_id=customer_id, limit=limit)
    return rows


# ---- payment methods ----------------------------------------------------------------------------


async def require_own_payment_method(session: AsyncSession, customer_id: str, pm_id: str) -> Any:
    from domains.payment.models import PaymentMethod

    method = None
    if customer_id and pm_id and len(pm_id) <= 16:
        method = await session.get(PaymentMethod, pm_id)
    if method is None or method.customer_id != customer_id:
        raise NotFound(
            "payment_method.not_found", f"No payment method {pm_id[:16]}.", payment_method_id=pm_id[:16]
        )
    return method


async def check_payment_method(rt: Runtime, customer_id: str, pm_id: str) -> None:
    async with rt.db() as s:
        await require_own_payment_method(s, customer_id, pm_id)


async def own_payment_method(rt: Runtime, customer_id: str, pm_id: str) -> Any:
    async with rt.db() as s:
        return await require_own_payment_method(s, customer_id, pm_id)


async def own_payment_methods(rt: Runtime, customer_id: str) -> list[Any]:
    """The customer's cards on file (active ones), the default first."""
    from ops.payment import list_payment_methods

    if not customer_id:
        return []
    return await list_payment_methods(rt, customer_id)


# ---- messages -----------------------------------------------------------------------------------


# One-time codes are not shown again on a page: whoever holds a session could read a step-up code.
SECRET_TEMPLATES = ("login_code", "signup_code", "step_up_code")


async def own_messages(rt: Runtime, customer_id: str, *, limit: int = 50) -> list[Any]:
    """The messages sent (or queued) to the customer, newest first, one-time codes left out."""
    from domains.notify.models import OutboxMessage

    if not customer_id:
        return []
    async with rt.db() as s:
        rows = await s.exec(
            select(OutboxMessage)
            .where(
                OutboxMessage.customer_id == customer_id,
                col(OutboxMessage.template).notin_(SECRET_TEMPLATES),
            )
            .order_by(col(OutboxMessage.created_at).desc(), col(OutboxMessage.id).desc())
            .limit(limit)
        )
        return list(rows)

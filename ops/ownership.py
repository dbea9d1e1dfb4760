"""What a customer may see and touch through a self-service door: their own things only.

The self-serve portal takes the customer id from the session, never from the URL or a form, and
asks here. Another customer's line is answered exactly like a line that does not exist (404
`subscription.not_found`), so a guessed id tells nothing. Checked here, in the operations layer,
so every customer-facing door gets the same rule, not only one route.
"""

from __future__ import annotations

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


async def own_line_usage(rt: Runtime, customer_id: str, sub_id: str, *, limit: int = 20) -> list[Any]:
    """The line's latest rated usage events, newest first."""
    from domains.usage.models import UsageEvent

    async with rt.db() as s:
        await require_own_line(s, customer_id, sub_id)
        rows = await s.exec(
            select(UsageEvent)
            .where(UsageEvent.subscription_id == sub_id)
            .order_by(col(UsageEvent.seq).desc())
            .limit(limit)
        )
        return list(rows)

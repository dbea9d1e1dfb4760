"""Subscription services: activation of a line from a completed order, and its read views."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.db import insert_unless_exists
from core.errors import NotFound, PolicyViolation
from core.ids import id_sql
from domains.audit.services import record
from domains.subscription import rules
from domains.subscription.models import BundleBalance, Subscription, SubscriptionStateHistory

AGGREGATE = "Subscription"


async def get_subscription(
    session: AsyncSession, subscription_id: str, *, for_update: bool = False
) -> Subscription:
    stmt = select(Subscription).where(Subscription.id == subscription_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    sub = (await session.exec(stmt)).first()
    if sub is None:
        raise NotFound(
            "subscription.not_found", f"No subscription {subscription_id}.", subscription_id=subscription_id
        )
    return sub


async def subscription_for_order(session: AsyncSession, order_id: str) -> Subscription | None:
    return (await session.exec(select(Subscription).where(Subscription.order_id == order_id))).first()


async def list_subscriptions(
    session: AsyncSession, *, customer_id: str | None = None, state: str | None = None
) -> list[Subscription]:
    stmt = select(Subscription).order_by(col(Subscription.created_at), col(Subscription.id))
    if customer_id is not None:
        stmt = stmt.where(Subscription.customer_id == customer_id)
    if state is not None:
        stmt = stmt.where(Subscription.state == state)
    return list(await session.exec(stmt))


async def balances(session: AsyncSession, subscription_id: str) -> list[BundleBalance]:
    await get_subscription(session, subscription_id)
    return await _balances_of(session, subscription_id)


async def _balances_of(session: AsyncSession, subscription_id: str) -> list[BundleBalance]:
    rows = await session.exec(select(BundleBalance).where(BundleBalance.subscription_id == subscription_id))
    return sorted(rows, key=lambda b: (rules.allowance_rank(b.allowance_type), b.allowance_type))


async def subscription_history(session: AsyncSession, subscription_id: str) -> list[SubscriptionStateHistory]:
    await get_subscription(session, subscription_id)
    rows = await session.exec(
        select(SubscriptionStateHistory)
        .where(SubscriptionStateHistory.subscription_id == subscription_id)
        .order_by(col(SubscriptionStateHistory.id))
    )
    return list(rows)


async def subscription_view(session: AsyncSession, subscription_id: str) -> dict[str, Any]:
    """The line as CONTRACT.md shows it (`GET /bss-api/v1/subscription/{id}`)."""
    sub = await get_subscription(session, subscription_id)
    return {
        "id": sub.id,
        "customerId": sub.customer_id,
        "orderId": sub.order_id,
        "state": sub.state,
        "stateReason": sub.state_reason,
        "msisdn": sub.msisdn,
        "iccid": sub.iccid,
        "offeringId": sub.offering_id,
        "activatedAt": sub.activated_at.isoformat() if sub.activated_at else None,
        "currentPeriodStart": sub.current_period_start.isoformat(),
        "currentPeriodEnd": sub.current_period_end.isoformat(),
        "price": {"id": sub.price_id, "amount": str(sub.price_amount), "currency": sub.price_currency},
        "pendingOfferingId": sub.pending_offering_id,
        "balances": [
            {
                "allowanceType": b.allowance_type,
                "total": b.total,
                "consumed": b.consumed,
                "remaining": b.remaining,
                "unit": b.unit,
            }
            for b in await _balances_of(session, sub.id)
        ],
    }


async def create_subscription(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    order_id: str,
    customer_id: str,
    offering_id: str,
    msisdn: str,
    iccid: str,
    service_order_id: str,
    price_id: str,
    price_amount: Decimal,
    price_currency: str,
) -> Subscription:
    """Activate the line of a paid order: active for 30 days from now, one balance per plan
    allowance, the number and eSIM assigned to it. A second call for the order returns the first."""
    from domains.catalog.services import allowances
    from domains.inventory.services import assign_esim, assign_msisdn

    plan = await allowances(session, offering_id)
    now = clock.now()
    period_end = now + rules.PERIOD
    sub = Subscription(
        id=None,  # from its sequence, in the INSERT
        customer_id=customer_id,
        offering_id=offering_id,
        order_id=order_id,
        msisdn=msisdn,
        iccid=iccid,
        service_order_id=service_order_id,
        state=rules.ACTIVE,
        activated_at=now,
        current_period_start=now,
        current_period_end=period_end,
        price_id=price_id,
        price_amount=price_amount,
        price_currency=price_currency,
        created_at=now,
        updated_at=now,
    )
    # One statement; a unique order_id (a second call, or a concurrent one) finds the first line.
    if not await insert_unless_exists(session, sub, id_sql=id_sql("SUB")):
        winner = await subscription_for_order(session, order_id)
        if winner is not None:
            return winner
        raise PolicyViolation(
            "subscription.create.msisdn_and_esim_reserved",
            f"Number {msisdn} or eSIM {iccid} already belongs to another line.",
            msisdn=msisdn,
            iccid=iccid,
        )

    # The INSERT above flushed whatever the session held, so the locking reads below (which reload
    # their rows) cannot overwrite a pending change; without autoflush the number's and profile's
    # changes go in with the rows below in one flush. `number` stays referenced, so assign_esim
    # finds it in the session instead of reading it again.
    with session.no_autoflush:
        number = await assign_msisdn(session, ctx, msisdn=msisdn, subscription_id=sub.id)
        await assign_esim(session, ctx, iccid=iccid, msisdn=number.msisdn, subscription_id=sub.id)
    # Inserted active directly, after the activation charge; the history still shows the move.
    session.add(
        SubscriptionStateHistory(
            subscription_id=sub.id,
            from_state=rules.PENDING,
            to_state=rules.ACTIVE,
            at=now,
            actor=ctx.actor,
            reason="activation",
        )
    )
    for allowance in plan:
        session.add(
            BundleBalance(
                subscription_id=sub.id,
                allowance_type=allowance.allowance_type,
                total=allowance.quantity,
                consumed=0,
                unit=allowance.unit,
                period_start=now,
                period_end=period_end,
            )
        )
    record(
        session,
        ctx,
        "subscription.activated",
        AGGREGATE,
        sub.id,
        {
            "orderId": order_id,
            "customerId": customer_id,
            "offeringId": offering_id,
            "msisdn": msisdn,
            "iccid": iccid,
            "priceId": price_id,
            "priceAmount": str(price_amount),
            "priceCurrency": price_currency,
            "periodEnd": period_end.isoformat(),
        },
    )
    await session.flush()
    return sub

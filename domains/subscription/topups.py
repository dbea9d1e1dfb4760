"""Top-ups (VAS) and the day pass: charged once per key, added to the line's buckets.

A declined card is an answer, not an error: the declined payment is committed with the caller's
transaction, the line is left as it was, and the outcome says `declined`; the caller raises
`outcome.violation()` after committing (an error inside the transaction would roll the payment
record back too).

The day pass makes the bucket unlimited; when it ends the bucket gets back exactly the remaining it
had when the pass started (usage during the day is not counted against it), plus any top-up bought
during the day. A pass that ends with nothing left blocks the line, as rating would.
`expire_day_pass` does not compare with the business clock: the workflow's timer says when.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import NotFound, PolicyViolation
from domains.audit.services import record
from domains.payment.charges import charge
from domains.payment.gateway import PaymentGateway
from domains.payment.services import default_payment_method
from domains.subscription import rules
from domains.subscription.history import EXHAUSTED, move
from domains.subscription.models import BundleBalance, VasPurchase
from domains.subscription.services import AGGREGATE, get_subscription


@dataclass(frozen=True)
class VasOutcome:
    status: str  # applied | declined
    subscription_id: str
    vas_offering_id: str
    payment_id: str | None = None
    vas_purchase_id: str | None = None
    expires_at: datetime | None = None
    unblocked: bool = False
    reason: str | None = None

    def violation(self) -> PolicyViolation:
        """What to raise (after committing) when the card was declined."""
        return PolicyViolation(
            "subscription.vas_purchase.requires_active_cof",
            f"The card on file was declined ({self.reason}); nothing was added to {self.subscription_id}.",
            subscription_id=self.subscription_id,
            payment_id=self.payment_id,
        )


async def purchase_vas(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    subscription_id: str,
    vas_offering_id: str,
    idempotency_key: str,
    gateway: PaymentGateway,
) -> VasOutcome:
    """Charge a top-up and add its allowance. A data top-up brings back a line blocked because its
    data ran out (never one blocked for a declined renewal: that takes `renew_now`)."""
    from domains.catalog.models import VasOffering

    sub = await get_subscription(session, subscription_id, for_update=True)
    previous = (
        await session.exec(select(VasPurchase).where(VasPurchase.idempotency_key == idempotency_key))
    ).first()
    if previous is not None:
        if previous.subscription_id != sub.id:
            raise PolicyViolation(
                "subscription.vas_purchase.idempotency_key_reused",
                f"Idempotency key {idempotency_key} already bought a top-up for {previous.subscription_id}.",
                subscription_id=sub.id,
            )
        return _vas_outcome(previous)
    if sub.state == rules.TERMINATED:
        raise PolicyViolation(
            "subscription.vas_purchase.not_if_terminated",
            f"{sub.id} is terminated; it takes no top-ups.",
            subscription_id=sub.id,
        )
    vas = await session.get(VasOffering, vas_offering_id)
    if vas is None or vas.lifecycle_status != "Active":
        raise PolicyViolation(
            "subscription.vas_purchase.vas_offering_sellable",
            f"{vas_offering_id} is not a top-up on sale.",
            vas_offering_id=vas_offering_id,
        )
    if await default_payment_method(session, sub.customer_id) is None:
        raise PolicyViolation(
            "subscription.vas_purchase.requires_active_cof",
            f"Customer {sub.customer_id} has no card on file to pay for {vas_offering_id}.",
            subscription_id=sub.id,
        )
    payment = await charge(
        session,
        ctx,
        customer_id=sub.customer_id,
        amount=vas.price_amount,
        currency=vas.currency,
        purpose="vas",
        idempotency_key=idempotency_key,
        gateway=gateway,
    )
    if payment.status != "approved":
        return VasOutcome(
            "declined", sub.id, vas.id, payment_id=payment.id, reason=payment.decline_code or "card_declined"
        )

    now = clock.now()
    bucket = await lock_balance(session, sub.id, vas.allowance_type) or BundleBalance(
        subscription_id=sub.id,
        allowance_type=vas.allowance_type,
        total=0,
        unit=vas.allowance_unit,
        period_start=sub.current_period_start,
        period_end=sub.current_period_end,
    )
    purchase = VasPurchase(
        id=f"{sub.id}-VAS-{secrets.token_hex(4).upper()}",
        subscription_id=sub.id,
        vas_offering_id=vas.id,
        payment_id=payment.id,
        idempotency_key=idempotency_key,
        allowance_type=vas.allowance_type,
        allowance_added=vas.allowance_quantity,
        applied_at=now,
    )
    running = await _running_pass(session, sub.id, vas.allowance_type)
    if vas.allowance_quantity == rules.UNLIMITED and vas.expiry_hours is not None:
        # A second pass during the first takes over its restore point; the first ends quietly.
        purchase.restored_remaining = bucket.remaining if running is None else running.restored_remaining
        purchase.expires_at = now + timedelta(hours=vas.expiry_hours)
        if running is not None:
            running.ended_at = now
            session.add(running)
        bucket.total = rules.UNLIMITED
    elif vas.allowance_quantity == rules.UNLIMITED:
        bucket.total = rules.UNLIMITED
    elif bucket.total != rules.UNLIMITED:
        bucket.total += vas.allowance_quantity
    elif running is not None and running.restored_remaining != rules.UNLIMITED:
        # Bought during a day pass: kept for when the pass ends rather than lost in "unlimited".
        running.restored_remaining = (running.restored_remaining or 0) + vas.allowance_quantity
        session.add(running)
    session.add_all([bucket, purchase])
    await session.flush()

    unblocked = (
        sub.state == rules.BLOCKED
        and sub.state_reason == EXHAUSTED
        and vas.allowance_type == rules.PRIMARY_ALLOWANCE
        and bucket.remaining != 0
    )
    if unblocked:
        move(session, ctx, sub, "top_up", None, note=f"top-up {vas.id}")
        record(session, ctx, "subscription.unblocked", AGGREGATE, sub.id, {"vasPurchaseId": purchase.id})
    record(
        session,
        ctx,
        "subscription.vas_purchased",
        AGGREGATE,
        sub.id,
        {
            "vasPurchaseId": purchase.id,
            "vasOfferingId": vas.id,
            "paymentId": payment.id,
            "allowanceType": vas.allowance_type,
            "allowanceAdded": vas.allowance_quantity,
            "expiresAt": purchase.expires_at.isoformat() if purchase.expires_at else None,
        },
    )
    await session.flush()
    return _vas_outcome(purchase, unblocked=unblocked)


async def expire_day_pass(
    session: AsyncSession, ctx: RequestContext, *, subscription_id: str, vas_purchase_id: str
) -> bool:
    """End a day pass: the bucket gets back the remaining it had when the pass started. True when
    this call ended it, False when it had ended already (or was not a timed pass)."""
    sub = await get_subscription(session, subscription_id, for_update=True)
    purchase = (
        await session.exec(
            select(VasPurchase)
            .where(VasPurchase.id == vas_purchase_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if purchase is None or purchase.subscription_id != sub.id:
        raise NotFound(
            "subscription.vas_purchase.not_found",
            f"{sub.id} has no top-up {vas_purchase_id}.",
            vas_purchase_id=vas_purchase_id,
        )
    if purchase.expires_at is None or purchase.ended_at is not None:
        return False
    purchase.ended_at = clock.now()
    session.add(purchase)
    left = None
    if sub.state != rules.TERMINATED:
        bucket = await lock_balance(session, sub.id, purchase.allowance_type)
        if bucket is not None and bucket.total == rules.UNLIMITED:
            restore = purchase.restored_remaining or 0
            bucket.total = rules.UNLIMITED if restore == rules.UNLIMITED else bucket.consumed + restore
            session.add(bucket)
        left = bucket.remaining if bucket is not None else None
        if left == 0 and sub.state == rules.ACTIVE and purchase.allowance_type == rules.PRIMARY_ALLOWANCE:
            move(session, ctx, sub, "exhaust", EXHAUSTED, note=f"day pass {purchase.id} ended")
    record(
        session,
        ctx,
        "subscription.day_pass_expired",
        AGGREGATE,
        sub.id,
        {"vasPurchaseId": purchase.id, "remaining": left, "state": sub.state},
    )
    await session.flush()
    return True


def _vas_outcome(purchase: VasPurchase, *, unblocked: bool = False) -> VasOutcome:
    return VasOutcome(
        "applied",
        purchase.subscription_id,
        purchase.vas_offering_id,
        payment_id=purchase.payment_id,
        vas_purchase_id=purchase.id,
        expires_at=purchase.expires_at,
        unblocked=unblocked,
    )


async def running_passes(session: AsyncSession, subscription_id: str) -> list[VasPurchase]:
    rows = await session.exec(
        select(VasPurchase)
        .where(
            VasPurchase.subscription_id == subscription_id,
            col(VasPurchase.expires_at).is_not(None),
            col(VasPurchase.ended_at).is_(None),
        )
        .order_by(col(VasPurchase.applied_at))
    )
    return list(rows.all())


async def _running_pass(
    session: AsyncSession, subscription_id: str, allowance_type: str
) -> VasPurchase | None:
    running = [
        p for p in await running_passes(session, subscription_id) if p.allowance_type == allowance_type
    ]
    return running[-1] if running else None


async def lock_balances(session: AsyncSession, subscription_id: str) -> list[BundleBalance]:
    rows = await session.exec(
        select(BundleBalance)
        .where(BundleBalance.subscription_id == subscription_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def lock_balance(
    session: AsyncSession, subscription_id: str, allowance_type: str
) -> BundleBalance | None:
    found = [b for b in await lock_balances(session, subscription_id) if b.allowance_type == allowance_type]
    return found[0] if found else None

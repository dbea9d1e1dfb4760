"""What the self-serve portal's signup funnel reads, each answer checked against the customer asking.

The funnel's writes are the API's own operations (ops.crm.create_customer, ops.inventory.hold_number,
ops.kyc.attest, ops.payment.add_payment_method, ops.orders.create_order); this module holds the
reads they need: where a customer's signup stands, an order's live progress (the order workflow's
`status` query while it runs, the order row otherwise) and the eSIM of a completed order. Another
customer's order is answered exactly like an order that does not exist (404 `order.not_found`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.clock import clock
from core.errors import NotFound
from ops.ownership import require_own_order
from ops.runtime import Runtime

TERMINAL = frozenset({"completed", "failed", "cancelled"})
QUERY_TIMEOUT = 3.0


@dataclass(frozen=True)
class SignupStatus:
    customer_id: str
    given_name: str
    family_name: str
    email: str | None
    kyc_verified: bool
    card_last4: str | None  # the default card on file, if any
    card_brand: str | None


async def signup_status(rt: Runtime, customer_id: str) -> SignupStatus:
    """What the customer has done of a signup: details (the customer exists), KYC, a card."""
    from domains.crm.services import customer_view
    from domains.payment.services import default_payment_method

    async with rt.db() as s:
        view = await customer_view(s, customer_id)
        card = await default_payment_method(s, customer_id)
    return SignupStatus(
        customer_id,
        view.individual.given_name if view.individual else "",
        view.individual.family_name if view.individual else "",
        view.active("email"),
        view.customer.kyc_status == "verified",
        card.last4 if card else None,
        card.brand if card else None,
    )


@dataclass(frozen=True)
class PromoPreview:
    code: str
    applies: bool
    message: str  # what the code does, or why it will not apply (the order then goes at full price)


async def promo_preview(rt: Runtime, code: str, customer_id: str | None, amount: Decimal) -> PromoPreview:
    """What `code` would do for this customer's order of `amount` now: the order itself decides
    (ordering.create_order), this only tells the person beforehand, in the same words."""
    from domains.catalog import promotions

    async with rt.db() as s:
        check = await promotions.check_code(s, code, customer_id or "", clock.now())
    if not check.ok or check.promotion is None:
        return PromoPreview(code, False, promotions.rejection_note(code, check.reason or "unknown_code"))
    promo = check.promotion
    price = promotions.discounted(amount, promo.discount_type, promo.discount_value)
    periods = "" if promo.periods is None or promo.periods < 0 else f" for {promo.periods} period(s)"
    return PromoPreview(
        promo.code, True, f"{promo.name}: the plan costs {price:.2f} instead of {amount:.2f}{periods}."
    )


@dataclass(frozen=True)
class OrderProgress:
    order_id: str
    state: str  # acknowledged | inProgress | failing | completed | failed | cancelled
    offering_id: str
    price_amount: Decimal
    promo_amount: Decimal | None
    currency: str
    msisdn: str | None
    subscription_id: str | None
    reason: str | None  # why it failed or was cancelled
    note: str | None  # e.g. why the promo code did not apply
    som_started: bool
    source: str  # workflow | order

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


async def order_progress(rt: Runtime, customer_id: str, order_id: str) -> OrderProgress:
    """The order's progress for its own customer: the workflow's live `status` while it runs
    (falls back to the order row when Temporal does not answer), the row once it is over."""
    async with rt.db() as s:
        order = await require_own_order(s, customer_id, order_id)
    state, reason, som, source = order.state, order.failure_reason, order.som_started_at is not None, "order"
    if state not in TERMINAL:
        live = await _live_status(rt, order.id)
        if live is not None and live.state not in TERMINAL:
            state, reason, som, source = live.state, live.reason or reason, live.som_started, "workflow"
        elif live is not None:
            async with rt.db() as s:  # just ended: the row has the last word
                order = await require_own_order(s, customer_id, order_id)
            state, reason = order.state, order.failure_reason or live.reason
    return OrderProgress(
        order.id,
        state,
        order.offering_id,
        order.price_amount,
        order.promo_amount,
        order.price_currency,
        order.msisdn_preference if order.subscription_id is None else await _line_msisdn(rt, order),
        order.subscription_id,
        reason,
        order.note,
        som,
        source,
    )


async def _live_status(rt: Runtime, order_id: str) -> Any:
    from workflows.product_order import ProductOrderWorkflow, order_workflow_id

    try:
        client = await asyncio.wait_for(rt.temporal(), QUERY_TIMEOUT)
        handle = client.get_workflow_handle_for(ProductOrderWorkflow.run, order_workflow_id(order_id))
        return await asyncio.wait_for(handle.query(ProductOrderWorkflow.status), QUERY_TIMEOUT)
    except Exception:  # noqa: BLE001 - not started yet, or Temporal away: the row answers
        return None


async def _line_msisdn(rt: Runtime, order: Any) -> str | None:
    from domains.subscription.models import Subscription

    async with rt.db() as s:
        sub = await s.get(Subscription, order.subscription_id)
    return sub.msisdn if sub else None


@dataclass(frozen=True)
class OrderEsim:
    order_id: str
    subscription_id: str
    msisdn: str
    iccid: str
    activation_code: str


async def order_esim(rt: Runtime, customer_id: str, order_id: str) -> OrderEsim:
    """The eSIM of the customer's completed order (its activation code is what the QR code holds).
    Another customer's order, or one that has no line (yet), is a 404."""
    from domains.inventory.models import EsimProfile
    from domains.subscription.models import Subscription

    async with rt.db() as s:
        order = await require_own_order(s, customer_id, order_id)
        sub = await s.get(Subscription, order.subscription_id) if order.subscription_id else None
        if order.state != "completed" or sub is None or sub.customer_id != customer_id:
            raise NotFound("order.esim.not_ready", f"Order {order.id} has no eSIM yet.", order_id=order.id)
        profile = await s.get(EsimProfile, sub.iccid)
    if profile is None:
        raise NotFound("esim.not_found", f"No eSIM profile for order {order.id}.", order_id=order.id)
    return OrderEsim(order.id, sub.id, sub.msisdn, profile.iccid, profile.activation_code)


async def last_order(rt: Runtime, customer_id: str) -> Any | None:
    """The customer's latest order (a funnel resumed in a new session goes on from it)."""
    from sqlmodel import col, select

    from domains.ordering.models import ProductOrder

    async with rt.db() as s:
        return (
            await s.exec(
                select(ProductOrder)
                .where(ProductOrder.customer_id == customer_id)
                .order_by(col(ProductOrder.created_at).desc(), col(ProductOrder.id).desc())
                .limit(1)
            )
        ).first()

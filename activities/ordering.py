"""Activities of the product order (COM): database steps, the activation charge and its refund."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from temporalio import activity

from activities.base import ctx_for, domain_errors
from core.db import transaction


@dataclass
class OrderRef:
    order_id: str


@dataclass
class SomStarted:
    order_id: str
    service_order_id: str


@dataclass
class NewServiceOrder:
    order_id: str
    customer_id: str
    offering_id: str
    # Start the order in the same transaction: an order with nothing to wait for (no requested
    # start date, no promotion to claim) goes straight to service ordering in one step.
    start_order: bool = False


@dataclass
class ChargeRequest:
    order_id: str
    customer_id: str
    amount: str
    currency: str
    idempotency_key: str
    purpose: str = "activation"


@dataclass
class ChargeOutcome:
    payment_id: str
    approved: bool
    decline_reason: str | None = None


@dataclass
class RefundRequest:
    idempotency_key: str


@dataclass
class NewSubscription:
    order_id: str
    customer_id: str
    offering_id: str
    msisdn: str
    iccid: str
    service_order_id: str
    price_id: str
    price_amount: str
    price_currency: str


@dataclass
class OrderCompleted:
    order_id: str
    subscription_id: str


@dataclass
class OrderFailed:
    order_id: str
    reason: str


def _wf_id() -> str | None:
    return activity.info().workflow_id if activity.in_activity() else None


class OrderActivities:
    def __init__(self, runtime, gateway) -> None:
        self.rt = runtime
        self.gateway = gateway

    @activity.defn
    @domain_errors
    async def start_order(self, req: OrderRef) -> None:
        from domains.ordering import services

        async with transaction(self.rt.db) as s:
            await services.start_order(s, ctx_for(_wf_id()), req.order_id)

    @activity.defn
    @domain_errors
    async def create_service_order(self, req: NewServiceOrder) -> str:
        from domains.ordering import services as ordering
        from domains.service_ordering import services as som

        async with transaction(self.rt.db) as s:
            ctx = ctx_for(_wf_id())
            if req.start_order:
                await ordering.start_order(s, ctx, req.order_id)
            so = await som.create_service_order(
                s, ctx, order_id=req.order_id, customer_id=req.customer_id, offering_id=req.offering_id
            )
            await ordering.mark_som_started(s, ctx, req.order_id, so.id)
            return so.id

    @activity.defn
    @domain_errors
    async def charge_activation(self, req: ChargeRequest) -> ChargeOutcome:
        """Charge once per key. A decline is the outcome (approved=False); gateway trouble raises a
        retryable error (payment.gateway_*) and the retry with the same key is answered from the
        gateway's record; no card on file is non-retryable (payment.charge.method_not_found)."""
        from domains.payment.charges import charge

        async with transaction(self.rt.db) as s:
            payment = await charge(
                s,
                ctx_for(_wf_id()),
                customer_id=req.customer_id,
                amount=Decimal(req.amount),
                currency=req.currency,
                purpose=req.purpose,
                idempotency_key=req.idempotency_key,
                gateway=self.gateway,
            )
        return ChargeOutcome(payment.id, payment.status == "approved", payment.decline_reason)

    @activity.defn
    @domain_errors
    async def refund_charge(self, req: RefundRequest) -> None:
        """Give the charge of `req.idempotency_key` back, once: safe to repeat, reconciles a charge
        whose outcome the BSS never learnt, and raises retryable errors (payment.gateway_*,
        payment.refund.declined) so the saga keeps retrying until the money is back."""
        from domains.payment.charges import refund

        async with transaction(self.rt.db) as s:
            await refund(s, ctx_for(_wf_id()), idempotency_key=req.idempotency_key, gateway=self.gateway)

    @activity.defn
    @domain_errors
    async def create_subscription(self, req: NewSubscription) -> str:
        from domains.service_ordering import services as som
        from domains.subscription import services as subs

        async with transaction(self.rt.db) as s:
            ctx = ctx_for(_wf_id())
            sub = await subs.create_subscription(
                s,
                ctx,
                order_id=req.order_id,
                customer_id=req.customer_id,
                offering_id=req.offering_id,
                msisdn=req.msisdn,
                iccid=req.iccid,
                service_order_id=req.service_order_id,
                price_id=req.price_id,
                price_amount=Decimal(req.price_amount),
                price_currency=req.price_currency,
            )
            await som.attach_subscription(s, ctx, req.service_order_id, sub.id)
            return sub.id

    @activity.defn
    @domain_errors
    async def complete_order(self, req: OrderCompleted) -> None:
        from domains.ordering import services

        async with transaction(self.rt.db) as s:
            await services.complete_order(s, ctx_for(_wf_id()), req.order_id, req.subscription_id)

    @activity.defn
    @domain_errors
    async def fail_order(self, req: OrderFailed) -> None:
        from domains.ordering import services

        async with transaction(self.rt.db) as s:
            await services.fail_order(s, ctx_for(_wf_id()), req.order_id, req.reason)

    @activity.defn
    @domain_errors
    async def cancel_order(self, req: OrderFailed) -> None:
        from domains.ordering import services

        async with transaction(self.rt.db) as s:
            await services.cancel_order(s, ctx_for(_wf_id()), req.order_id, req.reason)

"""Activities of the promo claim (workflows/promo_claim.py): database steps on the order's claim."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.base import ctx_for, domain_errors
from core.db import transaction


@dataclass
class ClaimRequest:
    order_id: str


@dataclass
class ClaimResult:
    order_id: str
    state: str  # claimed | refused | none | redeemed | revoked
    amount: str | None = None  # the discounted activation price, when the claim holds
    reason: str | None = None


@dataclass
class RedeemRequest:
    order_id: str
    subscription_id: str


@dataclass
class RevokeRequest:
    order_id: str
    reason: str


@dataclass
class OrderOutcome:
    state: str
    subscription_id: str | None = None
    reason: str | None = None


def _wf_id() -> str | None:
    return activity.info().workflow_id if activity.in_activity() else None


class PromotionActivities:
    def __init__(self, runtime) -> None:
        self.rt = runtime

    @activity.defn
    @domain_errors
    async def claim_promotion(self, req: ClaimRequest) -> ClaimResult:
        from domains.catalog import promotions

        async with transaction(self.rt.db) as s:
            out = await promotions.claim_for_order(s, ctx_for(_wf_id()), req.order_id)
        amount = str(out.amount) if out.amount is not None and out.state == promotions.CLAIMED else None
        return ClaimResult(req.order_id, out.state, amount, out.reason)

    @activity.defn
    @domain_errors
    async def redeem_promotion(self, req: RedeemRequest) -> str | None:
        from domains.catalog import promotions

        async with transaction(self.rt.db) as s:
            claim = await promotions.redeem_for_order(s, ctx_for(_wf_id()), req.order_id, req.subscription_id)
            return claim.state if claim else None

    @activity.defn
    @domain_errors
    async def revoke_promotion(self, req: RevokeRequest) -> str | None:
        from domains.catalog import promotions

        async with transaction(self.rt.db) as s:
            claim = await promotions.revoke_for_order(s, ctx_for(_wf_id()), req.order_id, req.reason)
            return claim.state if claim else None

    @activity.defn
    @domain_errors
    async def order_outcome(self, req: ClaimRequest) -> OrderOutcome:
        """Where the order stands: lets a claim whose order never settled it settle itself."""
        from domains.ordering import services

        async with transaction(self.rt.db) as s:
            order = await services.get_order(s, req.order_id)
            return OrderOutcome(order.state, order.subscription_id, order.failure_reason)

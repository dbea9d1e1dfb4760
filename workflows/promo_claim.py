"""The claim of one order's promo code (`promo-claim-<ORD id>`), started by the order when it starts.

It claims a use of the code (domains/catalog/promotions.py: under the promotion's row lock, so two
orders cannot both take the last use of a capped code) and tells the order by the signal
`promotion_claimed` whether the discount holds; the order charges the discounted price or the full
price accordingly. Then it waits for the order's word: `settle("redeem", SUB id)` once the line is
active, or `settle("revoke", reason)` when the order fails, which gives the use back (a failed
activation never burns a code). An order that ends without saying (its run terminated) is looked up
once a day, and the claim settles by the order's state.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.base import reason_of
    from activities.promotion import (
        ClaimRequest,
        ClaimResult,
        PromotionActivities,
        RedeemRequest,
        RevokeRequest,
    )
    from workflows.common import DB_STEP, condition_or_timeout

CLAIMED_SIGNAL = "promotion_claimed"  # on the order's workflow
LOOK_AGAIN_SECONDS = 86400.0


@dataclass
class PromoClaimInput:
    order_id: str
    customer_id: str
    code: str
    order_workflow_id: str


@dataclass
class SettleClaim:
    action: str  # redeem | revoke
    subscription_id: str | None = None
    reason: str | None = None


@dataclass
class PromoClaimResult:
    order_id: str
    code: str
    state: str  # redeemed | revoked | refused | none | error (a step no retry can fix)
    reason: str | None = None


def promo_claim_workflow_id(order_id: str) -> str:
    return f"promo-claim-{order_id}"


@workflow.defn
class PromoClaimWorkflow:
    def __init__(self) -> None:
        self.settlement: SettleClaim | None = None
        self.state = "claiming"

    @workflow.run
    async def run(self, inp: PromoClaimInput) -> PromoClaimResult:
        try:
            claim: ClaimResult = await workflow.execute_local_activity_method(
                PromotionActivities.claim_promotion, ClaimRequest(inp.order_id), **DB_STEP
            )
        except ActivityError as err:  # a refusal no retry can fix: the order goes at full price
            claim = ClaimResult(inp.order_id, "error", None, reason_of(err)[:200])
        self.state = claim.state
        try:
            await workflow.get_external_workflow_handle(inp.order_workflow_id).signal(CLAIMED_SIGNAL, claim)
        except Exception:  # noqa: BLE001 - the order is gone: it settles by its state below
            workflow.logger.info("order %s no longer waits for its claim", inp.order_id)
        if claim.state != "claimed":
            return PromoClaimResult(inp.order_id, inp.code, claim.state, claim.reason)
        try:
            return await self._settle(inp)
        except ActivityError as err:  # never ends Failed: the claim stays as it is, with the reason
            self.state = "error"
            return PromoClaimResult(inp.order_id, inp.code, self.state, reason_of(err)[:200])

    async def _settle(self, inp: PromoClaimInput) -> PromoClaimResult:
        while self.settlement is None:
            if await condition_or_timeout(lambda: self.settlement is not None, LOOK_AGAIN_SECONDS):
                break
            order = await workflow.execute_local_activity_method(
                PromotionActivities.order_outcome, ClaimRequest(inp.order_id), **DB_STEP
            )
            if order.state == "completed":
                self.settlement = SettleClaim("redeem", order.subscription_id)
            elif order.state in ("failed", "cancelled"):
                self.settlement = SettleClaim("revoke", reason=order.reason or f"order {order.state}")
        s = self.settlement
        if s.action == "redeem" and s.subscription_id:
            await workflow.execute_local_activity_method(
                PromotionActivities.redeem_promotion,
                RedeemRequest(inp.order_id, s.subscription_id),
                **DB_STEP,
            )
            self.state = "redeemed"
        else:
            await workflow.execute_local_activity_method(
                PromotionActivities.revoke_promotion,
                RevokeRequest(inp.order_id, s.reason or "order failed"),
                **DB_STEP,
            )
            self.state = "revoked"
        return PromoClaimResult(inp.order_id, inp.code, self.state, s.reason)

    @workflow.signal
    def settle(self, msg: SettleClaim) -> None:
        if self.settlement is None:
            self.settlement = msg

    @workflow.query
    def status(self) -> str:
        return self.state

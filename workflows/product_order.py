"""Product order (COM, TMF622): the customer's order, from acknowledged to an active line or to a
clean failure. A saga: every step that takes something registers how to give it back first.

The undo of each step (patch `order-undoes-every-step`), run in reverse when the order fails or is
cancelled (a cancel from the Temporal UI included: the compensation runs shielded):
  service order created  → its number and eSIM back to the pool (the eSIM only once its flow ended)
  eSIM flow running       → cancelled; it cancels at the SM-DP+ and gives its profile back itself
  network provisioned     → HLR/PCRF/OCS deprovisioned (their own task types and fault rules)
  charge                  → refunded, durably: retried without a cap on attempts; after the
                            compensation patience (30 min) a ticket asks an operator (`bss ticket
                            retry|resolve`) and the order waits. The order is `failed` only once
                            the money is back (or an operator resolved it).
  line created            → terminated with reason `order_failed`; number straight back available
  line's workflow started → cancelled by id (idempotent)
A *terminate* from the UI runs no workflow code, so no compensation: the order stays `inProgress`
in the database with whatever it held. That is for the platform's order sweeper / reconciliation
of stranded orders to catch; operators should cancel, never terminate, an order workflow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.exceptions import TimeoutError as AttemptTimedOut

with workflow.unsafe.imports_passed_through():
    from activities.attention import AttentionTicket
    from activities.base import reason_of, rule_code
    from activities.ordering import (
        ChargeOutcome,
        ChargeRequest,
        NewServiceOrder,
        NewSubscription,
        OrderActivities,
        OrderCompleted,
        OrderFailed,
        OrderRef,
        RefundRequest,
    )
    from activities.promotion import ClaimResult
    from activities.provisioning import DeprovisionOrder, ProvisioningActivities
    from activities.service_ordering import (
        OrderHoldingsRequest,
        OrderLineEnd,
        ServiceOrderActivities,
        ServiceOrderFailed,
        ServiceOrderRef,
    )
    from workflows.attention import Attention, OperatorDecision
    from workflows.common import (
        CUSTOMER_ID,
        DB_STEP,
        EXTERNAL_CALL,
        MSISDN,
        ORDER_ID,
        SUBSCRIPTION_ID,
        attributes,
        compensation_call,
        condition_or_timeout,
    )
    from workflows.esim_provisioning import CancelEsim, EsimProvisioningWorkflow, esim_workflow_id
    from workflows.messages import CancelOrder, OrderInput, OrderResult, OrderStatus  # noqa: F401 - re-exported
    from workflows.promo_claim import (
        PromoClaimInput,
        PromoClaimWorkflow,
        SettleClaim,
        promo_claim_workflow_id,
    )
    from workflows.service_order import (
        ServiceOrderInput,
        ServiceOrderWorkflow,
        raise_failed_result,
        service_order_workflow_id,
    )
    from workflows.subscription import SubscriptionInput, SubscriptionWorkflow, subscription_workflow_id


PATCH = "order-undoes-every-step"
# An order with a promo code claims it through its own PromoClaimWorkflow when it starts, charges
# the discounted price while the claim holds (full price when it is refused), redeems the claim
# once the order is complete and revokes it when the order fails.
PROMO_PATCH = "order-claims-promotion"
# The activation charge is a LOCAL activity (same key, retries, decline and refund): the service
# order's result, the charge, the line and its workflow's start go out in one workflow task, with
# one search-attribute upsert for the number and the line. A crash re-runs the charge, which the
# gateway answers from its record of the key. An order with nothing to wait for (no requested start
# date, no promotion) is started and handed to service ordering in one local activity. Implies the
# two patches above; new runs record only it.
ONE_TASK_PATCH = "order-charges-locally-in-one-task"


def order_workflow_id(order_id: str) -> str:
    return f"order-{order_id}"


class Compensations:
    """Undo steps, registered before the step they undo, run in reverse and each idempotent."""

    def __init__(self) -> None:
        self._steps: list[Callable[[], Awaitable[None]]] = []

    def add(self, step: Callable[[], Awaitable[None]]) -> None:
        self._steps.append(step)

    async def unwind(self) -> None:
        for step in reversed(self._steps):
            try:
                await step()
            except Exception as exc:  # noqa: BLE001 - one failed undo must not stop the others
                workflow.logger.error("compensation failed: %s", exc)


@workflow.defn
class ProductOrderWorkflow:
    def __init__(self) -> None:
        self.state = "acknowledged"
        self.som_started = False
        self.cancel_requested: CancelOrder | None = None
        self.service_order_id: str | None = None
        self.subscription_id: str | None = None
        self.reason: str | None = None
        self.attention = Attention()
        self.v2 = False
        self.esim_signalled = False
        self.inp: OrderInput | None = None
        self.promo_claim: ClaimResult | None = None
        self.promo_started = False
        self.one_task = False

    @workflow.run
    async def run(self, inp: OrderInput) -> OrderResult:
        self.one_task = workflow.patched(ONE_TASK_PATCH)
        self.v2 = self.one_task or workflow.patched(PATCH)
        self.inp = inp
        undo = Compensations()
        if inp.undo_only:
            return await self._undo_abandoned(inp)
        try:
            if (
                self.one_task
                and not inp.requested_start
                and not inp.promo_code
                and self.cancel_requested is None
            ):
                # Nothing to wait for: started and handed to service ordering in one step.
                self.som_started = True
                so_id = await workflow.execute_local_activity_method(
                    OrderActivities.create_service_order,
                    NewServiceOrder(inp.order_id, inp.customer_id, inp.offering_id, start_order=True),
                    **DB_STEP,
                )
                self.state = "inProgress"
                return await self._fulfil(inp, undo, so_id)
            await workflow.execute_local_activity_method(
                OrderActivities.start_order, OrderRef(inp.order_id), **DB_STEP
            )
            self.state = "inProgress"
            if inp.requested_start:
                wait = (datetime.fromisoformat(inp.requested_start) - workflow.now()).total_seconds()
                if wait > 0:
                    await condition_or_timeout(lambda: self.cancel_requested is not None, wait)
            if self.cancel_requested is not None:
                await workflow.execute_local_activity_method(
                    OrderActivities.cancel_order,
                    OrderFailed(inp.order_id, self.cancel_requested.reason),
                    **DB_STEP,
                )
                self.state = "cancelled"
                return OrderResult(inp.order_id, "cancelled", reason=self.cancel_requested.reason)
            return await self._fulfil(inp, undo)
        # A local activity's timeout (the charge's) is the bare TimeoutError on replay (SDK 1.35).
        except (
            ApplicationError,
            ActivityError,
            ChildWorkflowError,
            AttemptTimedOut,
            asyncio.CancelledError,
        ) as err:
            if self.one_task and isinstance(err, ActivityError) and isinstance(err.cause, AttemptTimedOut):
                err = err.cause  # the same reason live and on replay
            self.reason = _readable(err)
            # Failed once everything is given back (v2): the money included.
            self.state = "failing" if self.v2 else "failed"
            await asyncio.shield(asyncio.ensure_future(self._fail(inp, undo, self.reason)))
            self.state = "failed"
            return OrderResult(inp.order_id, "failed", reason=self.reason)

    async def _fulfil(self, inp: OrderInput, undo: Compensations, so_id: str | None = None) -> OrderResult:
        """From service ordering on; `so_id` when the order's first step already created it."""
        self.som_started = True
        amount = inp.price_amount
        if so_id is None:
            if inp.promo_code and (self.one_task or workflow.patched(PROMO_PATCH)):
                amount = await self._claim_promotion(inp, undo)
            so_id = await workflow.execute_local_activity_method(
                OrderActivities.create_service_order,
                NewServiceOrder(inp.order_id, inp.customer_id, inp.offering_id),
                **DB_STEP,
            )
        self.service_order_id = so_id
        undo.add(lambda: self._release(so_id))
        so = await workflow.execute_child_workflow(
            ServiceOrderWorkflow.run,
            ServiceOrderInput(
                so_id,
                inp.order_id,
                inp.customer_id,
                inp.offering_id,
                inp.msisdn_preference,
                inp.task_deadline_seconds,
            ),
            id=service_order_workflow_id(so_id),
            search_attributes=attributes(
                CUSTOMER_ID.value_set(inp.customer_id), ORDER_ID.value_set(inp.order_id)
            ),
        )
        if so.state == "failed":  # it compensated itself: as its failure (ChildWorkflowError) was
            raise_failed_result(so.reason, so.rule_code)
        attrs = [MSISDN.value_set(so.msisdn)]
        if not self.one_task:
            workflow.upsert_search_attributes(attrs)
        undo.add(lambda: self._cancel_esim(so.iccid))
        if self.v2:
            undo.add(lambda: self._deprovision(so_id))
        try:
            sub_id = await self._charge_and_create_line(inp, undo, so, so_id, amount)
        finally:
            if self.one_task:  # the number, and the line when there is one, in one upsert
                if self.subscription_id is not None:
                    attrs.append(SUBSCRIPTION_ID.value_set(self.subscription_id))
                workflow.upsert_search_attributes(attrs)
        if not self.one_task:
            workflow.upsert_search_attributes([SUBSCRIPTION_ID.value_set(sub_id)])
        if self.v2:
            undo.add(lambda: self._stop_line_workflow(sub_id))
        await workflow.start_child_workflow(
            SubscriptionWorkflow.run,
            SubscriptionInput(sub_id, inp.customer_id, inp.offering_id, so.msisdn, so.iccid, ""),
            id=subscription_workflow_id(sub_id),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            search_attributes=attributes(
                CUSTOMER_ID.value_set(inp.customer_id),
                SUBSCRIPTION_ID.value_set(sub_id),
                MSISDN.value_set(so.msisdn),
                ORDER_ID.value_set(inp.order_id),
            ),
        )
        await workflow.execute_local_activity_method(
            OrderActivities.complete_order, OrderCompleted(inp.order_id, sub_id), **DB_STEP
        )
        self.state = "completed"
        if self.promo_claim is not None and self.promo_claim.state == "claimed":
            await self._settle_claim(SettleClaim("redeem", sub_id))
        return OrderResult(inp.order_id, "completed", sub_id, so.msisdn, so.iccid)

    async def _charge_and_create_line(
        self, inp: OrderInput, undo: Compensations, so, so_id: str, amount: str
    ) -> str:
        charge_key = f"{workflow.info().workflow_id}/activation"
        # A promotion may make the activation free (only then is the amount 0): nothing to charge.
        free = Decimal(amount) <= 0
        if not free:
            undo.add(lambda: self._refund(charge_key))
        run = workflow.execute_local_activity_method if self.one_task else workflow.execute_activity_method
        charge = (
            ChargeOutcome("", True)
            if free
            else await run(
                OrderActivities.charge_activation,
                ChargeRequest(inp.order_id, inp.customer_id, amount, inp.price_currency, charge_key),
                **EXTERNAL_CALL,
            )
        )
        if not charge.approved:
            raise ApplicationError(
                f"The card on file was declined ({charge.decline_reason or 'no reason given'}); nothing was charged.",
                type="order.payment_declined",
                non_retryable=True,
            )
        if self.v2:
            undo.add(self._end_line)
        self.subscription_id = await workflow.execute_local_activity_method(
            OrderActivities.create_subscription,
            NewSubscription(
                inp.order_id,
                inp.customer_id,
                inp.offering_id,
                so.msisdn,
                so.iccid,
                so_id,
                inp.price_id,
                inp.price_amount,
                inp.price_currency,
            ),
            **DB_STEP,
        )
        return self.subscription_id

    async def _claim_promotion(self, inp: OrderInput, undo: Compensations) -> str:
        """Start the code's claim and wait for its answer: the price to charge."""
        undo.add(self._revoke_promotion)
        self.promo_started = True
        await workflow.start_child_workflow(
            PromoClaimWorkflow.run,
            PromoClaimInput(inp.order_id, inp.customer_id, inp.promo_code, workflow.info().workflow_id),
            id=promo_claim_workflow_id(inp.order_id),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            search_attributes=attributes(
                CUSTOMER_ID.value_set(inp.customer_id), ORDER_ID.value_set(inp.order_id)
            ),
        )
        await workflow.wait_condition(lambda: self.promo_claim is not None)
        if self.promo_claim.state == "claimed" and self.promo_claim.amount is not None:
            return self.promo_claim.amount
        return inp.price_amount

    async def _revoke_promotion(self) -> None:
        if self.promo_started and (self.promo_claim is None or self.promo_claim.state == "claimed"):
            await self._settle_claim(SettleClaim("revoke", reason=self.reason or "order failed"))

    async def _settle_claim(self, msg: SettleClaim) -> None:
        try:
            await workflow.get_external_workflow_handle(promo_claim_workflow_id(self.inp.order_id)).signal(
                PromoClaimWorkflow.settle, msg
            )
        except Exception:  # noqa: BLE001 - the claim already ended (refused): nothing to settle
            workflow.logger.info("promo claim of %s already closed", self.inp.order_id)

    async def _undo_abandoned(self, inp: OrderInput) -> OrderResult:
        """The earlier run was terminated mid-way: every undo step is keyed by what the database
        and the deterministic ids say (charge key, service order, line), and each is idempotent, so
        running them all gives back whatever that run had taken and no more."""
        self.v2, self.som_started, self.state = True, True, "failing"
        self.reason = (
            "The order's workflow was terminated before it finished; everything it held was given back."
        )
        held = await workflow.execute_local_activity_method(
            ServiceOrderActivities.order_holdings, OrderHoldingsRequest(inp.order_id), **DB_STEP
        )
        if held.state != "in_progress":  # an unstarted order is the order sweeper's
            self.state = held.state
            return OrderResult(inp.order_id, held.state, held.subscription_id)
        self.service_order_id, self.subscription_id = held.service_order_id, held.subscription_id
        undo = Compensations()
        if held.service_order_id:
            so_id = held.service_order_id
            undo.add(lambda: self._release(so_id))
            if held.iccid:
                iccid = held.iccid
                undo.add(lambda: self._cancel_esim(iccid))
            undo.add(lambda: self._deprovision(so_id))
        undo.add(lambda: self._refund(f"{order_workflow_id(inp.order_id)}/activation"))
        undo.add(self._end_line)
        if held.subscription_id:
            sub_id = held.subscription_id
            undo.add(lambda: self._stop_line_workflow(sub_id))
        await self._fail(inp, undo, self.reason)
        self.state = "failed"
        return OrderResult(inp.order_id, "failed", reason=self.reason)

    async def _fail(self, inp: OrderInput, undo: Compensations, reason: str) -> None:
        await undo.unwind()
        await workflow.execute_local_activity_method(
            OrderActivities.fail_order, OrderFailed(inp.order_id, reason), **DB_STEP
        )

    async def _release(self, so_id: str) -> None:
        if not self.v2:
            await workflow.execute_local_activity_method(
                ServiceOrderActivities.release_resources,
                ServiceOrderFailed(so_id, self.reason or "order failed"),
                **DB_STEP,
            )
            return
        # A still-running eSIM flow gives its profile back itself once it has ended; otherwise
        # the profile is cancelled at the SM-DP+ (a regular activity) and released here.
        if not self.esim_signalled:
            await self._until_done(
                "esim_release",
                "provisioning_exception",
                lambda: workflow.execute_activity_method(
                    ServiceOrderActivities.cancel_held_profiles,
                    ServiceOrderRef(so_id),
                    **compensation_call(self.inp.compensation_patience_seconds),
                ),
                f"eSIM profile of failed order {self.inp.order_id} not cancelled at the SM-DP+",
                "The order failed; its eSIM profile could not be cancelled at the SM-DP+, so it is "
                "not yet back in the pool. Retry, or resolve once it is cancelled by hand.",
            )
        await workflow.execute_local_activity_method(
            ServiceOrderActivities.release_resources,
            ServiceOrderFailed(
                so_id, self.reason or "order failed", keep_esim=self.esim_signalled, smdp_cancelled=True
            ),
            **DB_STEP,
        )

    async def _refund(self, key: str) -> None:
        if not self.v2:
            await workflow.execute_activity_method(
                OrderActivities.refund_charge, RefundRequest(key), **EXTERNAL_CALL
            )
            return
        inp = self.inp
        await self._until_done(
            "refund",
            "payment_exception",
            lambda: workflow.execute_activity_method(
                OrderActivities.refund_charge,
                RefundRequest(key),
                **compensation_call(inp.compensation_patience_seconds),
            ),
            f"Refund of failed order {inp.order_id} keeps failing",
            f"Order {inp.order_id} failed and its activation charge ({inp.price_amount} "
            f"{inp.price_currency}, key {key}) must be refunded, but the refund has failed for "
            f"{inp.compensation_patience_seconds / 60:.0f} min. The order keeps retrying on "
            "`bss ticket retry`; `bss ticket resolve` once the money is back by hand.",
        )

    async def _deprovision(self, so_id: str) -> None:
        inp = self.inp
        await self._until_done(
            "network_undo",
            "provisioning_exception",
            lambda: workflow.execute_activity_method(
                ProvisioningActivities.deprovision_service_order,
                DeprovisionOrder(so_id, self.reason or "order failed", inp.task_deadline_seconds),
                **compensation_call(inp.compensation_patience_seconds),
            ),
            f"Network undo of failed order {inp.order_id} keeps failing",
            f"Order {inp.order_id} failed after its line was provisioned; removing it from the HLR, "
            "PCRF and OCS keeps failing. Retry, or resolve once it is removed by hand.",
        )

    async def _end_line(self) -> None:
        await workflow.execute_local_activity_method(
            ServiceOrderActivities.end_order_line, OrderLineEnd(self.inp.order_id), **DB_STEP
        )

    async def _stop_line_workflow(self, sub_id: str) -> None:
        try:
            await workflow.get_external_workflow_handle(subscription_workflow_id(sub_id)).cancel()
        except Exception:  # noqa: BLE001 - never started, or already closed: nothing to stop
            workflow.logger.info("line workflow of %s already closed", sub_id)

    async def _until_done(self, topic, ticket_type, call, subject: str, description: str) -> None:
        """Run an undo step until it is done; when it keeps failing, ask an operator and wait:
        `retry` runs it again, `resolve` means it was done by hand."""
        while True:
            try:
                await call()
                return
            except ActivityError as err:
                decision = await self.attention.ask(
                    AttentionTicket(
                        topic,
                        ticket_type,
                        subject,
                        f"{description} Last error: {reason_of(err)}",
                        customer_id=self.inp.customer_id,
                        order_id=self.inp.order_id,
                        subscription_id=self.subscription_id,
                    )
                )
                if decision.action == "resolve":
                    return

    async def _cancel_esim(self, iccid: str) -> None:
        try:
            await workflow.get_external_workflow_handle(esim_workflow_id(iccid)).signal(
                EsimProvisioningWorkflow.cancel, CancelEsim(self.reason or "order failed")
            )
            self.esim_signalled = True
        except Exception:  # noqa: BLE001 - already closed: nothing left to stop
            workflow.logger.info("eSIM workflow %s already closed", iccid)

    @workflow.signal
    def operator_decision(self, msg: OperatorDecision) -> None:
        self.attention.decide(msg)

    @workflow.signal
    def promotion_claimed(self, msg: ClaimResult) -> None:
        self.promo_claim = msg

    @workflow.update
    async def cancel(self, msg: CancelOrder) -> OrderStatus:
        self.cancel_requested = msg
        await workflow.wait_condition(lambda: self.state in {"cancelled", "failed", "completed"})
        return self.status()

    @cancel.validator
    def _validate_cancel(self, msg: CancelOrder) -> None:
        if self.som_started:
            raise ApplicationError(
                "The order can no longer be cancelled: service provisioning has started.",
                type="order.cancel.forbidden_after_som_started",
            )
        if self.state in {"cancelled", "failed", "failing", "completed"}:
            raise ApplicationError(f"The order is already {self.state}.", type="order.transition.invalid")

    @workflow.query
    def status(self) -> OrderStatus:
        return OrderStatus(
            workflow.info().workflow_id.removeprefix("order-"),
            self.state,
            self.som_started,
            self.service_order_id,
            self.subscription_id,
            self.reason,
        )


def _readable(err: BaseException) -> str:
    if isinstance(err, asyncio.CancelledError):
        return "The order was cancelled while in progress; everything it held was released."
    code = rule_code(err)
    message = reason_of(err)
    return f"{message} [{code}]" if code and code not in message else message

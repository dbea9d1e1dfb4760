"""Product order (COM, TMF622): the customer's order, from acknowledged to an active line or to a
clean failure. A saga: every step that takes something registers how to give it back first."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.base import reason_of, rule_code
    from activities.ordering import (
        ChargeRequest,
        NewServiceOrder,
        NewSubscription,
        OrderActivities,
        OrderCompleted,
        OrderFailed,
        OrderRef,
        RefundRequest,
    )
    from activities.service_ordering import ServiceOrderActivities, ServiceOrderFailed
    from workflows.common import (
        CUSTOMER_ID,
        DB_STEP,
        EXTERNAL_CALL,
        MSISDN,
        ORDER_ID,
        SUBSCRIPTION_ID,
        attributes,
        condition_or_timeout,
    )
    from workflows.esim_provisioning import CancelEsim, EsimProvisioningWorkflow, esim_workflow_id
    from workflows.service_order import ServiceOrderInput, ServiceOrderWorkflow, service_order_workflow_id
    from workflows.subscription import SubscriptionInput, SubscriptionWorkflow, subscription_workflow_id


@dataclass
class OrderInput:
    order_id: str
    customer_id: str
    offering_id: str
    price_id: str
    price_amount: str
    price_currency: str
    msisdn_preference: str | None = None
    promo_code: str | None = None
    # TMF622 requestedStartDate: work waits until then, and the order can be cancelled meanwhile.
    requested_start: str | None = None
    task_deadline_seconds: float = 10.0


@dataclass
class OrderResult:
    order_id: str
    state: str
    subscription_id: str | None = None
    msisdn: str | None = None
    iccid: str | None = None
    reason: str | None = None


@dataclass
class CancelOrder:
    reason: str = "cancelled by request"


@dataclass
class OrderStatus:
    order_id: str
    state: str
    som_started: bool
    service_order_id: str | None
    subscription_id: str | None
    reason: str | None


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

    @workflow.run
    async def run(self, inp: OrderInput) -> OrderResult:
        undo = Compensations()
        try:
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
        except (ApplicationError, ActivityError, ChildWorkflowError, asyncio.CancelledError) as err:
            self.reason = _readable(err)
            self.state = "failed"
            await asyncio.shield(asyncio.ensure_future(self._fail(inp, undo, self.reason)))
            return OrderResult(inp.order_id, "failed", reason=self.reason)

    async def _fulfil(self, inp: OrderInput, undo: Compensations) -> OrderResult:
        self.som_started = True
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
        workflow.upsert_search_attributes([MSISDN.value_set(so.msisdn)])
        undo.add(lambda: self._cancel_esim(so.iccid))

        charge_key = f"{workflow.info().workflow_id}/activation"
        undo.add(lambda: self._refund(charge_key))
        charge = await workflow.execute_activity_method(
            OrderActivities.charge_activation,
            ChargeRequest(inp.order_id, inp.customer_id, inp.price_amount, inp.price_currency, charge_key),
            **EXTERNAL_CALL,
        )
        if not charge.approved:
            raise ApplicationError(
                f"The card on file was declined ({charge.decline_reason or 'no reason given'}); nothing was charged.",
                type="order.payment_declined",
                non_retryable=True,
            )
        sub_id = await workflow.execute_local_activity_method(
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
        self.subscription_id = sub_id
        workflow.upsert_search_attributes([SUBSCRIPTION_ID.value_set(sub_id)])
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
        return OrderResult(inp.order_id, "completed", sub_id, so.msisdn, so.iccid)

    async def _fail(self, inp: OrderInput, undo: Compensations, reason: str) -> None:
        await undo.unwind()
        await workflow.execute_local_activity_method(
            OrderActivities.fail_order, OrderFailed(inp.order_id, reason), **DB_STEP
        )

    async def _release(self, so_id: str) -> None:
        await workflow.execute_local_activity_method(
            ServiceOrderActivities.release_resources,
            ServiceOrderFailed(so_id, self.reason or "order failed"),
            **DB_STEP,
        )

    async def _refund(self, key: str) -> None:
        await workflow.execute_activity_method(
            OrderActivities.refund_charge, RefundRequest(key), **EXTERNAL_CALL
        )

    async def _cancel_esim(self, iccid: str) -> None:
        try:
            await workflow.get_external_workflow_handle(esim_workflow_id(iccid)).signal(
                EsimProvisioningWorkflow.cancel, CancelEsim(self.reason or "order failed")
            )
        except Exception:  # noqa: BLE001 - already closed: nothing left to stop
            workflow.logger.info("eSIM workflow %s already closed", iccid)

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
        if self.state in {"cancelled", "failed", "completed"}:
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

"""A number port, one workflow per request (`port-PORT-…`), from acknowledged to its end.

Port-in: the clearinghouse validates the number with the donor (a refusal ends the request
`rejected` with the donor's reason; a flaky clearinghouse is retried) → `validated` → an operator
approves or rejects (updates with validators, refused in the wrong state) → a durable timer to the
requested port date (business time) → the number joins our pool, held for the port, and goes to
its line: a new line's order names it; an existing line swaps its MSISDN (HLR and PCRF
re-provisioned, the line's workflow told) and its old number rests in quarantine → `completed`.

Port-out: a donor's request for one of our numbers is `validated` at once (the API checked the
number is on a live line of ours) → operator approval → on the port date the number becomes
`ported_out` for good and the line is terminated through its own workflow (reason `ported_out`).

No approval by the port date plus a grace ends the request `failed` (port.window.expired). A step
that cannot be done asks an operator (workflows/attention.py): the workflow never ends Failed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.attention import AttentionTicket
    from activities.base import reason_of
    from activities.porting import (
        LineNumbers,
        NumberSwap,
        OrderOutcome,
        OrderRef,
        PortCheck,
        PortCheckResult,
        PortingActivities,
        PortMove,
        PortOrder,
        PortRef,
        PortView,
    )
    from activities.provisioning import LineTask, ProvisioningActivities
    from core.context import RequestContext
    from workflows.attention import Attention, OperatorDecision
    from workflows.common import DB_STEP, SUBSCRIPTION_ID, condition_or_timeout
    from workflows.subscription import MsisdnChanged, subscription_workflow_id

APPROVAL_GRACE_SECONDS = 2 * 86400.0
# How long after placing the new line's order its outcome is read again: soon at first (an order
# takes seconds), then every half minute.
ORDER_POLLS = (2.0, 5.0, 10.0, 30.0)
WINDOW_EXPIRED = "port.window.expired"
FINAL = ("completed", "rejected", "failed")

# The clearinghouse: a transient fault is retried for a while (then an operator is asked).
CLEARINGHOUSE_CALL = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=10
    ),
}
# Calls that start other work (the new line's order) and network changes to the line.
REMOTE_STEP = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=10
    ),
}


@dataclass
class PortInput:
    port_id: str
    direction: str
    msisdn: str
    customer_id: str | None = None
    approval_grace_seconds: float = APPROVAL_GRACE_SECONDS
    # Test stacks only: business time minus workflow time (ClockChanged); 0 everywhere else.
    clock_skew_seconds: float = 0.0


@dataclass
class ApprovePort:
    requested_by: RequestContext | None = None


@dataclass
class RejectPort:
    reason: str
    requested_by: RequestContext | None = None


@dataclass
class PortStatus:
    port_id: str
    state: str
    reason: str | None = None
    order_id: str | None = None
    subscription_id: str | None = None


@dataclass
class ClockChangedPort:
    """The same shape as workflows.subscription.ClockChanged: one fan-out (ops/clock.py) signals both."""

    business_now: str


def port_workflow_id(port_id: str) -> str:
    return f"port-{port_id}"


@workflow.defn
class PortWorkflow:
    def __init__(self) -> None:
        self.inp: PortInput | None = None
        self.view: PortView | None = None
        self.state = "acknowledged"
        self.reason: str | None = None
        self.executing = False  # the number is moving: too late to reject
        self.lock = asyncio.Lock()
        self.wake = False
        self.skew: float | None = None
        self.attention = Attention()

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: PortInput) -> PortStatus:
        self.inp = inp
        if self.skew is None:
            self.skew = inp.clock_skew_seconds
        while self.view is None:
            self.view = await self._step(
                "read",
                "could not read its request",
                lambda: workflow.execute_local_activity_method(
                    PortingActivities.port_view, PortRef(inp.port_id), **DB_STEP
                ),
            )
        if self.view.business_now:
            self._follow_clock(self.view.business_now)
        self.state = self.view.state
        if self.state == "acknowledged":
            await self._validate()
        if self.state == "validated" and await self._await_approval():
            await self._until_port_date()
        if self.state == "approved":
            async with self.lock:
                self.executing = True
            if inp.direction == "port_in" and self.view.offering_id:
                await self._to_new_line()
            elif inp.direction == "port_in":
                await self._to_existing_line()
            else:
                await self._port_out()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    def _now(self) -> datetime:
        return workflow.now() + timedelta(seconds=self.skew or 0.0)

    def _follow_clock(self, business_now: str) -> None:
        self.skew = (datetime.fromisoformat(business_now) - workflow.now()).total_seconds()

    def _port_at(self) -> datetime:
        return datetime.fromisoformat(self.view.requested_port_date)

    async def _validate(self) -> None:
        inp = self.inp
        if inp.direction == "port_in":
            answer: PortCheckResult | None = await self._step(
                "clearinghouse",
                "the clearinghouse cannot validate the port-in",
                lambda: workflow.execute_activity_method(
                    PortingActivities.validate_port_in,
                    PortCheck(inp.port_id, inp.msisdn, self.view.donor_carrier),
                    **CLEARINGHOUSE_CALL,
                ),
                "retry: ask the clearinghouse again; resolve: the donor confirmed by hand, carry on.",
            )
            if answer is not None and not answer.accepted:
                await self._move(
                    "reject", f"The donor refused the port: {answer.reason}", f"port.donor.{answer.reason}"
                )
                return
        async with self.lock:
            if self.state == "acknowledged":  # an operator may have rejected it meanwhile
                await self._move("validate")

    async def _await_approval(self) -> bool:
        """Wait for the operator until the port date plus the grace; False when the request ended."""
        deadline = self._port_at() + timedelta(seconds=self.inp.approval_grace_seconds)
        while self.state == "validated":
            left = (deadline - self._now()).total_seconds()
            if left <= 0:
                async with self.lock:
                    if self.state == "validated":
                        await self._move(
                            "fail",
                            f"No approval came by {deadline.isoformat()} (the port date plus the grace).",
                            WINDOW_EXPIRED,
                        )
                break
            self.wake = False
            await condition_or_timeout(lambda: self.wake or self.state != "validated", left)
        return self.state == "approved"

    async def _until_port_date(self) -> None:
        while self.state == "approved":
            left = (self._port_at() - self._now()).total_seconds()
            if left <= 0:
                return
            self.wake = False
            await condition_or_timeout(lambda: self.wake or self.state != "approved", left)

    # ------------------------------------------------------------------ the moves

    async def _to_new_line(self) -> None:
        """The number is held for the port; the new line's order names it and takes it."""
        port_id = self.inp.port_id
        await self._take_number_in()
        attempt = 1
        while True:
            order_id = await self._step(
                f"order/{attempt}",
                "could not place the new line's order",
                lambda n=attempt: workflow.execute_activity_method(
                    PortingActivities.place_port_order, PortOrder(port_id, n), **REMOTE_STEP
                ),
                "retry: place the order again; resolve: give the port up (it ends failed).",
            )
            if order_id is None:
                await self._move("fail", "The new line's order could not be placed.", "port.order.not_placed")
                return
            outcome = await self._order_outcome(order_id)
            if outcome.state == "completed":
                if outcome.subscription_id:
                    workflow.upsert_search_attributes([SUBSCRIPTION_ID.value_set(outcome.subscription_id)])
                await self._move("complete", order_id=order_id, subscription_id=outcome.subscription_id)
                return
            # The failed order gave the number back to the pool: it is held for the port again, so
            # it is never sold to someone else while an operator decides.
            await self._take_number_in()
            decision = await self.attention.ask(
                self._ticket(
                    f"order-failed/{attempt}",
                    f"{port_id}: the new line's order {order_id} {outcome.state}",
                    f"{outcome.reason or outcome.state}\nThe number {self.inp.msisdn} stays held for {port_id}.\n"
                    "retry: place a new order (e.g. once the customer's card is fixed); "
                    "resolve: give the port up (it ends failed; the number stays held, off sale).",
                )
            )
            if decision.action != "retry":
                await self._move(
                    "fail",
                    f"The new line's order {order_id} {outcome.state}: {outcome.reason}",
                    "port.order.failed",
                )
                return
            attempt += 1

    async def _order_outcome(self, order_id: str) -> OrderOutcome:
        polls = 0
        while True:
            outcome: OrderOutcome = await self._step(
                "order-outcome",
                "could not read its order",
                lambda: workflow.execute_local_activity_method(
                    PortingActivities.port_order_outcome, OrderRef(order_id), **DB_STEP
                ),
            )
            if outcome is not None and outcome.state in ("completed", "failed", "cancelled"):
                return outcome
            await workflow.sleep(ORDER_POLLS[min(polls, len(ORDER_POLLS) - 1)])
            polls += 1

    async def _take_number_in(self) -> None:
        await self._step(
            "number-in",
            "could not add the ported number to the pool",
            lambda: workflow.execute_local_activity_method(
                PortingActivities.take_number_in, PortRef(self.inp.port_id), **DB_STEP
            ),
        )

    async def _to_existing_line(self) -> None:
        """Re-provision the line under the new number, swap it, and let the old number go."""
        port_id, new = self.inp.port_id, self.inp.msisdn
        line: LineNumbers | None = await self._step(
            "line",
            "could not read the line",
            lambda: workflow.execute_local_activity_method(
                PortingActivities.port_line_numbers, PortRef(port_id), **DB_STEP
            ),
        )
        if line is None or line.state not in ("active", "blocked"):
            await self._move(
                "fail",
                f"The line {self.view.subscription_id} is no longer live; the number was not ported to it.",
                "port.in.line_not_live",
            )
            return
        if line.msisdn != new:
            await self._take_number_in()
            why = f"port-in {port_id}"
            for task, offering in (("HLR_PROVISION", ""), ("PCRF_POLICY_PUSH", line.offering_id)):
                await self._network(LineTask(task, new, why, imsi=line.imsi, offering_id=offering))
            old = await self._step(
                "swap",
                "could not give the line its new number",
                lambda: workflow.execute_local_activity_method(
                    PortingActivities.swap_line_number,
                    NumberSwap(port_id, line.subscription_id, new),
                    **DB_STEP,
                ),
            )
            await self._tell_line(line.subscription_id, new)
            if old:
                for task in ("PCRF_POLICY_REMOVE", "HLR_DEPROVISION"):
                    await self._network(LineTask(task, old, f"{why}: replaced by {new}"))
        await self._move("complete", subscription_id=line.subscription_id)

    async def _network(self, task: LineTask) -> None:
        await self._step(
            f"net/{task.task_type}/{task.msisdn}",
            f"{task.task_type} for {task.msisdn} failed",
            lambda: workflow.execute_activity_method(
                ProvisioningActivities.run_line_task, task, **REMOTE_STEP
            ),
            "retry: run the network step again; resolve: it was done by hand, carry on.",
            "provisioning_exception",
        )

    async def _tell_line(self, subscription_id: str, msisdn: str) -> None:
        try:
            await workflow.get_external_workflow_handle(subscription_workflow_id(subscription_id)).signal(
                "msisdn_changed", MsisdnChanged(msisdn)
            )
        except Exception:  # noqa: BLE001 - a line without a running workflow reads its number at start
            workflow.logger.info("the workflow of %s is not running", subscription_id)

    async def _port_out(self) -> None:
        state = await self._step(
            "port-out",
            "could not end the ported-out line",
            lambda: workflow.execute_activity_method(
                PortingActivities.end_ported_out_line, PortRef(self.inp.port_id), **REMOTE_STEP
            ),
            "retry: end the line again; resolve: it was ended by hand, carry on.",
        )
        del state
        await self._move("complete", subscription_id=self.view.subscription_id)

    # ------------------------------------------------------------------ plumbing

    async def _move(
        self,
        trigger: str,
        reason: str | None = None,
        reason_code: str | None = None,
        requested_by: RequestContext | None = None,
        order_id: str | None = None,
        subscription_id: str | None = None,
    ) -> None:
        view = await self._step(
            f"move/{trigger}",
            f"could not record the request as {trigger}d",
            lambda: workflow.execute_local_activity_method(
                PortingActivities.move_port,
                PortMove(
                    self.inp.port_id, trigger, reason, reason_code, requested_by, order_id, subscription_id
                ),
                **DB_STEP,
            ),
        )
        if view is not None:
            self.view = view
            self.state, self.reason = view.state, view.reason

    async def _step(self, topic: str, what: str, call, how: str = "", ticket_type: str = "configuration"):
        """Run an activity; an error it could not retry away asks an operator: `retry` runs it
        again, `resolve` goes on without it (None)."""
        while True:
            try:
                return await call()
            except ActivityError as err:
                decision = await self.attention.ask(
                    self._ticket(
                        topic,
                        f"{self.inp.port_id}: {what}",
                        f"{reason_of(err)}\n{how or 'retry: run the step again; resolve: skip it.'}",
                        ticket_type,
                    )
                )
                if decision.action != "retry":
                    return None

    def _ticket(
        self, topic: str, subject: str, description: str, ticket_type: str = "configuration"
    ) -> AttentionTicket:
        return AttentionTicket(
            f"port/{topic}",
            ticket_type,
            subject[:200],
            description,
            customer_id=self.inp.customer_id,
            subscription_id=self.view.subscription_id if self.view else None,
        )

    # ------------------------------------------------------------------ updates, signals, query

    @workflow.update
    async def approve(self, msg: ApprovePort) -> PortStatus:
        async with self.lock:
            if self.state == "validated":
                await self._move("approve", requested_by=msg.requested_by)
            self.wake = True
            return self.status()

    @approve.validator
    def _check_approve(self, msg: ApprovePort) -> None:
        if self.state != "validated":
            raise ApplicationError(
                f"Only a validated port request can be approved; this one is {self.state}.",
                type="port.approve.invalid_state",
            )

    @workflow.update
    async def reject(self, msg: RejectPort) -> PortStatus:
        async with self.lock:
            if self.state in ("acknowledged", "validated", "approved") and not self.executing:
                await self._move(
                    "reject", msg.reason.strip(), "port.rejected_by_operator", requested_by=msg.requested_by
                )
            self.wake = True
            return self.status()

    @reject.validator
    def _check_reject(self, msg: RejectPort) -> None:
        if not (msg.reason or "").strip():
            raise ApplicationError("A rejection needs a reason.", type="port.reject.reason_required")
        if self.state in FINAL or self.executing:
            raise ApplicationError(
                f"The port request is {self.state if self.state in FINAL else 'being carried out'}; "
                "it can no longer be rejected.",
                type="port.reject.invalid_state",
            )

    @workflow.signal(name="operator_decision")
    def operator_decision(self, msg: OperatorDecision) -> None:
        self.attention.decide(msg)

    @workflow.signal
    def clock_changed(self, msg: ClockChangedPort) -> None:
        """The test clock moved: look again at the port date and the approval window."""
        self._follow_clock(msg.business_now)
        self.wake = True

    @workflow.query
    def status(self) -> PortStatus:
        view = self.view
        return PortStatus(
            self.inp.port_id if self.inp else "",
            self.state,
            self.reason,
            view.order_id if view else None,
            view.subscription_id if view else None,
        )

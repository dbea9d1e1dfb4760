"""The line's own workflow, one per subscription (`subscription-SUB-…`), for its whole life.

An entity workflow: it sleeps until the period ends (or a day pass expires), renews at the
snapshotted price, and continues-as-new every period so its history stays short. Changes come
in as updates with validators, so the API and the agent get a yes or a policy error at once;
rating signals `exhausted` after it has blocked the line in its own transaction.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.provisioning import EsimOrderCancel, ProvisioningActivities
    from activities.subscription import (
        CancelPlanChangeRequest,
        DayPassExpiry,
        LineRef,
        LineState,
        PlanChangeRequest,
        RenewalResult,
        RenewNowRequest,
        RenewRequest,
        SubscriptionActivities,
        TerminateRequest,
        VasRequest,
        VasResult,
    )
    from workflows.attention import Attention, OperatorDecision
    from workflows.common import DB_STEP, EXTERNAL_CALL, condition_or_timeout
    from workflows.esim_provisioning import CancelEsim, EsimProvisioningWorkflow, esim_workflow_id
    from workflows.line_faults import (
        TERMINATE_NETWORK,
        LineFaults,
        RenewalProgress,
        at_instant,
    )
    from workflows.line_messages import (  # noqa: F401 - re-exported
        CancelPlanChange,
        ClockChanged,
        Exhausted,
        MsisdnChanged,
        PurchaseVas,
        RenewNow,
        SchedulePlanChange,
        SubscriptionInput,
        SubscriptionStatus,
        Terminate,
    )

# Behind this patch (histories without its marker keep the first version): a renewal the gateway
# cannot take retries for as long as it takes, through a grace period and then a `renewal_pending`
# block; an activity error never fails the workflow (it asks an operator); continue-as-new when
# Temporal suggests it; a blocked line is barred at the PCRF; terminate stops the eSIM flow,
# cancels the profile's order at the SM-DP+ in a regular activity and deprovisions the network.
LINE_SURVIVES_FAULTS = "line-survives-faults"
# Behind this patch, a renewal (scheduled or renew_now) is charged at the line's promotion price
# while its discount periods last, and counts one down; a plan change ends the promotion.
LINE_PROMO_PERIODS = "line-promo-periods"
# Behind this patch a renewed line keeps running in the same run and continues as new when Temporal
# suggests it (its history grew long) or after RENEWALS_PER_RUN, not after every period: a new run cost
# a workflow start, a first task and a fresh sandbox instance per renewal (bench/renewals.py).
LINE_KEEPS_RUN_ACROSS_PERIODS = "line-keeps-its-run-across-periods"
# ...and still continues as new after this many renewals in one run, so a line evicted from a
# worker's cache (or after a restart) never replays more than a year of history.
RENEWALS_PER_RUN = 12
# Behind this patch (asked once, at the start of a run; it implies the three patches above, which a
# run carrying it no longer asks: one marker per run instead of three) the scheduled renewal is a
# local activity that answers with the line as it left it: the timer's workflow task charges,
# applies and sleeps again, with no activity task, no second workflow task and no read of the line
# after it. The charge is idempotent by the period's key, so a crash that re-runs it takes the
# money once; its retries beyond LOCAL_RETRY_THRESHOLD wait on timers (workflow/line_faults.py), so
# an outage never holds a workflow task open.
LINE_RENEWS_IN_ONE_TASK = "line-renews-in-one-task"


def subscription_workflow_id(subscription_id: str) -> str:
    return f"subscription-{subscription_id}"


@workflow.defn
class SubscriptionWorkflow(LineFaults):
    def __init__(self) -> None:
        self.inp: SubscriptionInput | None = None
        self.line: LineState | None = None
        self.lock = asyncio.Lock()
        self.wake = False
        self.skew: float | None = None  # seconds; see _now()
        self.attention = Attention()
        self._faults_patch: bool | None = None
        self._keep_run: bool | None = None
        self._one_task: bool | None = None
        self._run_renewals = 0

    @workflow.run
    async def run(self, inp: SubscriptionInput) -> SubscriptionStatus:
        self.inp = inp
        if self.skew is None:  # a ClockChanged handled before run() started is newer
            self.skew = inp.clock_skew_seconds
        if self._patched():
            return await self._run_surviving_faults(inp)
        await self._refresh()
        while self.line.state != "terminated":
            deadline = self._next_deadline()
            timeout = None if deadline is None else max(0.0, (deadline - self._now()).total_seconds())
            self.wake = False
            await condition_or_timeout(lambda: self.wake or self.line.state == "terminated", timeout)
            if self.line.state == "terminated":
                break
            async with self.lock:
                await self._expire_day_passes()
                if not inp.renewal_declined and self._now() >= at_instant(self.line.current_period_end):
                    outcome = await self._renew()
                    if outcome.status == "renewed":
                        break  # a new period: continue as new below
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self.line.state == "terminated":
            return self.status()
        workflow.continue_as_new(self._carry_over())

    def _patched(self) -> bool:
        """Asked first at the start of a run (or by an update handled before it)."""
        if self._faults_patch is None:
            self._faults_patch = self._renews_in_one_task() or workflow.patched(LINE_SURVIVES_FAULTS)
        return self._faults_patch

    def _renews_in_one_task(self) -> bool:
        """Patch LINE_RENEWS_IN_ONE_TASK, asked once per run, where the run first asks _patched()."""
        if self._one_task is None:
            self._one_task = workflow.patched(LINE_RENEWS_IN_ONE_TASK)
        return self._one_task

    async def _run_surviving_faults(self, inp: SubscriptionInput) -> SubscriptionStatus:
        await self._refresh()
        while self.line.state != "terminated" and not self._continue_suggested():
            await self._sync_bar()
            if inp.renewal is None:
                deadline = self._next_deadline()
                timeout = None if deadline is None else max(0.0, (deadline - self._now()).total_seconds())
                self.wake = False
                await condition_or_timeout(
                    lambda: (
                        self.wake
                        or self.line.state == "terminated"
                        or self._bar_due()
                        or self._continue_suggested()
                    ),
                    timeout,
                )
                if self.line.state == "terminated" or self._continue_suggested():
                    break
                async with self.lock:
                    await self._expire_day_passes()
                if not inp.renewal_declined and self._now() >= at_instant(self.line.current_period_end):
                    start = self.line.current_period_end
                    inp.renewal = RenewalProgress(start, f"{workflow.info().workflow_id}/renewal/{start}")
            if inp.renewal is not None:
                outcome = await self._renew_patiently()
                if outcome == "renewed":
                    self._run_renewals += 1
                if outcome == "continue" or (
                    outcome == "renewed" and (not self._keeps_run() or self._run_renewals >= RENEWALS_PER_RUN)
                ):
                    break  # a long history, a year of renewals (before the patch: each): continue as new
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self.line.state == "terminated":
            await self._deprovision()
            return self.status()
        workflow.continue_as_new(self._carry_over())

    def _keeps_run(self) -> bool:
        """Asked once per run, at its first renewal (patch LINE_KEEPS_RUN_ACROSS_PERIODS)."""
        if self._keep_run is None:
            self._keep_run = self._renews_in_one_task() or workflow.patched(LINE_KEEPS_RUN_ACROSS_PERIODS)
        return self._keep_run

    def _promo_renewals(self) -> bool:
        return self._renews_in_one_task() or workflow.patched(LINE_PROMO_PERIODS)

    def _continue_suggested(self) -> bool:
        """Temporal's hint that the history grew long (a blocked line's signals add up too); not
        while an operator's decision is awaited: the ticket names this run's wait."""
        return workflow.info().is_continue_as_new_suggested() and not self.attention.waiting

    def _now(self) -> datetime:
        """Business time. Workflow time everywhere but on a test stack, whose moved clock is
        followed through the skew (deterministic: it only changes in history-recorded events)."""
        return workflow.now() + timedelta(seconds=self.skew or 0.0)

    def _follow_clock(self, business_now: str) -> None:
        self.skew = (at_instant(business_now) - workflow.now()).total_seconds()

    def _next_deadline(self) -> datetime | None:
        moments = [at_instant(t) for t in self.line.day_passes.values()]
        if not self.inp.renewal_declined:
            moments.append(at_instant(self.line.current_period_end))
        return min(moments) if moments else None

    async def _refresh(self) -> None:
        line = await self._persist(
            "line-state",
            "service_outage",
            f"{self.inp.subscription_id}: its workflow cannot read the line",
            lambda: workflow.execute_local_activity_method(
                SubscriptionActivities.line_state, LineRef(self.inp.subscription_id), **DB_STEP
            ),
        )
        if line is None:  # an operator resolved it: carry on with the line as last read
            if self.line is not None:
                return
            return await self._refresh()
        self._mirror(line)

    def _mirror(self, line: LineState) -> None:
        self.line = line
        if self.line.business_now:
            # A test stack's worker reports its clock: a line started after the clock moved (or
            # missed by the ClockChanged fan-out) follows it as well.
            self._follow_clock(self.line.business_now)

    async def _renew(self) -> RenewalResult:
        period_start = self.line.current_period_end
        outcome = await workflow.execute_activity_method(
            SubscriptionActivities.renew,
            RenewRequest(
                self.inp.subscription_id,
                period_start,
                f"{workflow.info().workflow_id}/renewal/{period_start}",
            ),
            **EXTERNAL_CALL,
        )
        self.inp.renewal_declined = outcome.status == "declined"
        if outcome.status == "renewed":
            self.inp.periods_renewed += 1
        await self._refresh()
        return outcome

    async def _expire_day_passes(self) -> None:
        due = [pid for pid, at in self.line.day_passes.items() if at_instant(at) <= self._now()]
        for purchase_id in due:
            await self._persist(
                f"day-pass/{purchase_id}",
                "service_outage",
                f"{self.inp.subscription_id}: day pass {purchase_id} cannot be ended",
                lambda pid=purchase_id: workflow.execute_local_activity_method(
                    SubscriptionActivities.expire_day_pass,
                    DayPassExpiry(self.inp.subscription_id, pid),
                    **DB_STEP,
                ),
            )
        if due:
            await self._refresh()

    def _carry_over(self) -> SubscriptionInput:
        inp = self.inp
        return SubscriptionInput(
            inp.subscription_id,
            inp.customer_id,
            self.line.offering_id,
            inp.msisdn,
            inp.iccid,
            self.line.current_period_end,
            inp.periods_renewed,
            inp.renewal_declined,
            self.skew or 0.0,
            inp.renewal,
            inp.barred,
        )

    @workflow.signal(name="operator_decision")
    def operator_decision(self, msg: OperatorDecision) -> None:
        self.attention.decide(msg)

    def _key(self, what: str) -> str:
        update = workflow.current_update_info()
        return f"{workflow.info().workflow_id}/{what}/{update.id if update else workflow.uuid4()}"

    # --- updates: a validator refuses at once from what the workflow knows; the handler's
    # activity applies the domain's own rules, whose refusal also fails the update.

    @workflow.update
    async def purchase_vas(self, msg: PurchaseVas) -> VasResult:
        async with self.lock:
            result = await workflow.execute_activity_method(
                SubscriptionActivities.purchase_vas,
                VasRequest(self.inp.subscription_id, msg.vas_offering_id, self._key("vas"), msg.requested_by),
                **EXTERNAL_CALL,
            )
            await self._refresh()
            self.wake = True
            return result

    @purchase_vas.validator
    def _check_vas(self, msg: PurchaseVas) -> None:
        self._refuse_if_terminated("subscription.vas_purchase.not_if_terminated")

    @workflow.update
    async def schedule_plan_change(self, msg: SchedulePlanChange) -> SubscriptionStatus:
        async with self.lock:
            await workflow.execute_local_activity_method(
                SubscriptionActivities.schedule_plan_change,
                PlanChangeRequest(self.inp.subscription_id, msg.offering_id, msg.requested_by),
                **DB_STEP,
            )
            await self._refresh()
            return self.status()

    @schedule_plan_change.validator
    def _check_plan_change(self, msg: SchedulePlanChange) -> None:
        self._refuse_while_renewing("subscription.plan_change.renewal_pending")
        if self.line is None or self.line.state != "active":
            raise ApplicationError(
                "Only an active line can change plan.", type="subscription.plan_change.not_eligible_state"
            )
        if msg.offering_id == self.line.offering_id:
            raise ApplicationError(
                f"The line is already on {msg.offering_id}.", type="subscription.plan_change.same_offering"
            )

    @workflow.update
    async def cancel_plan_change(self, msg: CancelPlanChange) -> SubscriptionStatus:
        async with self.lock:
            await workflow.execute_local_activity_method(
                SubscriptionActivities.cancel_plan_change,
                CancelPlanChangeRequest(self.inp.subscription_id, msg.requested_by),
                **DB_STEP,
            )
            await self._refresh()
            return self.status()

    @cancel_plan_change.validator
    def _check_cancel_plan_change(self, msg: CancelPlanChange) -> None:
        self._refuse_if_terminated("subscription.plan_change.not_eligible_state")
        self._refuse_while_renewing("subscription.plan_change.renewal_pending")

    @workflow.update
    async def renew_now(self, msg: RenewNow) -> RenewalResult:
        async with self.lock:
            outcome = await workflow.execute_activity_method(
                SubscriptionActivities.renew_now,
                RenewNowRequest(
                    self.inp.subscription_id, self._key("renew-now"), msg.requested_by, self._promo_renewals()
                ),
                **EXTERNAL_CALL,
            )
            if outcome.status == "renewed":
                self.inp.renewal_declined = False
                self.inp.periods_renewed += 1
            await self._refresh()
            self.wake = True
            return outcome

    @renew_now.validator
    def _check_renew_now(self, msg: RenewNow) -> None:
        self._refuse_if_terminated("subscription.renew.only_if_active_or_blocked")

    @workflow.update
    async def terminate(self, msg: Terminate) -> SubscriptionStatus:
        async with self.lock:
            if self._patched():
                # The eSIM flow stops and the SM-DP+ lets the profile's order go (a remote call, so a
                # regular activity) before the database recycles the profile; the network is
                # deprovisioned after the loop ends (see _deprovision).
                await self._stop_esim_flow(msg.reason)
                await workflow.execute_activity_method(
                    ProvisioningActivities.cancel_esim_order,
                    EsimOrderCancel(self.inp.iccid, msg.reason),
                    **TERMINATE_NETWORK,
                )
                await workflow.execute_local_activity_method(
                    SubscriptionActivities.end_line,
                    TerminateRequest(self.inp.subscription_id, msg.reason, msg.requested_by),
                    **DB_STEP,
                )
            else:
                await workflow.execute_local_activity_method(
                    SubscriptionActivities.terminate,
                    TerminateRequest(self.inp.subscription_id, msg.reason, msg.requested_by),
                    **DB_STEP,
                )
            await self._refresh()
            return self.status()

    @terminate.validator
    def _check_terminate(self, msg: Terminate) -> None:
        self._refuse_if_terminated("subscription.terminate.invalid_state")

    async def _stop_esim_flow(self, reason: str) -> None:
        """A profile never installed is still awaited by its eSIM workflow: it is recycled now."""
        try:
            await workflow.get_external_workflow_handle(esim_workflow_id(self.inp.iccid)).signal(
                EsimProvisioningWorkflow.cancel, CancelEsim(reason)
            )
        except Exception:  # noqa: BLE001 - already finished, nothing to stop
            workflow.logger.info("eSIM workflow for %s already closed", self.inp.iccid)

    def _refuse_while_renewing(self, code: str) -> None:
        """The renewal being charged has fixed its price: the plan cannot change under it."""
        if self.inp is not None and self.inp.renewal is not None:
            raise ApplicationError(
                "The line's renewal is still being charged; change the plan once it is settled.", type=code
            )

    def _refuse_if_terminated(self, code: str) -> None:
        if self.line is not None and self.line.state == "terminated":
            raise ApplicationError("The line is terminated.", type=code)

    @workflow.signal
    async def exhausted(self, msg: Exhausted) -> None:
        async with self.lock:
            await self._refresh()

    @workflow.signal
    def msisdn_changed(self, msg: MsisdnChanged) -> None:
        """Its number was swapped (the database has it already): bar and deprovision that one."""
        if self.inp is not None:
            self.inp.msisdn = msg.msisdn

    @workflow.signal
    def clock_changed(self, msg: ClockChanged) -> None:
        """The test clock moved: wake up and look again at what has fallen due."""
        self._follow_clock(msg.business_now)
        self.wake = True

    @workflow.query
    def status(self) -> SubscriptionStatus:
        inp, line = self.inp, self.line
        if inp is None or line is None:
            raise ApplicationError("The line is still starting.")
        return SubscriptionStatus(
            inp.subscription_id,
            line.state,
            line.state_reason,
            inp.msisdn,
            line.offering_id,
            line.current_period_end,
            line.pending_offering_id,
            inp.periods_renewed,
            dict(line.day_passes),
        )

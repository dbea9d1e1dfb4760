"""The faults a line's workflow survives (patch `line-survives-faults`), split from
workflows/subscription.py: the renewal that waits out a gateway or database outage through a grace
period and a `renewal_pending` block, the PCRF bar of a blocked line, the network deprovisioned at
the end, and the operator asked (workflows/attention.py) instead of the workflow failing.

`SubscriptionWorkflow` inherits these methods; they use its state (`self.inp`, `self.line`, …).
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
    from activities.provisioning import LineTask, ProvisioningActivities
    from activities.subscription import LineHold, RenewalResult, RenewRequest, SubscriptionActivities
    from workflows.attention import OperatorDecision
    from workflows.common import DB_STEP, condition_or_timeout

# Used when the line's state comes from an activity result that predates the renewal settings.
DEFAULT_GRACE_SECONDS = 3 * 86400.0
DEFAULT_ATTENTION_SECONDS = 7 * 86400.0
DEFAULT_RETRY_MAX_SECONDS = 300.0

# Network calls that must happen (barring, deprovisioning): retried without a cap on attempts.
NETWORK_STEP = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=2)
    ),
}
# The SM-DP+ cancel inside `terminate`: the caller waits, so it is bounded; failing, it fails the
# update (the line stays as it was and the request can be repeated), never the workflow.
TERMINATE_NETWORK = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": timedelta(minutes=2),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=10)
    ),
}
DEPROVISION_TASKS = ("OCS_BALANCE_REMOVE", "PCRF_POLICY_REMOVE", "HLR_DEPROVISION")
# The local renewal's retries wait inside its workflow task only while the next backoff is at most
# this (one retry, a second after the first attempt); every later retry waits on a timer, so the
# workflow task ends, signals and updates get in, and the server keeps the wait.
LOCAL_RETRY_THRESHOLD = timedelta(seconds=1)


@dataclass
class RenewalProgress:
    """A renewal that fell due and is not settled yet (our side could not charge it so far)."""

    period_start: str  # the period it pays for begins at the previous period's end (ISO)
    idempotency_key: str
    held: bool = False  # the grace period is over: the line is blocked `renewal_pending`


class LineFaults:
    # The renewal that survives outages, the PCRF bar, the network at the end, and the
    # operator asked instead of failing (all behind LINE_SURVIVES_FAULTS).

    async def _renew_patiently(self) -> str:
        """Charge the period that fell due, retrying for as long as it takes. The line stays
        active through the grace period, is then blocked `renewal_pending`, and after the
        attention delay a payment_exception ticket is opened while the retries go on. The charge
        uses one idempotency key per period, so whenever it goes through it is taken once.

        Answers renewed | declined | skipped (the period moved on) | stopped (line ended, or an
        operator settled it) | continue (continue as new now; the renewal carries over)."""
        r, line = self.inp.renewal, self.line
        # A renewal that starts late (a worker down for days) gets a minute before it blocks anyone.
        due, first_try = at_instant(r.period_start), self._now() + timedelta(minutes=1)
        grace_end = max(
            first_try, due + timedelta(seconds=line.renewal_grace_seconds or DEFAULT_GRACE_SECONDS)
        )
        patience = timedelta(seconds=line.renewal_attention_seconds or DEFAULT_ATTENTION_SECONDS)
        alarm_at = max(first_try, due + patience)
        topic = f"renewal/{r.period_start}"
        while True:
            charging = self._start_charging(r)
            asking: asyncio.Task | None = None
            stop: str | None = None
            while not charging.done():
                if self.line.state == "terminated":
                    stop = "stopped"
                elif self.line.current_period_end != r.period_start:
                    stop = "skipped"  # renewed by hand meanwhile
                elif asking is not None and asking.done():
                    stop = "decided"
                elif self._continue_suggested():
                    stop = "continue"
                if stop is not None:
                    break
                if not r.held and self._now() >= grace_end:
                    await self._hold(
                        RENEWAL_PENDING, f"renewal of {r.period_start} not charged yet", r.period_start
                    )
                    r.held = True
                    continue
                if asking is None and self._now() >= alarm_at:
                    asking = asyncio.ensure_future(
                        self.attention.ask(
                            self._ticket(
                                topic,
                                f"the renewal due {r.period_start} still cannot be charged",
                                "The charge keeps failing (gateway or database); it is still retried. "
                                "retry: try again now; resolve: stop charging this period (the line "
                                "stays blocked until renew_now).",
                            )
                        )
                    )
                    continue
                await self._sync_bar()
                deadline = grace_end if not r.held else (alarm_at if asking is None else None)
                timeout = None if deadline is None else max(0.0, (deadline - self._now()).total_seconds())
                await condition_or_timeout(
                    lambda charging=charging, asking=asking: (
                        charging.done()
                        or self.line.state == "terminated"
                        or self.line.current_period_end != r.period_start
                        or (asking is not None and asking.done())
                        or self._bar_due()
                        or self._continue_suggested()
                    ),
                    timeout,
                )
            if stop is not None and not charging.done():
                charging.cancel()
                await _settled(charging)
            if stop == "decided":
                if asking.result().action == "retry":
                    alarm_at = self._now() + patience  # the operator's retry gets its own patience
                    continue
                return await self._settle_by_hand()
            if stop is not None:
                await self._close_ask(topic, asking, f"no longer needed: {stop}")
                if stop == "skipped":
                    self.inp.renewal = None
                return stop
            try:
                outcome: RenewalResult = charging.result()
            except (ActivityError, ApplicationError) as err:
                # What retrying cannot fix (a bug, a refusal): ask an operator, on the open ticket if
                # any. (A local activity's own failure arrives as the ApplicationError it raised.)
                if asking is None:
                    asking = asyncio.ensure_future(
                        self.attention.ask(
                            self._ticket(
                                topic,
                                f"the renewal due {r.period_start} failed",
                                f"{reason_of(err)}\nretry: charge again (after a fix); resolve: stop "
                                "charging this period (the line stays blocked until renew_now).",
                            )
                        )
                    )
                decision = await asking
                if decision.action == "retry":
                    alarm_at = self._now() + patience
                    continue
                return await self._settle_by_hand()
            await self._close_ask(topic, asking, f"the renewal went through: {outcome.status}")
            self.inp.renewal = None
            self.inp.renewal_declined = outcome.status == "declined"
            if outcome.status == "renewed":
                self.inp.periods_renewed += 1
            if outcome.line is not None:
                self._mirror(outcome.line)  # the line as the renewal left it: no read after it
            else:
                await self._refresh()
            await self._sync_bar()
            return outcome.status

    def _start_charging(self, r: RenewalProgress):
        """The renewal's charge: a local activity in the timer's own workflow task (patch
        line-renews-in-one-task), else a regular activity."""
        if self._renews_in_one_task():
            return workflow.start_local_activity_method(
                SubscriptionActivities.renew,
                RenewRequest(self.inp.subscription_id, r.period_start, r.idempotency_key, True, True),
                local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                **self._renewal_options(),
            )
        return workflow.start_activity_method(
            SubscriptionActivities.renew,
            RenewRequest(self.inp.subscription_id, r.period_start, r.idempotency_key, self._promo_renewals()),
            **self._renewal_options(),
        )

    def _renewal_options(self) -> dict:
        cap = self.line.renewal_retry_max_seconds or DEFAULT_RETRY_MAX_SECONDS
        return {
            "start_to_close_timeout": timedelta(seconds=30),
            # No cap on attempts: an outage of ours must never end the line's renewals.
            "retry_policy": RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=cap),
            ),
        }

    async def _settle_by_hand(self) -> str:
        """An operator resolved the renewal: no more charging for this period. Unless the line was
        renewed meanwhile, it stays blocked (`renewal_declined`) until a paid renew_now."""
        period = self.inp.renewal.period_start
        self.inp.renewal = None
        await self._refresh()
        if self.line.state != "terminated" and self.line.current_period_end == period:
            await self._hold(RENEWAL_DECLINED, f"renewal of {period} settled by an operator", period)
            self.inp.renewal_declined = True
        await self._sync_bar()
        return "stopped"

    async def _close_ask(self, topic: str, asking: asyncio.Task | None, note: str) -> None:
        """The ticket opened while the charge was retrying is closed once it no longer needs anyone."""
        if asking is None or asking.done():
            return
        await workflow.wait_condition(lambda: topic in self.attention.waiting or asking.done())
        if not asking.done():
            self.attention.decide(OperatorDecision(topic, "resolve", note))
        await asking

    async def _hold(self, reason: str, note: str, period_start: str) -> None:
        await self._persist(
            f"hold/{reason}",
            "service_outage",
            f"{self.inp.subscription_id}: the line cannot be blocked for its renewal",
            lambda: workflow.execute_local_activity_method(
                SubscriptionActivities.hold_line,
                LineHold(self.inp.subscription_id, reason, note, period_start=period_start),
                **DB_STEP,
            ),
        )
        await self._refresh()

    def _bar_due(self) -> bool:
        line = self.line
        return (
            bool(self._faults_patch)
            and line is not None
            and line.state in ("active", "blocked")
            and (line.state == "blocked") != self.inp.barred
        )

    async def _sync_bar(self) -> None:
        """A blocked line is barred at the PCRF (no data, no calls); an unblocked one is not."""
        while self._bar_due():
            barred = self.line.state == "blocked"
            task = "PCRF_BAR" if barred else "PCRF_UNBAR"
            await self._persist(
                f"pcrf/{task}",
                "provisioning_exception",
                f"{self.inp.subscription_id}: {task} for {self.inp.msisdn} failed",
                lambda task=task: workflow.execute_activity_method(
                    ProvisioningActivities.run_line_task,
                    LineTask(task, self.inp.msisdn, f"line {self.line.state} ({self.line.state_reason})"),
                    **NETWORK_STEP,
                ),
            )
            self.inp.barred = barred

    async def _deprovision(self) -> None:
        """The line ended: take it off the network (OCS balance, PCRF policy and bar, HLR)."""
        for task in DEPROVISION_TASKS:
            await self._persist(
                f"deprovision/{task}",
                "provisioning_exception",
                f"{self.inp.subscription_id}: {task} for {self.inp.msisdn} failed",
                lambda task=task: workflow.execute_activity_method(
                    ProvisioningActivities.run_line_task,
                    LineTask(task, self.inp.msisdn, "line terminated"),
                    **NETWORK_STEP,
                ),
            )
        self.inp.barred = False

    async def _persist(self, topic: str, ticket_type: str, subject: str, call):
        """Run an activity; an error it could not retry away asks an operator instead of failing
        the workflow: `retry` runs it again, `resolve` goes on without it (None)."""
        if not self._patched():
            return await call()
        while True:
            try:
                return await call()
            except (ActivityError, ApplicationError) as err:  # a local activity's arrives unwrapped
                decision = await self.attention.ask(
                    self._ticket(
                        topic,
                        subject,
                        f"{reason_of(err)}\nretry: run the step again; resolve: skip it.",
                        ticket_type,
                    )
                )
                if decision.action != "retry":
                    return None

    def _ticket(
        self, topic: str, subject: str, description: str, ticket_type: str = "payment_exception"
    ) -> AttentionTicket:
        return AttentionTicket(
            topic,
            ticket_type,
            subject[:200],
            description,
            customer_id=self.inp.customer_id,
            subscription_id=self.inp.subscription_id,
        )


def at_instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


async def _settled(task) -> None:
    """Wait for a cancelled activity to be over, whatever its end."""
    try:
        await task
    except (ActivityError, ApplicationError, asyncio.CancelledError):
        pass


RENEWAL_PENDING = "renewal_pending"
RENEWAL_DECLINED = "renewal_declined"

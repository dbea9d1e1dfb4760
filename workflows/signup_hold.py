"""A signup's number pick, held for its order: `signup-hold-<MSISDN>`.

The number was put in the `held` state by the hold's request (ops/inventory.py hold_number);
this workflow's durable timer ends the hold when its 24 h (business time) are up, and the number
goes back on sale — unless an order took it in between. Updates:
- `complete`: an order took the number (the SOM's reservation step says so); the hold ends at once.
- `cancel`: the channel gives the number back now (`DELETE /bss-api/v1/number-hold/{msisdn}`).
The release is a database step that acts only while the hold still holds the number, so a timer
firing just after an order took it changes nothing, and an order is never robbed of its number.

On a test stack whose business clock moved (`bss clock`), `clock_changed` re-aims the timer, as the
line's workflow does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.inventory import HoldRelease, InventoryActivities
    from core.context import RequestContext
    from workflows.common import DB_STEP, condition_or_timeout

HELD, COMPLETED, CANCELLED, EXPIRED = "held", "completed", "cancelled", "expired"


@dataclass
class HoldInput:
    msisdn: str
    hold_ref: str
    expires_at: str  # business time, ISO
    business_now: str  # business time when the hold was taken, ISO (the clock the timer follows)
    customer_id: str | None = None


@dataclass
class HoldComplete:
    taken_by: str  # the order (service order) that took the number


@dataclass
class HoldCancel:
    reason: str = "cancelled by the channel"
    requested_by: RequestContext | None = None


@dataclass
class HoldClockChanged:
    business_now: str


@dataclass
class HoldStatus:
    msisdn: str
    state: str  # held | completed | cancelled | expired
    expires_at: str
    taken_by: str | None = None
    reason: str | None = None


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


@workflow.defn
class SignupHoldWorkflow:
    def __init__(self) -> None:
        self.inp: HoldInput | None = None
        self.state = HELD
        self.skew: float | None = None
        self.wake = False
        self.taken_by: str | None = None
        self.cancel_request: HoldCancel | None = None
        self.reason: str | None = None

    @workflow.run
    async def run(self, inp: HoldInput) -> HoldStatus:
        self.inp = inp
        if self.skew is None:  # a clock change handled before run() started is newer
            self._follow_clock(inp.business_now)
        expires = _at(inp.expires_at)
        while self.taken_by is None and self.cancel_request is None:
            left = max(0.0, (expires - self._now()).total_seconds())
            self.wake = False
            fired = not await condition_or_timeout(
                lambda: self.wake or self.taken_by is not None or self.cancel_request is not None, left
            )
            if fired or (self.taken_by is None and self.cancel_request is None and self._now() >= expires):
                break
        if self.taken_by is not None:
            self.state = COMPLETED
        else:
            cancel = self.cancel_request
            reason = cancel.reason if cancel else "the 24 h hold expired"
            released = await workflow.execute_local_activity_method(
                InventoryActivities.release_hold,
                HoldRelease(inp.msisdn, inp.hold_ref, reason, cancel.requested_by if cancel else None),
                **DB_STEP,
            )
            if released:
                self.state, self.reason = (CANCELLED if cancel else EXPIRED), reason
            else:  # an order took it first: the number stays with the order
                self.state = COMPLETED
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    def _now(self) -> datetime:
        return workflow.now() + timedelta(seconds=self.skew or 0.0)

    def _follow_clock(self, business_now: str) -> None:
        self.skew = (_at(business_now) - workflow.now()).total_seconds()

    @workflow.update
    async def complete(self, msg: HoldComplete) -> HoldStatus:
        self.taken_by = self.taken_by or msg.taken_by
        await workflow.wait_condition(lambda: self.state != HELD)
        return self.status()

    @complete.validator
    def _validate_complete(self, msg: HoldComplete) -> None:
        if self.state in (CANCELLED, EXPIRED):
            raise ApplicationError(f"The hold already ended ({self.state}).", type="msisdn.hold.ended")

    @workflow.update
    async def cancel(self, msg: HoldCancel) -> HoldStatus:
        if self.cancel_request is None:
            self.cancel_request = msg
        await workflow.wait_condition(lambda: self.state != HELD)
        return self.status()

    @cancel.validator
    def _validate_cancel(self, msg: HoldCancel) -> None:
        if self.state == COMPLETED or self.taken_by is not None:
            raise ApplicationError("An order took the number.", type="msisdn.hold.taken")
        if self.state != HELD:
            raise ApplicationError(f"The hold already ended ({self.state}).", type="msisdn.hold.ended")

    @workflow.signal
    def clock_changed(self, msg: HoldClockChanged) -> None:
        """The test stack's business clock moved: look again at the expiry."""
        self._follow_clock(msg.business_now)
        self.wake = True

    @workflow.query
    def status(self) -> HoldStatus:
        inp = self.inp
        if inp is None:
            raise ApplicationError("The hold is still starting.")
        return HoldStatus(inp.msisdn, self.state, inp.expires_at, self.taken_by, self.reason)

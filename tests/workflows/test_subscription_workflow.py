"""The subscription workflow over simulated months, on the time-skipping test server and a real
Postgres: renewals at the snapshot, declined renewal and renew_now, plan change at the pivot,
top-up of a blocked line, day pass expiry, termination."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from core.clock import clock
from domains.payment.mock_gateway import MockGateway
from tests.domains.test_subscription_lifecycle import (
    add_card,
    buckets,
    exhaust,
    line,
    new_line,
    payments,
    sql,
)
from worker import workflow_runner
from workflows.subscription import (
    ClockChanged,
    Exhausted,
    PurchaseVas,
    RenewNow,
    SchedulePlanChange,
    SubscriptionInput,
    SubscriptionWorkflow,
    Terminate,
)

PERIOD = timedelta(days=30)
HISTORIES = Path(__file__).resolve().parent.parent / "replay" / "histories" / "SubscriptionWorkflow"


@pytest_asyncio.fixture
async def lines(runtime, settings):
    from temporalio.testing import WorkflowEnvironment

    from activities.registry import build_activities
    from stack.temporal import test_server_binary
    from workflows.registry import WORKFLOWS

    # One test server per test: skipped time and leftover timers never leak into the next test.
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_binary()
    ) as env:
        async for lines in _lines(env, runtime, settings, build_activities, WORKFLOWS):
            yield lines


async def _lines(env, runtime, settings, build_activities, WORKFLOWS):
    settings.task_queue = f"sub-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        activities=build_activities(runtime, gateway=MockGateway(runtime.db)),
    ):
        lines = Lines(env, runtime, settings.task_queue)
        yield lines
        # Lines left running would keep their timers on the shared test server, and skipping time
        # in the next test would wait on workflow tasks that no worker polls any more.
        for handle in lines.started:
            try:
                await env.client.get_workflow_handle(handle.id).terminate("test finished")
            except Exception:  # already over
                pass


class Lines:
    def __init__(self, env, runtime, task_queue):
        self.env, self.runtime, self.task_queue = env, runtime, task_queue
        self.started = []

    async def start(self, offering: str = "PLAN_S", card: str | None = "4242424242424242"):
        # The test server's clock runs ahead of the wall clock (earlier tests skipped months): the
        # line is sold at the workflow's "now", so its periods and the workflow's timers agree.
        clock.freeze(await self.env.get_current_time())
        sub_id = await new_line(self.runtime, offering, card=card)
        sub = await line(self.runtime, sub_id)
        handle = await self.env.client.start_workflow(
            SubscriptionWorkflow.run,
            SubscriptionInput(sub_id, sub.customer_id, offering, sub.msisdn, sub.iccid),
            id=f"subscription-{sub_id}",
            task_queue=self.task_queue,
        )
        self.started.append(handle)
        await self.until(handle, lambda s: s.state == "active")
        return sub_id, sub.customer_id, handle

    async def until(self, handle, done, tries: int = 100):
        status = None
        for _ in range(tries):
            try:
                status = await handle.query(SubscriptionWorkflow.status)
                if done(status):
                    return status
            except Exception:  # the line is still starting, or continuing as new
                pass
            await asyncio.sleep(0.05)
        raise AssertionError(f"condition never met; last status {status}")

    async def next_run_start(self, handle) -> tuple[SubscriptionInput, timedelta]:
        """The input of the line's second run and the length of the first timer it started."""
        for _ in range(100):
            run_id = (await handle.describe()).run_id
            if run_id != handle.first_execution_run_id:
                history = await self.env.client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
                started = timer = None
                for event in history.events:
                    if event.HasField("workflow_execution_started_event_attributes"):
                        payloads = event.workflow_execution_started_event_attributes.input.payloads
                        (started,) = await self.env.client.data_converter.decode(
                            payloads, [SubscriptionInput]
                        )
                    if event.HasField("timer_started_event_attributes") and timer is None:
                        timer = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
                if started is not None and timer is not None:
                    return started, timer
            await asyncio.sleep(0.05)
        raise AssertionError("the line never continued as new")

    async def next_period(self, handle, renewed: int):
        await self.env.sleep(PERIOD + timedelta(minutes=1))
        return await self.until(handle, lambda s: s.periods_renewed >= renewed or s.state == "blocked")

    async def export(self, handle, case: str) -> None:
        """BSS_EXPORT_HISTORIES=1 refreshes the replay histories from this run (see scripts/export_histories.py)."""
        if os.environ.get("BSS_EXPORT_HISTORIES") != "1":
            return
        first = self.env.client.get_workflow_handle(
            handle.id, run_id=handle.first_execution_run_id or handle.result_run_id
        )
        HISTORIES.mkdir(parents=True, exist_ok=True)
        (HISTORIES / f"{case}.json").write_text((await first.fetch_history()).to_json())


async def test_twelve_renewals_each_charge_the_snapshot_once(lines: Lines):
    sub_id, customer, handle = await lines.start("PLAN_S")
    await sql(
        lines.runtime, "UPDATE catalog.product_offering_price SET amount = 99 WHERE id = 'PRICE_PLAN_S'"
    )
    for month in range(1, 13):
        status = await lines.next_period(handle, month)
        assert status.periods_renewed == month and status.state == "active"
    renewals = [p for p in await payments(lines.runtime, customer) if p[0] == "renewal"]
    assert len(renewals) == 12
    assert {(str(amount), state) for _, amount, state in renewals} == {("10.00", "approved")}
    await lines.export(handle, "renewal")


async def test_declined_renewal_blocks_then_renew_now_charges_once_and_reactivates(lines: Lines):
    sub_id, customer, handle = await lines.start("PLAN_S", card="4000000000000002")
    status = await lines.next_period(handle, 1)
    assert (status.state, status.state_reason) == ("blocked", "renewal_declined")
    await lines.env.sleep(timedelta(days=3))  # a blocked line is not retried on its own
    assert [p[2] for p in await payments(lines.runtime, customer) if p[0] == "renewal"] == ["declined"]
    await add_card(lines.runtime, customer)
    outcome = await handle.execute_update(SubscriptionWorkflow.renew_now, RenewNow())
    assert outcome.status == "renewed"
    status = await lines.until(handle, lambda s: s.state == "active")
    assert [p[2] for p in await payments(lines.runtime, customer) if p[0] == "renewal"] == [
        "declined",
        "approved",
    ]
    await lines.export(handle, "declined_renewal")


async def test_plan_change_pivots_at_the_next_renewal(lines: Lines):
    sub_id, customer, handle = await lines.start("PLAN_S")
    status = await handle.execute_update(
        SubscriptionWorkflow.schedule_plan_change, SchedulePlanChange("PLAN_M")
    )
    assert status.pending_offering_id == "PLAN_M" and status.offering_id == "PLAN_S"
    assert (await buckets(lines.runtime, sub_id))["data"][0] == 5120
    status = await lines.next_period(handle, 1)
    assert status.offering_id == "PLAN_M" and status.pending_offering_id is None
    assert (await buckets(lines.runtime, sub_id))["data"][0] == 30720
    assert [str(a) for p, a, _ in await payments(lines.runtime, customer) if p == "renewal"] == ["25.00"]
    await lines.export(handle, "plan_change")


async def test_plan_change_to_the_same_plan_is_refused_by_the_validator(lines: Lines):
    _, _, handle = await lines.start("PLAN_S")
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(SubscriptionWorkflow.schedule_plan_change, SchedulePlanChange("PLAN_S"))
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "subscription.plan_change.same_offering"


async def test_data_top_up_unblocks_a_line_blocked_for_exhaustion(lines: Lines):
    sub_id, _, handle = await lines.start("PLAN_S")
    await exhaust(lines.runtime, sub_id)
    await handle.signal(SubscriptionWorkflow.exhausted, Exhausted(sub_id, "data"))
    await lines.until(handle, lambda s: s.state == "blocked")
    result = await handle.execute_update(SubscriptionWorkflow.purchase_vas, PurchaseVas("VAS_DATA_1GB"))
    assert result.status == "applied"
    status = await lines.until(handle, lambda s: s.state == "active")
    assert status.state_reason is None or status.state_reason != "primary_allowance_exhausted"
    total, consumed, remaining = (await buckets(lines.runtime, sub_id))["data"]
    assert remaining == 1024
    await lines.export(handle, "vas_on_blocked_line")


async def test_day_pass_really_ends_after_24_hours(lines: Lines):
    sub_id, _, handle = await lines.start("PLAN_S")
    await handle.execute_update(SubscriptionWorkflow.purchase_vas, PurchaseVas("VAS_UNLIMITED_DAY"))
    status = await lines.until(handle, lambda s: bool(s.day_passes))
    assert (await buckets(lines.runtime, sub_id))["data"][0] == -1
    await lines.env.sleep(timedelta(hours=24, minutes=1))
    await lines.until(handle, lambda s: not s.day_passes)
    assert (await buckets(lines.runtime, sub_id))["data"][2] == 5120
    assert status.state == "active"


async def test_a_moved_business_clock_renews_without_waiting_and_the_skew_carries_over(lines: Lines):
    """`bss clock advance 30d` on a test stack: ClockChanged moves the line's business time; the
    renewal runs although no workflow time has passed, and the next run keeps the skew."""
    sub_id, customer, handle = await lines.start("PLAN_S")
    started = await lines.env.get_current_time()
    skew = PERIOD + timedelta(minutes=1)
    await handle.signal(SubscriptionWorkflow.clock_changed, ClockChanged((started + skew).isoformat()))
    status = await lines.until(handle, lambda s: s.periods_renewed >= 1)
    assert status.state == "active"
    assert await lines.env.get_current_time() - started < timedelta(hours=1)  # no timer fired
    assert [(p, str(a), st) for p, a, st in await payments(lines.runtime, customer) if p == "renewal"] == [
        ("renewal", "10.00", "approved")
    ]
    # Read from the next run's history rather than by skipping another month: the time-skipping
    # server can stall on a sleep that follows a continue-as-new made while time was locked.
    carried, timer = await lines.next_run_start(handle)
    assert abs(carried.clock_skew_seconds - skew.total_seconds()) < 5
    # The next renewal is 30 days of business time after the first period's end: 30 days of
    # workflow time from the start, so the new run's timer is about 30 days long, not 60.
    assert abs(timer - (PERIOD - timedelta(minutes=1))) < timedelta(minutes=1)
    await lines.export(handle, "clock_advanced_renewal")


async def test_terminate_quarantines_the_number_and_returns_the_esim(lines: Lines):
    sub_id, _, handle = await lines.start("PLAN_S")
    sub = await line(lines.runtime, sub_id)
    status = await handle.execute_update(SubscriptionWorkflow.terminate, Terminate("customer left"))
    assert status.state == "terminated"
    result = await handle.result()
    assert result.state == "terminated"
    (msisdn_status,) = await sql(
        lines.runtime, "SELECT status FROM inventory.msisdn WHERE msisdn = :m", m=sub.msisdn
    )
    assert msisdn_status[0] == "quarantine"
    (esim,) = await sql(
        lines.runtime, "SELECT profile_state FROM inventory.esim_profile WHERE iccid = :i", i=sub.iccid
    )
    assert esim[0] == "available"
    await lines.export(handle, "terminate")

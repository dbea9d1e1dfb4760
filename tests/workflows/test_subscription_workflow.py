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
from tests.domains.test_subscription_lifecycle import (
    add_card,
    buckets,
    exhaust,
    line,
    new_line,
    payments,
    sql,
)
from tests.workflows.line_faults import EsimFlowStandIn, LedgerGateway
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
        await _stuck_attribute(env)
        async for lines in _lines(env, runtime, settings, build_activities, WORKFLOWS):
            yield lines


async def _stuck_attribute(env) -> None:
    """A line that asks an operator flags BssStuck; the test server knows no attribute by default."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={"BssStuck": IndexedValueType.INDEXED_VALUE_TYPE_BOOL},
        )
    )


async def _lines(env, runtime, settings, build_activities, WORKFLOWS):
    from simulators.network import simulated_network

    settings.task_queue = f"sub-{uuid.uuid4().hex[:8]}"
    # A gateway of the test's own (faults on cue) and the simulated network (its recorded state).
    gateway, network = LedgerGateway(), simulated_network(settings, runtime.db)
    async with Worker(
        env.client,
        task_queue=settings.task_queue,
        workflows=[*WORKFLOWS, EsimFlowStandIn],
        workflow_runner=workflow_runner(),
        activities=build_activities(runtime, gateway=gateway, network=network),
    ):
        lines = Lines(env, runtime, settings.task_queue)
        lines.gateway, lines.network = gateway, network
        yield lines
        # Lines left running would keep their timers on the shared test server, and skipping time
        # in the next test would wait on workflow tasks that no worker polls any more.
        for handle in lines.started:
            try:
                await env.client.get_workflow_handle(handle.id).terminate("test finished")
            except Exception:  # already over
                pass


def _renewal_charged(event) -> bool:
    """The renewal's activity completed, or its local activity's marker (patch line-renews-in-one-task)."""
    if event.HasField("activity_task_completed_event_attributes"):
        return True
    marker = event.marker_recorded_event_attributes
    if not event.HasField("marker_recorded_event_attributes") or marker.marker_name != "core_local_activity":
        return False
    return any(b'"renew"' in p.data for p in marker.details["data"].payloads)


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

    async def timer_after_renewal(self, handle) -> timedelta:
        """The length of the first timer the line started after its first renewal was charged."""
        for _ in range(100):
            history = await handle.fetch_history()
            charged = False
            for event in history.events:
                if _renewal_charged(event):
                    charged = True
                if charged and event.HasField("timer_started_event_attributes"):
                    return event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            await asyncio.sleep(0.05)
        raise AssertionError("no timer after the renewal")

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
        if month == 11:  # a year of renewals in one run (RENEWALS_PER_RUN), then a new run
            assert (await handle.describe()).run_id == handle.first_execution_run_id
    renewals = [p for p in await payments(lines.runtime, customer) if p[0] == "renewal"]
    assert len(renewals) == 12
    for _ in range(100):
        if (await handle.describe()).run_id != handle.first_execution_run_id:
            break
        await asyncio.sleep(0.05)
    assert (await handle.describe()).run_id != handle.first_execution_run_id
    assert {(str(amount), state) for _, amount, state in renewals} == {("10.00", "approved")}
    await lines.export(handle, "renewal_year_in_one_task")


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
    await lines.export(handle, "declined_renewal_in_one_task")


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
    await lines.export(handle, "plan_change_in_one_task")


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
    # The line keeps its run across the renewal (patch line-keeps-its-run-across-periods) and its
    # skew with it. Read from the history rather than by skipping another month.
    timer = await lines.timer_after_renewal(handle)
    assert (await handle.describe()).run_id == handle.first_execution_run_id, "a renewal is no new run"
    # The next renewal is 30 days of business time after the first period's end: 30 days of
    # workflow time from the start, so the next timer is about 30 days long, not 60.
    assert abs(timer - (PERIOD - timedelta(minutes=1))) < timedelta(minutes=1)
    await lines.export(handle, "clock_advanced_renewal_in_one_task")


async def test_a_renewal_is_one_workflow_task_with_its_charge_local_and_no_read_of_the_line_after_it(
    lines: Lines,
):
    """Patch line-renews-in-one-task: the timer's workflow task charges in a local activity that
    answers with the line, and sleeps again; no activity task, no second task, no line_state."""
    sub_id, customer, handle = await lines.start("PLAN_S")
    status = await lines.next_period(handle, 1)
    assert (status.state, status.periods_renewed) == ("active", 1)
    await lines.timer_after_renewal(handle)
    events = (await handle.fetch_history()).events
    fired = next(i for i, e in enumerate(events) if e.HasField("timer_fired_event_attributes"))
    after = events[fired + 1 :]
    assert not any(e.HasField("activity_task_scheduled_event_attributes") for e in after)
    assert sum(e.HasField("workflow_task_completed_event_attributes") for e in after) == 1
    markers = [e for e in after if e.HasField("marker_recorded_event_attributes")]
    assert len(markers) == 1 and _renewal_charged(markers[0])
    assert await renewal_charges(lines, customer) == ["approved"]


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


# --------------------------------------------------------------------------- faults (issue 8)


async def renewal_charges(lines: Lines, customer: str) -> list[str]:
    return [state for purpose, _, state in await payments(lines.runtime, customer) if purpose == "renewal"]


async def line_ticket(lines: Lines, workflow_id: str, tries: int = 200) -> tuple:
    for _ in range(tries):
        rows = await sql(
            lines.runtime,
            "SELECT id, ticket_type, state, waiting_topic FROM crm.ticket WHERE waiting_workflow_id = :w",
            w=workflow_id,
        )
        if rows:
            return rows[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no ticket for {workflow_id}")


async def test_a_five_day_payment_outage_keeps_the_line_through_grace_then_blocks_and_charges_once(
    lines: Lines, settings
):
    settings.renewal_retry_max_seconds = 3600  # fewer attempts to skip through; same behaviour
    sub_id, customer, handle = await lines.start("PLAN_S")
    sub = await line(lines.runtime, sub_id)
    lines.gateway.outage = True
    await lines.env.sleep(PERIOD + timedelta(days=2))
    status = await handle.query(SubscriptionWorkflow.status)
    assert (status.state, status.periods_renewed) == ("active", 0)  # within the 3-day grace
    assert sub.msisdn not in lines.network.pcrf.barred
    await lines.env.sleep(timedelta(days=2))
    status = await lines.until(handle, lambda s: s.state == "blocked")
    assert status.state_reason == "renewal_pending"
    assert sub.msisdn in lines.network.pcrf.barred  # barred at the network, not only flagged
    await lines.env.sleep(timedelta(days=1))
    assert lines.gateway.calls > 10  # kept retrying through the outage
    lines.gateway.outage = False
    await lines.env.sleep(timedelta(hours=2))
    status = await lines.until(handle, lambda s: s.periods_renewed >= 1 and s.state == "active")
    assert status.state_reason is None
    assert await renewal_charges(lines, customer) == ["approved"]
    assert lines.gateway.approved("/renewal/") == 1
    assert sub.msisdn not in lines.network.pcrf.barred
    assert (await handle.describe()).status.name == "RUNNING"
    await lines.export(handle, "renewal_outage_grace_block_in_one_task")


async def test_an_outage_of_a_minute_and_a_half_no_longer_ends_the_line(lines: Lines):
    sub_id, customer, handle = await lines.start("PLAN_S")
    lines.gateway.outage = True
    await lines.env.sleep(PERIOD + timedelta(seconds=10))
    await lines.env.sleep(timedelta(seconds=90))
    lines.gateway.outage = False
    await lines.env.sleep(timedelta(minutes=5))
    status = await lines.until(handle, lambda s: s.periods_renewed >= 1)
    assert status.state == "active"
    assert await renewal_charges(lines, customer) == ["approved"]
    assert (await handle.describe()).status.name == "RUNNING"
    await lines.export(handle, "renewal_short_outage_in_one_task")


async def test_a_line_without_a_card_takes_the_declined_path_at_once(lines: Lines):
    sub_id, customer, handle = await lines.start("PLAN_S", card=None)
    status = await lines.next_period(handle, 1)
    assert (status.state, status.state_reason) == ("blocked", "renewal_declined")
    await lines.env.sleep(timedelta(days=5))
    assert lines.gateway.calls == 0  # nothing to retry: a decline is an answer
    assert (await handle.query(SubscriptionWorkflow.status)).state_reason == "renewal_declined"


async def test_a_renewal_step_with_a_bug_opens_a_ticket_waits_and_renews_after_a_fix_and_retry(lines: Lines):
    from workflows.attention import OperatorDecision

    sub_id, customer, handle = await lines.start("PLAN_S")
    lines.gateway.bug = True  # TypeError in the step: no retry can fix it
    await lines.env.sleep(PERIOD + timedelta(minutes=1))
    ticket_id, ticket_type, state, topic = await line_ticket(lines, handle.id)
    assert (ticket_type, state) == ("payment_exception", "open")
    assert (await handle.describe()).status.name == "RUNNING"
    lines.gateway.bug = False  # the fix is deployed
    await handle.signal("operator_decision", OperatorDecision(topic, "retry", "fixed in 1.2.1"))
    status = await lines.until(handle, lambda s: s.periods_renewed >= 1)
    assert status.state == "active"
    assert await renewal_charges(lines, customer) == ["approved"]
    (after,) = await sql(lines.runtime, "SELECT state FROM crm.ticket WHERE id = :t", t=ticket_id)
    assert after[0] == "resolved"
    await lines.export(handle, "renewal_bug_ticket_retry_in_one_task")


async def test_a_blocked_line_is_barred_at_the_pcrf_and_the_bar_lifts_with_the_block(lines: Lines):
    sub_id, _, handle = await lines.start("PLAN_S")
    sub = await line(lines.runtime, sub_id)
    await exhaust(lines.runtime, sub_id)
    await handle.signal(SubscriptionWorkflow.exhausted, Exhausted(sub_id, "data"))
    await lines.until(handle, lambda s: s.state == "blocked")
    for _ in range(100):
        if sub.msisdn in lines.network.pcrf.barred:
            break
        await asyncio.sleep(0.05)
    assert sub.msisdn in lines.network.pcrf.barred
    await handle.execute_update(SubscriptionWorkflow.purchase_vas, PurchaseVas("VAS_DATA_1GB"))
    for _ in range(100):
        if sub.msisdn not in lines.network.pcrf.barred:
            break
        await asyncio.sleep(0.05)
    assert sub.msisdn not in lines.network.pcrf.barred


async def test_terminate_stops_the_esim_flow_cancels_at_the_smdp_and_deprovisions_the_network(lines: Lines):
    from simulators.smdp import ProfileOrder
    from tests.workflows.line_faults import EsimFlowStandIn
    from workflows.esim_provisioning import esim_workflow_id

    sub_id, _, handle = await lines.start("PLAN_S")
    sub = await line(lines.runtime, sub_id)
    net = lines.network
    # What the order's provisioning left on the network for this line.
    net.hlr.subscribers[sub.msisdn] = "525010000000001"
    net.pcrf.policies[sub.msisdn] = "PLAN_S"
    net.ocs.lines[sub.msisdn], net.ocs.balances["SO-1"] = "SO-1", {"data": 5120}
    net.smdp.orders[sub.iccid] = ProfileOrder(sub.iccid)
    esim = await lines.env.client.start_workflow(
        EsimFlowStandIn.run, id=esim_workflow_id(sub.iccid), task_queue=lines.task_queue
    )
    status = await handle.execute_update(SubscriptionWorkflow.terminate, Terminate("customer left"))
    assert status.state == "terminated"
    assert (await handle.result()).state == "terminated"
    assert await esim.result() == "customer left"
    assert sub.iccid not in net.smdp.orders
    assert sub.msisdn not in net.hlr.subscribers
    assert sub.msisdn not in net.pcrf.policies
    assert sub.msisdn not in net.ocs.lines and "SO-1" not in net.ocs.balances
    await lines.export(handle, "terminate_deprovisions")


async def test_a_blocked_line_continues_as_new_when_temporal_suggests_it_and_carries_its_state(
    runtime, settings
):
    """A dev server of its own that suggests continue-as-new after 40 events: a blocked line fed
    signals (rating's `exhausted`) starts a new run, still blocked and still barred."""
    from temporalio.testing import WorkflowEnvironment

    from activities.registry import build_activities
    from stack.temporal import SEARCH_ATTRIBUTES, temporal_binary
    from workflows.registry import WORKFLOWS

    extra = ["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=40"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        extra += ["--search-attribute", f"{name}={kind}"]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), dev_server_extra_args=extra, ui=False
    )
    try:
        async for lines in _lines(env, runtime, settings, build_activities, WORKFLOWS):
            sub_id, _, handle = await lines.start("PLAN_S")
            sub = await line(lines.runtime, sub_id)
            await exhaust(lines.runtime, sub_id)
            for _ in range(15):
                await handle.signal(SubscriptionWorkflow.exhausted, Exhausted(sub_id, "data"))
            for _ in range(1200):  # up to a minute on a loaded machine; ends at the new run
                described = await handle.describe()
                if described.run_id != handle.first_execution_run_id:
                    break
                await asyncio.sleep(0.05)
            assert described.run_id != handle.first_execution_run_id, "the line never continued as new"
            history = await env.client.get_workflow_handle(handle.id, run_id=described.run_id).fetch_history()
            started = history.events[0].workflow_execution_started_event_attributes.input.payloads
            (carried,) = await env.client.data_converter.decode(started, [SubscriptionInput])
            assert carried.barred and carried.renewal is None and not carried.renewal_declined
            status = await lines.until(handle, lambda s: s.state == "blocked")
            assert status.state_reason == "primary_allowance_exhausted"
            assert sub.msisdn in lines.network.pcrf.barred
    finally:
        await env.shutdown()


async def test_a_renewal_failing_past_the_attention_delay_opens_a_ticket_that_closes_when_it_goes_through(
    lines: Lines, settings
):
    settings.renewal_grace_days, settings.renewal_attention_days = 1, 2
    settings.renewal_retry_max_seconds = 3600
    sub_id, customer, handle = await lines.start("PLAN_S")
    lines.gateway.outage = True
    await lines.env.sleep(PERIOD + timedelta(days=2, hours=1))
    ticket_id, ticket_type, state, topic = await line_ticket(lines, handle.id)
    assert (ticket_type, state, topic.startswith("renewal/")) == ("payment_exception", "open", True)
    status = await handle.query(SubscriptionWorkflow.status)
    assert (status.state, status.state_reason) == ("blocked", "renewal_pending")
    lines.gateway.outage = False  # the retries go on meanwhile: no operator needed
    await lines.env.sleep(timedelta(hours=2))
    status = await lines.until(handle, lambda s: s.periods_renewed >= 1 and s.state == "active")
    assert await renewal_charges(lines, customer) == ["approved"]
    for _ in range(100):
        (after,) = await sql(lines.runtime, "SELECT state FROM crm.ticket WHERE id = :t", t=ticket_id)
        if after[0] == "resolved":
            break
        await asyncio.sleep(0.05)
    assert after[0] == "resolved"
    await lines.export(handle, "renewal_attention_auto_closed_in_one_task")


async def test_an_update_whose_activity_fails_fails_the_update_not_the_line(lines: Lines):
    sub_id, _, handle = await lines.start("PLAN_S")
    lines.gateway.bug = True  # the VAS charge hits a bug: non-retryable
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(SubscriptionWorkflow.purchase_vas, PurchaseVas("VAS_DATA_1GB"))
    assert (await handle.describe()).status.name == "RUNNING"
    lines.gateway.bug = False
    result = await handle.execute_update(SubscriptionWorkflow.purchase_vas, PurchaseVas("VAS_DATA_1GB"))
    assert result.status == "applied"


async def test_an_operator_who_resolves_the_renewal_by_hand_stops_the_charging_and_the_line_waits_declined(
    lines: Lines,
):
    from workflows.attention import OperatorDecision

    sub_id, customer, handle = await lines.start("PLAN_S")
    lines.gateway.bug = True
    await lines.env.sleep(PERIOD + timedelta(minutes=1))
    ticket_id, _, _, topic = await line_ticket(lines, handle.id)
    await handle.signal(
        "operator_decision", OperatorDecision(topic, "resolve", "customer moves to prepaid cash")
    )
    status = await lines.until(handle, lambda s: s.state_reason == "renewal_declined")
    assert status.state == "blocked"
    calls = lines.gateway.calls
    await lines.env.sleep(timedelta(days=2))
    assert lines.gateway.calls == calls  # no more charging for that period
    assert await renewal_charges(lines, customer) == []
    assert (await handle.describe()).status.name == "RUNNING"


async def test_terminate_during_a_payment_outage_stops_the_charging_and_ends_the_line(lines: Lines):
    sub_id, customer, handle = await lines.start("PLAN_S")
    lines.gateway.outage = True
    await lines.env.sleep(PERIOD + timedelta(hours=1))
    status = await handle.execute_update(SubscriptionWorkflow.terminate, Terminate("customer left"))
    assert status.state == "terminated"
    assert (await handle.result()).state == "terminated"
    lines.gateway.outage = False
    assert await renewal_charges(lines, customer) == []

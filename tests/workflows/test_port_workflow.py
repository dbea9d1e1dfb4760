"""Number porting on the time-skipping server and a real Postgres: a port-in to a new line (its
order takes the ported number) and to an existing line (MSISDN swapped, HLR re-provisioned, old
number in quarantine), the clearinghouse's refusal, an operator's rejection, an approval window
that runs out, and a port-out (line terminated `ported_out`, number never sold again).

BSS_EXPORT_HISTORIES=1 writes the replay histories (tests/replay/histories/PortWorkflow/).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from temporalio.worker import Worker

from core.clock import clock
from core.context import RequestContext
from core.errors import PolicyViolation
from simulators.faults import Fault, FixedFaults

HISTORIES = Path(__file__).resolve().parent.parent / "replay" / "histories" / "PortWorkflow"
OPS = RequestContext(actor="ops-alice", channel="cli", service_identity="test")
ATTRIBUTES = ("BssCustomerId", "BssOrderId", "BssSubscriptionId", "BssMsisdn")


@pytest_asyncio.fixture(scope="module")
async def env():
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.testing import WorkflowEnvironment

    from stack.temporal import test_server_binary

    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_binary()
    ) as env:
        kinds = {name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in ATTRIBUTES}
        kinds["BssStuck"] = IndexedValueType.INDEXED_VALUE_TYPE_BOOL
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=env.client.namespace, search_attributes=kinds)
        )
        yield env


class Ports:
    def __init__(self, env, runtime, network, faults):
        self.env, self.runtime, self.network, self.faults = env, runtime, network, faults

    def fault(self, fault_type: str) -> None:
        self.faults.faults.append(Fault(f"T_NP_{fault_type}", "NP_VALIDATE", fault_type, 1.0))

    async def today(self) -> str:
        return (await self.env.get_current_time()).date().isoformat()

    async def tomorrow(self) -> str:
        return ((await self.env.get_current_time()) + timedelta(days=1)).date().isoformat()

    async def open(self, **kwargs):
        from ops import porting

        kwargs.setdefault("requested_port_date", await self.today())
        view = await porting.create(self.runtime, OPS, **kwargs)
        return view["id"], self.handle(view["id"])

    def handle(self, port_id: str):
        from workflows.port import PortWorkflow

        return self.env.client.get_workflow_handle_for(PortWorkflow.run, f"port-{port_id}")

    async def until(self, port_id: str, state: str, tries: int = 200) -> dict:
        from ops import porting

        for _ in range(tries):
            view = await porting.get(self.runtime, port_id)
            if view["state"] == state:
                return view
            await asyncio.sleep(0.05)
        raise AssertionError(f"{port_id} never reached {state}; it is {view['state']} ({view['reason']})")

    async def finish(self, port_id: str, handle, step: timedelta = timedelta(seconds=31), tries: int = 400):
        """Skip time (the port date, the window, the order poll) until the workflow has ended."""
        from temporalio.client import WorkflowExecutionStatus

        for attempt in range(tries):
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return await handle.result()
            if attempt < 30:
                # Real time first: a step that calls Temporal itself (a ticket's SLA timer) must not
                # run while the test server is skipping time.
                await asyncio.sleep(0.1)
            else:
                await self.env.sleep(step)
                await asyncio.sleep(0.02)
        raise AssertionError(f"{port_id} never ended")

    async def customer(self) -> str:
        from tests.domains.test_subscription_lifecycle import new_customer

        return await new_customer(self.runtime)

    async def live_line(self):
        """A line with its workflow running, sold at the test server's "now"."""
        from tests.domains.test_subscription_lifecycle import line, new_line
        from workflows.subscription import SubscriptionInput, SubscriptionWorkflow

        sub_id = await new_line(self.runtime, "PLAN_S")
        sub = await line(self.runtime, sub_id)
        handle = await self.env.client.start_workflow(
            SubscriptionWorkflow.run,
            SubscriptionInput(sub_id, sub.customer_id, "PLAN_S", sub.msisdn, sub.iccid),
            id=f"subscription-{sub_id}",
            task_queue=self.runtime.settings.task_queue,
        )
        for _ in range(200):
            try:
                if (await handle.query(SubscriptionWorkflow.status)).state == "active":
                    return sub, handle
            except Exception:  # still starting
                pass
            await asyncio.sleep(0.05)
        raise AssertionError("the line never started")

    async def value(self, statement: str, **params):
        async with self.runtime.engine.connect() as conn:
            return (await conn.execute(text(statement), params)).scalar()

    async def events(self, port_id: str) -> list[str]:
        async with self.runtime.engine.connect() as conn:
            rows = await conn.execute(
                text("select event_type from audit.domain_event where aggregate_id = :p order by id"),
                {"p": port_id},
            )
            return [r[0] for r in rows]

    async def export(self, handle, case: str, workflow: str = "PortWorkflow") -> None:
        if os.environ.get("BSS_EXPORT_HISTORIES") != "1":
            return
        history = await handle.fetch_history()
        folder = HISTORIES.parent / workflow
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{case}.json").write_text(history.to_json())


@pytest_asyncio.fixture
async def ports(env, runtime, settings):
    from activities.registry import build_activities
    from simulators.network import simulated_network
    from worker import workflow_runner
    from workflows.registry import WORKFLOWS

    settings.task_queue = f"port-{uuid.uuid4().hex[:8]}"
    settings.task_deadline_seconds = 2.0
    settings.sim_latency_factor = 0.0
    runtime.use_temporal(env.client)
    clock.freeze(await env.get_current_time())
    faults = FixedFaults()
    network = simulated_network(settings, runtime.db, faults=faults)
    async with Worker(
        env.client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        activities=build_activities(runtime, network=network),
    ):
        yield Ports(env, runtime, network, faults)
        # Leftover timers on the shared test server would hold up the next test's time skipping.
        async with runtime.engine.connect() as conn:
            ids = [f"port-{r[0]}" for r in await conn.execute(text("select id from porting.port_request"))]
            ids += [
                f"subscription-{r[0]}"
                for r in await conn.execute(text("select id from subscription.subscription"))
            ]
            ids += [
                f"order-{r[0]}" for r in await conn.execute(text("select id from ordering.product_order"))
            ]
            ids += [
                f"service-order-{r[0]}"
                for r in await conn.execute(
                    text(
                        "select service_order_id from ordering.product_order where service_order_id is not null"
                    )
                )
            ]
            ids += [
                f"esim-{r[0]}"
                for r in await conn.execute(
                    text("select iccid from inventory.esim_profile where reserved_for is not null")
                )
            ]
        for wf_id in ids:
            try:
                await env.client.get_workflow_handle(wf_id).terminate("test finished")
            except Exception as exc:  # already closed, or never started
                print("TERMINATE", wf_id, exc)


async def test_port_in_to_a_new_line_orders_it_with_the_ported_number(ports):
    from ops import porting

    ports.fault("fail_first_attempt")  # a flaky clearinghouse is retried, not a refusal
    customer_id = await ports.customer()
    port_id, handle = await ports.open(
        direction="port_in",
        msisdn="87650001",
        donor_carrier="OtherTel",
        customer_id=customer_id,
        offering_id="PLAN_S",
    )
    await ports.until(port_id, "validated")
    # The number is not ours until the port is carried out.
    assert await ports.value("select count(*) from inventory.msisdn where msisdn = '87650001'") == 0
    approved = await porting.approve(ports.runtime, OPS, port_id)
    assert approved["approvedBy"] == "ops-alice"

    assert (await ports.finish(port_id, handle)).state == "completed"
    done = await porting.get(ports.runtime, port_id)
    assert done["state"] == "completed" and done["orderId"] and done["subscriptionId"]
    assert (
        await ports.value(
            "select msisdn from subscription.subscription where id = :s", s=done["subscriptionId"]
        )
        == "87650001"
    )
    assert (
        await ports.value("select state from ordering.product_order where id = :o", o=done["orderId"])
        == "completed"
    )
    assert (
        await ports.value(
            "select status || ':' || assigned_to_subscription_id from inventory.msisdn where msisdn = '87650001'"
        )
        == f"assigned:{done['subscriptionId']}"
    )
    assert await ports.events(port_id) == [
        "port.acknowledged",
        "port.validated",
        "port.approved",
        "port.completed",
    ]
    await ports.export(handle, "port_in_new_line")


async def test_port_in_to_an_existing_line_swaps_its_number(ports):
    from ops import porting
    from workflows.subscription import SubscriptionWorkflow

    sub, line = await ports.live_line()
    old = sub.msisdn
    imsi = await ports.value("select imsi from inventory.esim_profile where iccid = :i", i=sub.iccid)
    ports.network.hlr.subscribers[old] = imsi  # the line as the network knows it
    port_id, handle = await ports.open(
        direction="port_in",
        msisdn="87650002",
        donor_carrier="OtherTel",
        subscription_id=sub.id,
        requested_port_date=await ports.tomorrow(),
    )
    await ports.until(port_id, "validated")
    await porting.approve(ports.runtime, OPS, port_id)
    # After the timer to the port date.
    assert (await ports.finish(port_id, handle, timedelta(hours=6))).state == "completed"

    assert (
        await ports.value("select msisdn from subscription.subscription where id = :s", s=sub.id)
        == "87650002"
    )
    assert await ports.value("select status from inventory.msisdn where msisdn = :m", m=old) == "quarantine"
    assert await ports.value("select status from inventory.msisdn where msisdn = '87650002'") == "assigned"
    assert (
        await ports.value("select assigned_msisdn from inventory.esim_profile where iccid = :i", i=sub.iccid)
        == "87650002"
    )
    assert ports.network.hlr.subscribers == {"87650002": imsi}
    assert ports.network.pcrf.policies.get("87650002") == "PLAN_S"
    assert (await porting.get(ports.runtime, port_id))["previousMsisdn"] == old
    status = await line.query(SubscriptionWorkflow.status)
    assert status.msisdn == "87650002"  # the line's workflow bars and deprovisions the new number
    await ports.export(handle, "port_in_existing_line")
    await ports.export(line, "msisdn_swapped_by_port_in", "SubscriptionWorkflow")


async def test_the_clearinghouse_refusal_rejects_the_port_with_the_donors_reason(ports):
    from ops import porting

    ports.fault("number_locked")
    customer_id = await ports.customer()
    port_id, handle = await ports.open(
        direction="port_in",
        msisdn="87650003",
        donor_carrier="OtherTel",
        customer_id=customer_id,
        offering_id="PLAN_S",
    )
    assert (await ports.finish(port_id, handle)).state == "rejected"
    view = await porting.get(ports.runtime, port_id)
    assert view["reasonCode"] == "port.donor.number_locked" and "number_locked" in view["reason"]
    assert await ports.value("select count(*) from inventory.msisdn where msisdn = '87650003'") == 0
    assert await ports.events(port_id) == ["port.acknowledged", "port.rejected"]
    with pytest.raises(PolicyViolation) as refused:
        await porting.approve(ports.runtime, OPS, port_id)
    assert refused.value.code == "port.approve.invalid_state"
    await ports.export(handle, "clearinghouse_rejected")


async def test_a_clearinghouse_that_is_down_asks_an_operator_instead_of_failing(ports):
    from ops import porting
    from workflows.attention import OperatorDecision

    ports.fault("fail_always")
    customer_id = await ports.customer()
    port_id, handle = await ports.open(
        direction="port_in",
        msisdn="87650006",
        donor_carrier="OtherTel",
        customer_id=customer_id,
        offering_id="PLAN_S",
    )
    ticket = None
    for _ in range(200):
        ticket = await ports.value(
            "select id from crm.ticket where waiting_workflow_id = :w and state not in ('resolved', 'closed')",
            w=f"port-{port_id}",
        )
        if ticket:
            break
        await asyncio.sleep(0.05)
    assert ticket, "no operator ticket was opened"
    assert (await porting.get(ports.runtime, port_id))["state"] == "acknowledged"
    # The operator checked with the donor by phone: the step is resolved by hand, the port goes on.
    await handle.signal(
        "operator_decision",
        OperatorDecision("port/clearinghouse", "resolve", "donor confirmed by phone", OPS),
    )
    await ports.until(port_id, "validated")
    assert await ports.value("select state from crm.ticket where id = :t", t=ticket) == "resolved"
    await porting.reject(ports.runtime, OPS, port_id, "test over")
    assert (await ports.finish(port_id, handle)).state == "rejected"
    await ports.export(handle, "clearinghouse_down_operator_resolved")


async def test_an_operator_rejects_a_validated_port(ports):
    from ops import porting

    customer_id = await ports.customer()
    request = dict(
        direction="port_in",
        msisdn="87650004",
        donor_carrier="OtherTel",
        customer_id=customer_id,
        offering_id="PLAN_S",
        idempotency_key="port-k-1",
    )
    port_id, handle = await ports.open(**request)
    await ports.until(port_id, "validated")
    # The same request sent again (same Idempotency-Key) is the same request, not a second one.
    assert (await ports.open(**request))[0] == port_id
    assert await ports.value("select count(*) from porting.port_request") == 1
    with pytest.raises(PolicyViolation) as reused:
        await ports.open(**{**request, "msisdn": "87650009"})
    assert reused.value.code == "idempotency_key.reused"
    rejected = await porting.reject(ports.runtime, OPS, port_id, "customer withdrew")
    assert rejected["state"] == "rejected" and rejected["reason"] == "customer withdrew"
    assert (await ports.finish(port_id, handle)).state == "rejected"
    assert await ports.value("select count(*) from ordering.product_order") == 0
    assert await ports.value("select count(*) from inventory.msisdn where msisdn = '87650004'") == 0
    # The number is free for a new request once this one has ended (one live request per number).
    again, _ = await ports.open(
        direction="port_in",
        msisdn="87650004",
        donor_carrier="OtherTel",
        customer_id=customer_id,
        offering_id="PLAN_S",
    )
    assert again != port_id
    await ports.until(again, "validated")  # settled before the test ends
    await ports.export(handle, "operator_rejected")


async def test_an_approval_window_that_runs_out_fails_the_port(ports):
    from ops import porting

    customer_id = await ports.customer()
    port_id, handle = await ports.open(
        direction="port_in",
        msisdn="87650005",
        donor_carrier="OtherTel",
        customer_id=customer_id,
        offering_id="PLAN_S",
        requested_port_date=await ports.tomorrow(),
    )
    await ports.until(port_id, "validated")
    # The server skips past the port date plus the grace.
    assert (await ports.finish(port_id, handle, timedelta(hours=12))).state == "failed"
    view = await porting.get(ports.runtime, port_id)
    assert view["reasonCode"] == "port.window.expired"
    assert await ports.value("select count(*) from inventory.msisdn where msisdn = '87650005'") == 0
    assert (await ports.events(port_id))[-1] == "port.failed"
    await ports.export(handle, "window_expired")


async def test_a_port_out_ends_the_line_and_the_number_is_never_sold_again(ports):
    from domains.inventory.services import reserve_msisdn
    from ops import porting
    from tests.domains.test_subscription_lifecycle import WORKER

    sub, line = await ports.live_line()
    port_id, handle = await ports.open(direction="port_out", msisdn=sub.msisdn, recipient_carrier="OtherTel")
    view = await ports.until(port_id, "validated")
    assert view["subscriptionId"] == sub.id and view["customerId"] == sub.customer_id
    await porting.approve(ports.runtime, OPS, port_id)
    assert (await ports.finish(port_id, handle)).state == "completed"

    assert (await line.result()).state == "terminated"  # through the line's own workflow
    assert (
        await ports.value(
            "select state || ':' || state_reason from subscription.subscription where id = :s", s=sub.id
        )
        == "terminated:ported_out"
    )
    assert (
        await ports.value("select status from inventory.msisdn where msisdn = :m", m=sub.msisdn)
        == "ported_out"
    )
    async with ports.runtime.db() as s:
        with pytest.raises(PolicyViolation):
            await reserve_msisdn(s, WORKER, reserved_for="ORD-999999", preferred=sub.msisdn)
    # Nor can it come back by a port-in: it left for good.
    with pytest.raises(PolicyViolation) as refused:
        await ports.open(
            direction="port_in",
            msisdn=sub.msisdn,
            donor_carrier="OtherTel",
            subscription_id=sub.id,
            requested_port_date=clock.now().date(),
        )
    assert refused.value.code == "port.in.number_ported_out"
    await ports.export(handle, "port_out")


# Last in the module: the SLA timer of its operator ticket upsets the shared test server's later
# time skipping (an h2 error on the next long skip), so no test follows it.
async def test_a_failed_order_keeps_the_ported_number_held_and_asks_an_operator(ports):
    from ops import porting
    from tests.domains.test_subscription_lifecycle import DECLINED_CARD, new_customer
    from workflows.attention import OperatorDecision

    customer_id = await new_customer(ports.runtime, DECLINED_CARD)
    port_id, handle = await ports.open(
        direction="port_in",
        msisdn="87650007",
        donor_carrier="OtherTel",
        customer_id=customer_id,
        offering_id="PLAN_S",
    )
    await ports.until(port_id, "validated")
    await porting.approve(ports.runtime, OPS, port_id)
    ticket = None
    for _ in range(400):  # the order fails within seconds; the port reads it 2 s, then 5 s later
        ticket = await ports.value(
            "select id from crm.ticket where waiting_workflow_id = :w and waiting_topic = 'port/order-failed/1'",
            w=f"port-{port_id}",
        )
        if ticket:
            break
        await asyncio.sleep(0.1)
    assert ticket, "no operator ticket for the failed order"
    order_id = (await porting.get(ports.runtime, port_id))["orderId"]
    assert await ports.value("select state from ordering.product_order where id = :o", o=order_id) == "failed"
    # Never back on sale while the operator decides: held for the port.
    held = await ports.value(
        "select status || ':' || reserved_for from inventory.msisdn where msisdn = '87650007'"
    )
    assert held == f"held:{port_id}"
    await handle.signal(
        "operator_decision", OperatorDecision("port/order-failed/1", "resolve", "customer gave up", OPS)
    )
    assert (await ports.finish(port_id, handle)).state == "failed"
    assert (await porting.get(ports.runtime, port_id))["reasonCode"] == "port.order.failed"
    await ports.export(handle, "order_failed_operator_gave_up")

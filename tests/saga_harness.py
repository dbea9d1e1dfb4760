"""A worker on the dev server, bound to the test's own database, with scriptable faults.

Use the `saga` fixture (tests/conftest.py): it runs the real workflows and activities on a
per-test task queue, with the simulators at zero latency and faults you add with `saga.fault()`.
Request `api` as well to drive it through the HTTP API: both share the test's runtime.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from temporalio.service import RPCError
from temporalio.worker import Worker

from core.context import RequestContext
from core.db import transaction
from domains.payment.mock_gateway import MockGateway
from simulators.faults import Fault, FixedFaults
from simulators.network import simulated_network

CTX = RequestContext(actor="test", channel="scenario", service_identity="test")


@dataclass
class Saga:
    runtime: object
    client: object
    faults: FixedFaults
    gateway: MockGateway
    network: object
    task_queue: str
    extra: dict = field(default_factory=dict)

    def fault(self, task_type: str, fault_type: str, probability: float = 1.0) -> None:
        self.faults.faults.append(Fault(f"T_{task_type}_{fault_type}", task_type, fault_type, probability))

    async def customer(self, *, card: str = "4242424242424242", email: str | None = None) -> str:
        from domains.crm.services import create_customer
        from domains.payment.services import add_payment_method

        async with transaction(self.runtime.db) as s:
            cust = await create_customer(
                s,
                CTX,
                given_name="Ada",
                family_name="Lovelace",
                email=email or f"ada-{uuid.uuid4().hex[:8]}@example.com",
            )
            if card:
                await add_payment_method(
                    s, CTX, customer_id=cust.id, card_number=card, exp_month=12, exp_year=2035
                )
            return cust.id

    async def order(self, customer_id: str, offering_id: str = "PLAN_S", **kwargs):
        from ops.orders import OrderRequest, create_order

        return await create_order(self.runtime, CTX, OrderRequest(customer_id, offering_id, **kwargs))

    async def earlier_esim_flow(self):
        """A still-running eSIM flow for the profile the next order will reserve, on a queue no
        worker polls, so it closes only when told to: a failed order's flow that is still closing.
        Returns its ICCID and handle."""
        from sqlalchemy import text

        from workflows.esim_provisioning import EsimInput, EsimProvisioningWorkflow, esim_workflow_id

        async with self.runtime.engine.connect() as conn:
            iccid = (
                await conn.execute(
                    text("select min(iccid) from inventory.esim_profile where profile_state = 'available'")
                )
            ).scalar_one()
        handle = await self.client.start_workflow(
            EsimProvisioningWorkflow.run,
            EsimInput(iccid, "SO-earlier", "ORD-earlier", "CUST-earlier", "0", "0", "m", "c", "PLAN_M"),
            id=esim_workflow_id(iccid),
            task_queue=f"{self.task_queue}-idle",
        )
        return iccid, handle

    async def until_signalled(self, handle, seconds: float = 30) -> None:
        from temporalio.api.enums.v1 import EventType

        deadline = asyncio.get_running_loop().time() + seconds
        while EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED not in {
            e.event_type async for e in handle.fetch_history_events()
        }:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{handle.id} was never signalled")
            await asyncio.sleep(0.1)

    def refusing_order_completion(self):
        """While inside: the database refuses to mark any order completed with an integrity error
        (a check violation from a trigger), as a broken schema or a bug would: the order's last step
        fails fast, after its line and the line's workflow exist."""
        import contextlib

        from sqlalchemy import text

        @contextlib.asynccontextmanager
        async def refusing():
            async with self.runtime.engine.begin() as conn:
                await conn.execute(
                    text(
                        "create or replace function ordering.test_refuse_completion() returns trigger "
                        "language plpgsql as $$ begin if new.state = 'completed' then raise exception "
                        "'order completion refused (test)' using errcode = '23514'; end if; return new; end $$"
                    )
                )
                await conn.execute(
                    text(
                        "create trigger test_refuse_completion before update on ordering.product_order "
                        "for each row execute function ordering.test_refuse_completion()"
                    )
                )
            try:
                yield
            finally:
                async with self.runtime.engine.begin() as conn:
                    await conn.execute(
                        text("drop trigger if exists test_refuse_completion on ordering.product_order")
                    )

        return refusing()

    def handle(self, order_id: str):
        from workflows.product_order import ProductOrderWorkflow

        return self.client.get_workflow_handle_for(ProductOrderWorkflow.run, f"order-{order_id}")


async def running_saga(
    temporal_dev,
    runtime,
    settings,
    *,
    interceptors: Sequence[object] = (),
    wrap_gateway=None,
    replace_activities: dict | None = None,
):
    """`interceptors` (e.g. core.telemetry.temporal_interceptors()) go on a client of their own,
    shared by the runtime and the worker; without them the session's plain client is used.
    `wrap_gateway(gateway)` returns the gateway the activities use (e.g. one that fails refunds);
    `replace_activities` maps an activity name to the function that runs instead (a fault)."""
    from temporalio.client import Client

    settings.task_queue = f"test-{uuid.uuid4().hex[:8]}"
    settings.task_deadline_seconds = 2.0
    client = temporal_dev.client
    if interceptors:
        client = Client(client.service_client, namespace=client.namespace, interceptors=list(interceptors))
    runtime.use_temporal(client)
    faults = FixedFaults()
    network = simulated_network(settings, runtime.db, faults=faults)
    gateway = MockGateway(runtime.db, faults=faults)  # saga.fault("PAYMENT_CHARGE", …) reaches it
    from activities.registry import build_activities
    from worker import workflow_runner
    from workflows.registry import WORKFLOWS

    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        activities=_replaced(
            build_activities(
                runtime, network=network, gateway=wrap_gateway(gateway) if wrap_gateway else gateway
            ),
            replace_activities or {},
        ),
    ):
        yield Saga(runtime, client, faults, gateway, network, settings.task_queue)
        await end_leftovers(temporal_dev.client, settings.task_queue, await _reserved_iccids(runtime))


async def end_leftovers(client, task_queue: str, iccids: list[str]) -> None:
    """Every test database starts from the same pools, so the next test would reuse ICCIDs (and
    their `esim-<ICCID>` workflow ids): end what a test left running on the shared dev server.
    Visibility lags behind (a child started a moment ago is not listed yet), so the eSIM workflows
    are also ended by id, from every profile the test's database reserved."""
    ids = {
        (wf.id, wf.run_id)
        async for wf in client.list_workflows(f'TaskQueue = "{task_queue}" AND ExecutionStatus = "Running"')
    }
    ids |= {(f"esim-{iccid}", None) for iccid in iccids}
    for wf_id, run_id in ids:
        try:
            await client.get_workflow_handle(wf_id, run_id=run_id).terminate("test finished")
        except RPCError:  # already closed, or never started
            pass


def _replaced(activities: list, replacements: dict) -> list:
    from temporalio.activity import _Definition

    names = {_Definition.must_from_callable(a).name: a for a in activities}
    return list({**names, **replacements}.values())


async def _reserved_iccids(runtime) -> list[str]:
    from sqlalchemy import text

    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT DISTINCT aggregate_id FROM audit.domain_event "
                "WHERE aggregate_type = 'esim' AND event_type = 'inventory.esim.reserved'"
            )
        )
        return [r[0] for r in rows]

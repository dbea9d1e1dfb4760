"""Export the histories the replay tests check the workflow code against.

Usage: .venv/bin/python scripts/export_histories.py [case …]   (all cases when none is named)

Starts a throw-away embedded Postgres (migrated and seeded) and an in-memory Temporal dev server,
runs a worker with the real workflows and activities (simulators at zero latency), plays each case
below and writes the history of every workflow it involved of the types the case names — order,
service order, eSIM, subscription — to tests/replay/histories/<WorkflowType>/<case>.json. Workflows still open at the
end (the eSIM waiting for the device, the subscription holding the line) are exported as they are;
replay handles open histories.

When to re-export. tests/replay/test_replay.py replays these files with the current code and fails
on any nondeterminism: that failure means a change would break the orders running in production.
So do NOT re-export to make it pass. Change workflow code compatibly instead: put the new behaviour
behind `if workflow.patched("<change-id>"):` (old histories take the old branch), keep the old
histories, and run this script to *add* the new ones (a new case, or after the change, to cover
the patched branch). Re-export everything only when the old code is gone from production (after
`workflow.deprecate_patch` and no open workflow predates the change), or when a case is added.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.settings import Settings  # noqa: E402
from stack import postgres, temporal  # noqa: E402

HISTORIES = ROOT / "tests" / "replay" / "histories"
ORDER, SERVICE_ORDER, ESIM, SUBSCRIPTION = (
    "ProductOrderWorkflow",
    "ServiceOrderWorkflow",
    "EsimProvisioningWorkflow",
    "SubscriptionWorkflow",
)
FULL_SAGA = {ORDER, SERVICE_ORDER, ESIM, SUBSCRIPTION}


async def happy_path(saga) -> str:
    order = await saga.order(await saga.customer())
    await _expect(saga, order.id, "completed")
    return _of_order(order.id)


async def declined_card(saga) -> str:
    order = await saga.order(await saga.customer(card="4000000000000002"))
    await _expect(saga, order.id, "failed")
    return _of_order(order.id)


async def retried_task(saga) -> str:
    saga.fault("HLR_PROVISION", "fail_first_attempt")
    order = await saga.order(await saga.customer())
    await _expect(saga, order.id, "completed")
    return _of_order(order.id)


async def stuck_then_resolved(saga) -> str:
    from ops.orders import resolve_task
    from tests.saga_harness import CTX

    saga.fault("OCS_BALANCE_INIT", "stuck")
    order = await saga.order(await saga.customer())
    task_id = await _wait_for_stuck(saga, order.id, "OCS_BALANCE_INIT")
    await resolve_task(saga.runtime, CTX, task_id, "balance initialised by hand on the OCS console")
    await _expect(saga, order.id, "completed")
    return _of_order(order.id)


async def cancelled_before_som(saga) -> str:
    from core.clock import clock
    from ops.orders import cancel_order
    from tests.saga_harness import CTX

    order = await saga.order(await saga.customer(), requested_start=clock.now() + timedelta(hours=1))
    await cancel_order(saga.runtime, CTX, order.id, "changed my mind")
    await _expect(saga, order.id, "cancelled")
    return _of_order(order.id)


async def esim_flow_still_closing(saga) -> str:
    """The service order meets a still-running earlier flow of its profile, stops it, retries."""
    _, earlier = await saga.earlier_esim_flow()
    order = await saga.order(await saga.customer())
    await saga.until_signalled(earlier)
    await earlier.terminate("closed on its cancel")
    await _expect(saga, order.id, "completed")
    return _of_order(order.id)


async def quarantine_release(saga) -> str:
    from activities.inventory import QuarantineSweep
    from workflows.quarantine import QuarantineReleaseWorkflow

    # What the hourly schedule starts; a number due for release makes the sweep do its work.
    async with saga.runtime.engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(
            text(
                "update inventory.msisdn set status = 'quarantine', quarantine_until = now() - interval '1 day' "
                "where msisdn = (select max(msisdn) from inventory.msisdn where status = 'available')"
            )
        )
    wf_id = "msisdn-quarantine-release-replay"
    result = await saga.client.execute_workflow(
        QuarantineReleaseWorkflow.run, QuarantineSweep(), id=wf_id, task_queue=saga.task_queue
    )
    if result.numbers != 1:
        raise RuntimeError(f"the sweep released {result.numbers} numbers, expected 1")
    return f'WorkflowId = "{wf_id}"'


async def failed_after_line(saga) -> str:
    """The order's last step fails (the database refuses it) after the line and its workflow
    exist: every step is undone, the line's workflow cancelled, the network deprovisioned."""
    async with saga.refusing_order_completion():
        order = await saga.order(await saga.customer())
        await _expect(saga, order.id, "failed")
    return _of_order(order.id)


async def refund_waits_out_outage(saga) -> str:
    """As failed_after_line, while the gateway refuses refunds for a few seconds."""
    saga.fault("PAYMENT_REFUND", "unavailable")
    async with saga.refusing_order_completion():
        order = await saga.order(await saga.customer())
        await asyncio.sleep(4)
        saga.faults.faults.clear()
        await _expect(saga, order.id, "failed")
    return _of_order(order.id)


async def stuck_esim_cancelled(saga) -> str:
    """The eSIM preparation is stuck when the order fails for another reason: the eSIM flow
    honours the cancel, closes its ticket and gives its profile back."""
    saga.fault("ESIM_PROFILE_PREPARE", "stuck")
    saga.fault("OCS_BALANCE_INIT", "fail_always")
    order = await saga.order(await saga.customer())
    await _expect(saga, order.id, "failed")
    return _of_order(order.id)


async def network_undo_refused(saga) -> str:
    """The HLR refuses to deprovision a failed service order's number: the service order asks an
    operator (ticket) and keeps the number until the retry goes through."""
    from sqlalchemy import text

    from ops.attention import decide
    from tests.saga_harness import CTX

    saga.fault("OCS_BALANCE_INIT", "fail_always")
    saga.fault("HLR_DEPROVISION", "fail_always")
    order = await saga.order(await saga.customer())
    deadline = time.monotonic() + 30
    ticket = None
    while ticket is None and time.monotonic() < deadline:
        async with saga.runtime.engine.connect() as conn:
            ticket = (
                await conn.execute(
                    text(
                        "select t.id from crm.ticket t join ordering.product_order o "
                        "on t.waiting_workflow_id = 'service-order-' || o.service_order_id "
                        "where o.id = :o and t.state = 'open'"
                    ),
                    {"o": order.id},
                )
            ).scalar()
        await asyncio.sleep(0.2)
    if ticket is None:
        raise RuntimeError("no network-undo ticket")
    saga.faults.faults.clear()
    await decide(saga.runtime, CTX, ticket, "retry")
    await _expect(saga, order.id, "failed")
    return _of_order(order.id)


async def service_order_fails_with_result(saga) -> str:
    """A network task fails for good: the service order compensates and completes with a failed
    result, which the order reads as its failure (no workflow ends Failed)."""
    saga.fault("PCRF_POLICY_PUSH", "fail_always")
    order = await saga.order(await saga.customer())
    await _expect(saga, order.id, "failed")
    return _of_order(order.id)


async def esim_fails_with_result(saga) -> str:
    """The eSIM preparation fails for good: the eSIM flow completes with a failed result, the
    service order reads it as its failure, compensates and completes failed in turn."""
    saga.fault("ESIM_PROFILE_PREPARE", "fail_always")
    order = await saga.order(await saga.customer())
    await _expect(saga, order.id, "failed")
    return _of_order(order.id)


async def task_lost_with_worker(saga) -> str:
    """HLR_PROVISION's first three attempts never answer, as if the worker died mid-call each
    time (the server times them out start-to-close): the task runs again with a fresh budget and
    the order completes."""
    LOST_ATTEMPTS["HLR_PROVISION"] = 3
    try:
        order = await saga.order(await saga.customer())
        await _expect(saga, order.id, "completed", seconds=120)
    finally:
        LOST_ATTEMPTS.clear()
    return _of_order(order.id)


# Attempts at a task type that hang (a worker lost mid-call); every other call is the real activity.
LOST_ATTEMPTS: dict[str, int] = {}
_REAL: dict = {}


def _run_task_losing_attempts():
    from temporalio import activity

    from activities.provisioning import TaskOutcome, TaskRequest

    async def run_task(req: TaskRequest) -> TaskOutcome:
        if LOST_ATTEMPTS.get(req.task_type, 0) > 0:
            LOST_ATTEMPTS[req.task_type] -= 1
            await asyncio.sleep(3600)
        return await _REAL["run_task"](req)

    run_task.__annotations__ = {"req": TaskRequest, "return": TaskOutcome}
    return activity.defn(name="run_task")(run_task)


def _of_order(order_id: str) -> str:
    return f'BssOrderId = "{order_id}"'


# case -> (how to play it: returns a visibility query for its workflows, the types they must include)
CASES: dict[str, tuple[Callable[..., Awaitable[str]], set[str]]] = {
    "happy_path": (happy_path, FULL_SAGA),
    "declined_card": (declined_card, {ORDER, SERVICE_ORDER, ESIM}),
    "retried_task": (retried_task, FULL_SAGA),
    "stuck_then_resolved": (stuck_then_resolved, FULL_SAGA),
    "cancelled_before_som": (cancelled_before_som, {ORDER}),
    "quarantine_release": (quarantine_release, {"QuarantineReleaseWorkflow"}),
    "esim_flow_still_closing": (esim_flow_still_closing, FULL_SAGA),
    "failed_after_line": (failed_after_line, FULL_SAGA),
    "refund_waits_out_outage": (refund_waits_out_outage, FULL_SAGA),
    "stuck_esim_cancelled": (stuck_esim_cancelled, {ORDER, SERVICE_ORDER, ESIM}),
    "network_undo_refused": (network_undo_refused, {ORDER, SERVICE_ORDER, ESIM}),
    "service_order_fails_with_result": (service_order_fails_with_result, {ORDER, SERVICE_ORDER, ESIM}),
    "esim_fails_with_result": (esim_fails_with_result, {ORDER, SERVICE_ORDER, ESIM}),
    "task_lost_with_worker": (task_lost_with_worker, FULL_SAGA),
}
# The same plays after the one-workflow-task patches (issue 12: the order's charge, the network
# tasks and the eSIM preparation as local activities): order, service order and eSIM histories
# (the line's workflow is not what they change).
for _case in (
    "happy_path",
    "declined_card",
    "cancelled_before_som",
    "stuck_then_resolved",
    "failed_after_line",
    "stuck_esim_cancelled",
    "task_lost_with_worker",
):
    CASES[f"local_tasks_{_case}"] = (CASES[_case][0], CASES[_case][1] & {ORDER, SERVICE_ORDER, ESIM})


async def _expect(saga, order_id: str, state: str, seconds: float = 60) -> None:
    result = await asyncio.wait_for(saga.handle(order_id).result(), seconds)
    if result.state != state:
        raise RuntimeError(f"order {order_id} ended {result.state} ({result.reason}), expected {state}")


async def _wait_for_stuck(saga, order_id: str, task_type: str) -> str:
    from sqlalchemy import text

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        async with saga.runtime.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "select t.id, t.state from service_ordering.provisioning_task t "
                        "join ordering.product_order o on o.service_order_id = t.service_order_id "
                        "where o.id = :o and t.task_type = :t"
                    ),
                    {"o": order_id, "t": task_type},
                )
            ).first()
        if row is not None and row.state == "stuck":
            return row.id
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{task_type} of {order_id} never became stuck")


async def _workflows_of(client, query: str, types: set[str]) -> list:
    """Every workflow the query finds (visibility lags a little behind)."""
    deadline = time.monotonic() + 15
    while True:
        found = [wf async for wf in client.list_workflows(query)]
        if {wf.workflow_type for wf in found} >= types or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


async def _export(client, case: str, query: str, types: set[str]) -> list[Path]:
    written = []
    found = await _workflows_of(client, query, types)
    missing = types - {wf.workflow_type for wf in found}
    if missing:
        raise RuntimeError(f"{case}: no {sorted(missing)} workflow found for {query}")
    for wf in found:
        if wf.workflow_type not in types:
            continue
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        path = HISTORIES / wf.workflow_type / f"{case}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        # Re-indented so a diff of two exports reads line by line.
        path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
        written.append(path)
    return written


async def play(settings: Settings, temporal_port: int, cases: list[str]) -> None:
    from temporalio.client import Client

    from ops.runtime import Runtime
    from tests.saga_harness import running_saga

    client = await Client.connect(f"127.0.0.1:{temporal_port}")
    runtime = Runtime.create(settings, pool_size=5)
    try:
        async for saga in running_saga(
            SimpleNamespace(client=client),
            runtime,
            settings,
            replace_activities={"run_task": _run_task_losing_attempts()},
        ):
            from activities.provisioning import ProvisioningActivities

            _REAL["run_task"] = ProvisioningActivities(saga.runtime, saga.network).run_task
            for case in cases:
                scenario, types = CASES[case]
                saga.faults.faults.clear()
                # A fresh SM-DP+ per case, as each test has: a failed order's profile comes back to
                # the pool under a new matching id while the simulator still holds the old one
                # (nothing sends ES2+ CancelOrder yet), and the next order would fail on it.
                saga.network.smdp.reset()
                query = await scenario(saga)
                for path in await _export(client, case, query, types):
                    print(f"  {case:<22} {path.relative_to(ROOT)}")
    finally:
        await runtime.close()


def main(argv: list[str]) -> None:
    from core.migrate import upgrade

    cases = argv or list(CASES)
    unknown = set(cases) - set(CASES)
    if unknown:
        raise SystemExit(f"unknown case(s) {sorted(unknown)}; the cases are {', '.join(CASES)}")
    from ops.seed import seed_reference_data

    # The declined, retried and stuck cases fail activities on purpose: no tracebacks for those.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bss-histories-") as tmp:
        work = Path(tmp)
        pg_port, temporal_port = postgres.free_port(), postgres.free_port()
        dev_server = temporal.spawn(None, temporal_port, None, work / "temporal.log")
        pg = postgres.start(work / "pg", pg_port, work / "pg.log")
        try:
            postgres.ensure_database(work / "pg", pg_port, "bss")
            settings = Settings(
                db_url=postgres.url(work / "pg", pg_port, "bss"),
                data_dir=work,
                temporal_address=f"127.0.0.1:{temporal_port}",
                sim_latency_factor=0.0,
            )
            upgrade(settings.database_url)
            asyncio.run(seed_reference_data(settings))
            temporal.wait_ready(dev_server, "127.0.0.1", temporal_port, work / "temporal.log")
            asyncio.run(play(settings, temporal_port, cases))
        finally:
            temporal.stop(dev_server)
            postgres.stop(pg)


if __name__ == "__main__":
    main(sys.argv[1:])

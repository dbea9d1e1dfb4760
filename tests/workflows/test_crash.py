"""Exactly once under crashes: the worker process is SIGKILLed twice while ten orders run.

The worker is the real `worker.py`, a separate OS process configured from BSS_* variables like in
production, on the session's Temporal dev server and this test's database. Afterwards every order
must have ended (completed, or failed with a reason), every card been charged once, and the
number and eSIM pools agree with the orders.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.saga_harness import CTX, Saga

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 10


class WorkerProcess:
    """`python worker.py` in its own session, its output in a log file the test reads for readiness."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    async def start(self, timeout: float = 30) -> None:
        self.starts += 1
        marker = f"worker polling task queue {self.env['BSS_TASK_QUEUE']}"
        with open(self.log, "ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "worker.py")],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while self.log.read_text().split(f"--- start {self.starts}\n")[-1].count(marker) == 0:
            assert self.proc.poll() is None, f"the worker exited at start-up:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the worker did not start polling in time"
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "the worker died on its own"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def rows(saga: Saga, sql: str, **params) -> list:
    async with saga.runtime.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def scalar(saga: Saga, sql: str, **params):
    return (await rows(saga, sql, **params))[0][0]


async def in_flight(saga: Saga, order_ids: list[str]) -> int:
    return await scalar(
        saga,
        "select count(*) from ordering.product_order where id = any(:ids) "
        "and state not in ('completed', 'failed', 'cancelled')",
        ids=order_ids,
    )


async def work_done(saga: Saga) -> int:
    return await scalar(saga, "select count(*) from audit.domain_event")


async def kill_once_busy(worker: WorkerProcess, saga: Saga, order_ids: list[str], min_delay: float) -> int:
    """Kill once this worker has done some work (audit rows appear) and at least `min_delay` has
    passed, so the kill lands in the middle of orders rather than while they wait on a timeout."""
    before = await work_done(saga)
    await asyncio.sleep(min_delay)
    deadline = time.monotonic() + 20
    while await work_done(saga) < before + 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    running = await in_flight(saga, order_ids)
    worker.kill()
    return running


async def end_what_is_left(client, task_queue: str) -> None:
    """eSIM and subscription workflows wait for days; the next test reuses the same ICCIDs."""
    async for wf in client.list_workflows(f'TaskQueue = "{task_queue}" AND ExecutionStatus = "Running"'):
        await client.get_workflow_handle(wf.id, run_id=wf.run_id).terminate("test finished")


@pytest.fixture
def worker_env(settings, temporal_dev, tmp_path) -> dict[str, str]:
    settings.task_queue = f"crash-{uuid.uuid4().hex[:8]}"
    settings.task_deadline_seconds = 3.0  # orders read it; a lost task is retried after deadline + 10 s
    env = {k: v for k, v in os.environ.items() if not k.startswith("BSS_")}
    env.update(
        BSS_DB_URL=settings.database_url,
        BSS_TEMPORAL_ADDRESS=temporal_dev.client.service_client.config.target_host,
        BSS_TASK_QUEUE=settings.task_queue,
        BSS_SIM_LATENCY_FACTOR="0.3",  # HLR 0.15 s … : orders stay in flight while the worker dies
        BSS_TASK_DEADLINE_SECONDS=str(settings.task_deadline_seconds),
        BSS_DATA_DIR=str(tmp_path),
        PYTHONUNBUFFERED="1",
    )
    return env


async def test_orders_end_exactly_once_when_the_worker_is_killed_twice(
    temporal_dev, runtime, settings, worker_env, tmp_path
):
    from domains.payment.mock_gateway import MockGateway
    from ops.orders import OrderRequest, create_order
    from simulators.faults import FixedFaults

    runtime.use_temporal(temporal_dev.client)
    saga = Saga(
        runtime, temporal_dev.client, FixedFaults(), MockGateway(runtime.db), None, settings.task_queue
    )
    worker = WorkerProcess(worker_env, tmp_path / "worker.log")
    assigned_before = await scalar(saga, "select count(*) from inventory.msisdn where status = 'assigned'")
    esims_held_before = await scalar(
        saga, "select count(*) from inventory.esim_profile where profile_state <> 'available'"
    )
    customers = [await saga.customer() for _ in range(ORDERS)]
    started = time.monotonic()
    try:
        await worker.start()
        orders = [await create_order(runtime, CTX, OrderRequest(c, "PLAN_S")) for c in customers]
        ids = [o.id for o in orders]
        running_at_first_kill = await kill_once_busy(worker, saga, ids, min_delay=0.5)
        await worker.start()
        running_at_second_kill = await kill_once_busy(worker, saga, ids, min_delay=1.0)
        await worker.start()
        results = await asyncio.wait_for(asyncio.gather(*(saga.handle(i).result() for i in ids)), timeout=90)
    finally:
        worker.stop()
        await end_what_is_left(temporal_dev.client, settings.task_queue)
    recovery = time.monotonic() - started
    assert running_at_first_kill > 0 and running_at_second_kill > 0, "a kill landed when no order was running"

    # Every order ended, in the workflow and in the database alike; a failure says why.
    by_id = {r.order_id: r for r in results}
    assert {r.state for r in results} <= {"completed", "failed"}, [(r.order_id, r.state) for r in results]
    for order_id, state, reason in await rows(
        saga, "select id, state, failure_reason from ordering.product_order where id = any(:ids)", ids=ids
    ):
        assert state == by_id[order_id].state
        if state == "failed":
            assert reason, f"{order_id} failed without a reason"
    completed = [r for r in results if r.state == "completed"]
    assert await in_flight(saga, ids) == 0

    # One charge per card: approved exactly once for a completed order, never kept for a failed one.
    for cust, order in zip(customers, orders, strict=True):
        payments = await rows(
            saga, "select idempotency_key, status from payment.payment where customer_id = :c", c=cust
        )
        approved = [k for k, status in payments if status == "approved"]
        if by_id[order.id].state == "completed":
            assert approved == [f"order-{order.id}/activation"], payments
        else:
            assert approved == [], payments
    assert (
        await scalar(
            saga,
            "select count(*) - count(distinct idempotency_key) from payment.payment where customer_id = any(:c)",
            c=customers,
        )
        == 0
    )

    # One subscription per completed order, none for a failed one; each with its own number and eSIM.
    subs = await rows(
        saga,
        "select order_id, msisdn, iccid from subscription.subscription where order_id = any(:ids)",
        ids=ids,
    )
    assert sorted(o for o, _, _ in subs) == sorted(r.order_id for r in completed)
    assert len({m for _, m, _ in subs}) == len({i for _, _, i in subs}) == len(subs)

    # The pools agree: as many numbers and profiles held as lines activated, nothing left reserved.
    assert await scalar(saga, "select count(*) from inventory.msisdn where status = 'assigned'") == (
        assigned_before + len(completed)
    )
    assert await scalar(saga, "select count(*) from inventory.msisdn where status = 'reserved'") == 0
    assert await scalar(
        saga, "select count(*) from inventory.esim_profile where profile_state <> 'available'"
    ) == esims_held_before + len(completed)
    assert (
        await scalar(saga, "select count(*) from inventory.esim_profile where profile_state = 'reserved'")
        == 0
    )
    assert await scalar(
        saga,
        "select count(*) from inventory.esim_profile where assigned_to_subscription_id is not null "
        "and iccid = any(:i)",
        i=[i for _, _, i in subs],
    ) == len(subs)
    assert worker.starts == 3
    print(f"\n{len(completed)}/{ORDERS} completed after two kills in {recovery:.1f} s")

"""Signup holds on the time-skipping server: a held number is released when its 24 h are up, a
cancelled hold releases it at once, and a number cannot be held twice. (An order taking a held
number runs the real saga: tests/workflows/test_hold_order_rearm.py.)"""

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
from core.errors import Conflict, NotFound
from ops import inventory as ops
from worker import workflow_runner
from workflows.signup_hold import SignupHoldWorkflow

CTX = RequestContext(actor="portal", channel="portal", service_identity="test")
HISTORIES = Path(__file__).resolve().parent.parent / "replay" / "histories" / "SignupHoldWorkflow"


async def export(env, handle, case: str) -> None:
    """BSS_EXPORT_HISTORIES=1 writes this run's history as a replay case."""
    if os.environ.get("BSS_EXPORT_HISTORIES") != "1":
        return
    HISTORIES.mkdir(parents=True, exist_ok=True)
    (HISTORIES / f"{case}.json").write_text((await handle.fetch_history()).to_json())


@pytest_asyncio.fixture
async def holds(temporal_time_skipping, runtime, settings):
    from activities.registry import build_activities
    from simulators.network import simulated_network
    from workflows.registry import WORKFLOWS

    env = temporal_time_skipping  # its search attributes are registered by the session fixture
    settings.task_queue = f"hold-{uuid.uuid4().hex[:8]}"
    runtime.use_temporal(env.client)
    clock.freeze(await env.get_current_time())
    async with Worker(
        env.client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        activities=build_activities(runtime, network=simulated_network(settings, runtime.db)),
    ):
        yield env


async def finished(handle):
    """The workflow's result once it has completed (polled: no wall-clock wait is asserted)."""
    from temporalio.client import WorkflowExecutionStatus

    for _ in range(200):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return await handle.result()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} never completed")


async def number(runtime, msisdn: str) -> tuple[str, str | None]:
    async with runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                text("select status, reserved_for from inventory.msisdn where msisdn = :m"), {"m": msisdn}
            )
        ).one()
    return row[0], row[1]


async def events(runtime, msisdn: str) -> list[str]:
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "select event_type from audit.domain_event where aggregate_id = :m "
                "and event_type like 'inventory.msisdn.%' order by id"
            ),
            {"m": msisdn},
        )
        return list(rows.scalars())


async def test_a_hold_expires_after_24h_and_the_number_goes_back_on_sale(holds, runtime):
    view = await ops.hold_number(runtime, CTX, msisdn="90000321")
    assert (view.state, view.hold_ref) == ("held", "signup-hold-90000321")
    assert view.expires_at - view.held_at == timedelta(hours=24)
    assert await number(runtime, "90000321") == ("held", "signup-hold-90000321")
    handle = holds.client.get_workflow_handle_for(SignupHoldWorkflow.run, "signup-hold-90000321")

    await holds.sleep(timedelta(hours=23))
    assert await number(runtime, "90000321") == ("held", "signup-hold-90000321")
    await holds.sleep(timedelta(hours=2))
    result = await finished(handle)

    assert result.state == "expired"
    assert await number(runtime, "90000321") == ("available", None)
    assert await events(runtime, "90000321") == ["inventory.msisdn.held", "inventory.msisdn.hold_released"]
    await export(holds, handle, "expired")


async def test_a_cancelled_hold_releases_at_once_and_a_number_is_held_once(holds, runtime):
    await ops.hold_number(runtime, CTX, msisdn="90000322")
    with pytest.raises(Conflict) as err:
        await ops.hold_number(runtime, CTX, msisdn="90000322")
    assert err.value.code == "msisdn.hold.already_held"

    cancelled = await ops.cancel_hold(runtime, CTX, "90000322")

    assert cancelled.state == "cancelled"
    assert await number(runtime, "90000322") == ("available", None)
    handle = holds.client.get_workflow_handle_for(SignupHoldWorkflow.run, "signup-hold-90000322")
    assert (await finished(handle)).state == "cancelled"
    with pytest.raises(NotFound):
        await ops.cancel_hold(runtime, CTX, "90000322")
    await export(holds, handle, "cancelled")


async def test_a_random_pick_holds_some_available_number(holds, runtime):
    view = await ops.hold_number(runtime, CTX)
    assert await number(runtime, view.msisdn) == ("held", f"signup-hold-{view.msisdn}")
    await ops.cancel_hold(runtime, CTX, view.msisdn)


async def test_a_moved_business_clock_expires_the_hold(holds, runtime):
    """`bss clock advance` on a test stack tells hold workflows (ops/clock.py CLOCK_FOLLOWERS)."""
    from workflows.subscription import ClockChanged

    view = await ops.hold_number(runtime, CTX, msisdn="90000323")
    handle = holds.client.get_workflow_handle_for(SignupHoldWorkflow.run, view.hold_ref)
    moved = view.held_at + timedelta(hours=25)
    await handle.signal("clock_changed", ClockChanged(moved.isoformat()))

    assert (await finished(handle)).state == "expired"
    assert await number(runtime, "90000323") == ("available", None)
    await export(holds, handle, "clock_advanced")

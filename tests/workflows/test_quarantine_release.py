"""The hourly quarantine sweep: a workflow on the real dev server puts numbers whose 90 days are up
back on sale, and leaves the others; the worker's schedule for it is created once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from activities.inventory import QuarantineSweep
from tests.saga_harness import Saga
from workflows.quarantine import EVERY, SCHEDULE_ID, QuarantineReleaseWorkflow, ensure_schedule


async def _quarantine(saga: Saga, msisdn: str, until_days: int) -> None:
    async with saga.runtime.engine.begin() as conn:
        await conn.execute(
            text(
                "update inventory.msisdn set status = 'quarantine', "
                "quarantine_until = now() + make_interval(days => :d) where msisdn = :m"
            ),
            {"m": msisdn, "d": until_days},
        )


async def _status(saga: Saga, msisdn: str) -> str:
    async with saga.runtime.engine.connect() as conn:
        return (
            await conn.execute(text("select status from inventory.msisdn where msisdn = :m"), {"m": msisdn})
        ).scalar_one()


async def test_the_sweep_releases_only_numbers_whose_quarantine_is_over(saga: Saga):
    async with saga.runtime.engine.connect() as conn:
        due, not_due = (
            await conn.execute(
                text(
                    "select msisdn from inventory.msisdn where status = 'available' order by msisdn desc limit 2"
                )
            )
        ).scalars()
    await _quarantine(saga, due, -1)
    await _quarantine(saga, not_due, 10)

    result = await saga.client.execute_workflow(
        QuarantineReleaseWorkflow.run,
        QuarantineSweep(),
        id=f"quarantine-sweep-{due}",
        task_queue=saga.task_queue,
        execution_timeout=timedelta(seconds=30),
    )

    assert result.numbers == 1
    assert await _status(saga, due) == "available"
    assert await _status(saga, not_due) == "quarantine"
    async with saga.runtime.engine.connect() as conn:
        actor = (
            await conn.execute(
                text(
                    "select actor from audit.domain_event where event_type = 'inventory.msisdn.quarantine_ended' "
                    "and aggregate_id = :m"
                ),
                {"m": due},
            )
        ).scalar_one()
    assert actor == f"workflow:quarantine-sweep-{due}"


async def test_the_schedule_is_created_once_and_runs_hourly(saga: Saga):
    # Its own id: a stack the CLI tests started on the shared dev server has made the real one.
    schedule_id = f"{SCHEDULE_ID}-{saga.task_queue}"
    try:
        created = [await ensure_schedule(saga.client, saga.task_queue, schedule_id) for _ in range(2)]
        assert created == [True, False]
        described = await saga.client.get_schedule_handle(schedule_id).describe()
        assert [i.every for i in described.schedule.spec.intervals] == [EVERY]
        assert described.schedule.action.workflow == "QuarantineReleaseWorkflow"
        assert described.schedule.action.task_queue == saga.task_queue
    finally:
        await saga.client.get_schedule_handle(schedule_id).delete()

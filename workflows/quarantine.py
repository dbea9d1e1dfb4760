"""Numbers come back on sale: a Temporal Schedule runs this sweep every hour, and it puts every
MSISDN whose 90-day quarantine has passed (business time) back in the pool as available."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities, QuarantineReleased, QuarantineSweep
    from workflows.common import DB_STEP

SCHEDULE_ID = "msisdn-quarantine-release"
EVERY = timedelta(hours=1)


@workflow.defn
class QuarantineReleaseWorkflow:
    @workflow.run
    async def run(self, msg: QuarantineSweep) -> QuarantineReleased:
        return await workflow.execute_local_activity_method(
            InventoryActivities.release_expired_quarantine, msg, **DB_STEP
        )


async def ensure_schedule(client, task_queue: str, schedule_id: str = SCHEDULE_ID) -> bool:
    """Create the hourly sweep once per namespace; True when this call created it."""
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleAlreadyRunningError,
        ScheduleIntervalSpec,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
    )

    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            QuarantineReleaseWorkflow.run,
            QuarantineSweep(),
            id=schedule_id,  # Temporal appends the scheduled time
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=EVERY)]),
        # A sweep still running (Postgres down) makes the next one redundant, not queued.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(schedule_id, schedule)
        return True
    except ScheduleAlreadyRunningError:
        return False

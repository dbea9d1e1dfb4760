"""Composition root of the Temporal worker: settings → runtime → adapters → activities → Worker."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


# What the workflows import from outside the standard library and the SDK (which the default
# restrictions pass through already), besides what they import inside
# `workflow.unsafe.imports_passed_through()`: our own data classes and rule codes (activities, core,
# domains) and the libraries those pull in. None holds per-run state; everything else, above all
# each workflow's own module, is loaded afresh for every run, so the sandbox keeps module state
# apart and guards determinism.
PASSTHROUGH_MODULES = (
    "activities",
    "core",
    "domains",
    "pydantic",
    "pydantic_core",
    "sqlalchemy",
    "sqlmodel",
)


def workflow_runner(strict: bool = False):
    """The sandbox with the SDK's default restrictions plus PASSTHROUGH_MODULES (as the SDK documents:
    `SandboxRestrictions.default.with_passthrough_modules(...)`), never `with_passthrough_all_modules()`.

    `strict` (the tests) makes any other module a workflow imports outside a passthrough block an
    error instead of a silent re-import, so the list above stays complete.
    """
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
    from temporalio.workflow import SandboxImportNotificationPolicy

    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    if strict:
        restrictions = restrictions.with_import_notification_policy(
            SandboxImportNotificationPolicy.RAISE_ON_UNINTENTIONAL_PASSTHROUGH
        )
    return SandboxedWorkflowRunner(restrictions=restrictions)


async def build_worker(runtime, client):
    from temporalio.worker import Worker

    from activities.registry import build_activities
    from workflows.registry import WORKFLOWS

    activities = build_activities(runtime)
    if not WORKFLOWS and not activities:
        return None
    return Worker(
        client,
        workflow_runner=workflow_runner(),
        task_queue=runtime.settings.task_queue,
        workflows=WORKFLOWS,
        activities=activities,
        max_concurrent_activities=100,
        max_cached_workflows=runtime.settings.workflow_cache,
        # A workflow task waits this long on this worker's own (sticky) queue before the server
        # hands it to any poller, which replays the whole history in a fresh sandbox instead of
        # resuming the cached run. The SDK's default: at 2 s, a burst of renewals due together
        # outwaited it (7 in 10 of 300 lines due at once were replayed, ~5 ms worker and ~5 ms Temporal
        # CPU each); after a crash the tasks on a dead worker's queue wait this long, once.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=10),
    )


async def main() -> None:
    from core import telemetry
    from core.settings import get_settings
    from ops.runtime import Runtime

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    telemetry.setup("bss-worker", settings)
    # No ping before each checkout: every step's transaction paid a round trip for it (bench/). A
    # pooled connection that died with Postgres fails its step, which is retried on a fresh one
    # (DB_STEP retries connection errors without limit); the sweepers' loops retry next round.
    runtime = Runtime.create(settings, pre_ping=False)
    client = await runtime.temporal()
    worker = await build_worker(runtime, client)
    from workflows.quarantine import ensure_schedule

    try:
        if await ensure_schedule(client, settings.task_queue):
            logging.info("created the hourly MSISDN quarantine release schedule")
    except Exception:  # noqa: BLE001 - a namespace without schedule rights still serves orders
        logging.exception("could not create the MSISDN quarantine release schedule")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    from ops.orders import run_order_sweeper

    # The three background loops below share a pool of their own that keeps one connection: they
    # start together and two of them run every minute, so the activities' pool would otherwise
    # keep three open for the life of the worker (a Postgres backend of a few MiB each); one that
    # overlaps another opens a connection for the pass and closes it after.
    loops = Runtime.create(settings, pool_size=1, pre_ping=False)
    loops.use_temporal(client)
    # Orders stored while Temporal was down start here (ops/orders.py): at start, then every minute.
    sweeper = asyncio.create_task(run_order_sweeper(loops, stop))
    from ops.crm import run_ticket_sla_sweeper

    ticket_sweeper = asyncio.create_task(run_ticket_sla_sweeper(loops, stop))  # missed SLA timers
    from ops.notify import run_notifier

    notifier = asyncio.create_task(run_notifier(loops, stop))  # audit events → messages → mailbox / SMTP
    if worker is None:
        logging.warning("no workflows or activities registered; the worker idles")
        await stop.wait()
    else:
        async with worker:
            logging.info("worker polling task queue %s", settings.task_queue)
            await stop.wait()
    await sweeper
    await ticket_sweeper
    await notifier
    await loops.close()
    await runtime.close()
    telemetry.shutdown()


if __name__ == "__main__":
    asyncio.run(main())

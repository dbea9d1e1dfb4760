"""Renewals: 10,000 lines whose periods all end at the same moment, each renewed by its own
SubscriptionWorkflow (charge the snapshot, reset the balances, continue as new).

The lines are written straight into the bench stack's database (one customer with one card owns
them all; numbers outside the pool), because selling 10,000 lines through the order saga would
measure the saga, not renewals. Their workflows are then started through Temporal, due together
at a moment far enough ahead that every workflow is waiting on its timer when it fires.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from bench.context import BenchContext, customer_with_card

ORDER = 70
LINES = 10_000
QUICK_LINES = 300
START_CONCURRENCY = 50


def run(ctx: BenchContext) -> None:
    asyncio.run(_run(ctx, "renewals"))
    # The same with two worker processes (`bss up --workers 2`), on a fresh set of lines; a REF
    # that cannot run two has no such figures.
    try:
        if ctx.stack.restart_with(BSS_WORKERS="2") == 2:
            asyncio.run(_run(ctx, "renewals.workers2"))
    finally:
        ctx.stack.restart_with(BSS_WORKERS="1")


async def _run(ctx: BenchContext, prefix: str) -> None:
    import asyncpg
    from temporalio.client import Client

    from workflows.subscription import SubscriptionInput, SubscriptionWorkflow

    lines = ctx.size(LINES, QUICK_LINES)
    async with ctx.api() as api:
        customer = await customer_with_card(api, "renewals")
    db = await asyncpg.connect(ctx.stack.db_url(driver="postgresql"))
    client = await Client.connect(f"127.0.0.1:{ctx.stack.env['BSS_TEMPORAL_PORT']}")
    # Far enough ahead for every workflow to start and sit on its timer before the moment comes.
    setup_budget = timedelta(seconds=max(20 if ctx.quick else 60, lines / 60))
    due = datetime.now(UTC) + setup_budget
    tag = f"{int(time.time())}"
    ids = [f"SUB-R{tag}{i:05d}" for i in range(lines)]
    await _insert_lines(db, ids, customer, due, tag)

    sem = asyncio.Semaphore(START_CONCURRENCY)
    rss_before = _worker_rss_mib(ctx)
    cpu_before_starts = ctx.cpu_sample()
    started = time.monotonic()

    async def start(i: int, sub_id: str) -> None:
        async with sem:
            await client.start_workflow(
                SubscriptionWorkflow.run,
                SubscriptionInput(sub_id, customer, "PLAN_S", f"7{tag[-3:]}{i:05d}", f"99{tag}{i:05d}"),
                id=f"subscription-{sub_id}",
                task_queue=ctx.stack.env.get("BSS_TASK_QUEUE", "bss"),
            )

    await asyncio.gather(*(start(i, s) for i, s in enumerate(ids)))
    start_rate = lines / (time.monotonic() - started)
    await asyncio.sleep(2)  # the first workflow task of the last lines started
    ctx.add_cpu(
        f"{prefix}.start_line",
        cpu_before_starts,
        ctx.cpu_sample(),
        lines,
        "line",
        measured="start_workflow of each line until it sleeps on its period's end (+2 s)",
    )
    ctx.add(
        f"{prefix}.worker_rss_per_open_line",
        (_worker_rss_mib(ctx) - rss_before) * 1024 / lines,
        "KiB",
        lines=lines,
        measured="worker RSS growth while the lines started (cached workflows), per line",
    )
    wait = (due - datetime.now(UTC)).total_seconds() - 1
    if wait < 0:
        print(f"warning: starting {lines} workflows took longer than the {setup_budget} budget")
    await asyncio.sleep(max(0.0, wait))
    cpu_before = ctx.cpu_sample()
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
    t0 = time.monotonic()
    done, deadline = 0, t0 + 900
    while time.monotonic() < deadline:
        done = await db.fetchval(
            "SELECT count(*) FROM subscription.subscription_renewal r JOIN subscription.subscription s "
            "ON s.id = r.subscription_id WHERE s.id LIKE $1 AND r.status = 'renewed'",
            f"SUB-R{tag}%",
        )
        if done >= lines:
            break
        await asyncio.sleep(0.5)
    elapsed = time.monotonic() - t0
    await asyncio.sleep(1)  # the last lines' balance reset and continue-as-new
    cpu_after = ctx.cpu_sample()
    payments = await db.fetchval(
        "SELECT count(*) FROM payment.payment WHERE customer_id = $1 AND purpose = 'renewal' AND status = 'approved'",
        customer,
    )
    await db.close()
    params = {
        "lines": lines,
        "renewed": done,
        "approved_payments": payments,
        "due_together": True,
        "workflow_starts_per_s": round(start_rate, 1),
    }
    ctx.add(f"{prefix}.all_due_at_once.duration", elapsed, "s", **params)
    ctx.add(f"{prefix}.per_second", done / elapsed if elapsed else 0.0, "renewals/s", **params)
    ctx.add_cpu(
        prefix,
        cpu_before,
        cpu_after,
        done,
        "renewal",
        measured="1 s before the periods end until every line renewed (+1 s)",
    )


async def _insert_lines(db, ids: list[str], customer: str, due: datetime, tag: str) -> None:
    start = due - timedelta(days=30)
    rows = [
        (
            sub,
            customer,
            "PLAN_S",
            f"ORD-R{tag}{i:05d}",
            f"7{tag[-3:]}{i:05d}",
            f"99{tag}{i:05d}",
            "active",
            start,
            start,
            due,
            "PRICE_PLAN_S",
            10,
            "SGD",
            start,
            start,
        )
        for i, sub in enumerate(ids)
    ]
    await db.copy_records_to_table(
        "subscription",
        schema_name="subscription",
        records=rows,
        columns=[
            "id",
            "customer_id",
            "offering_id",
            "order_id",
            "msisdn",
            "iccid",
            "state",
            "activated_at",
            "current_period_start",
            "current_period_end",
            "price_id",
            "price_amount",
            "price_currency",
            "created_at",
            "updated_at",
        ],
    )
    balances = [
        (sub, kind, total, 0, unit, start, due)
        for sub in ids
        for kind, total, unit in (("data", 5120, "mb"), ("voice", 100, "minutes"), ("sms", 100, "count"))
    ]
    await db.copy_records_to_table(
        "bundle_balance",
        schema_name="subscription",
        records=balances,
        columns=[
            "subscription_id",
            "allowance_type",
            "total",
            "consumed",
            "unit",
            "period_start",
            "period_end",
        ],
    )


def _worker_rss_mib(ctx: BenchContext) -> float:
    return ctx.stack.memory_mib().get("rss.worker", 0.0)

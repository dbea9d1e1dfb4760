"""Usage rating throughput: rated events per second through the bulk endpoint, and through single
POSTs at 8 concurrent clients with their latency; then single-event latency with one client.

The lines are created straight in the stack's database (subscription rows and PLAN_L balances with
numbers outside the sale pool): rating needs active lines, not the order saga, and selling 1,000
lines through orders would take minutes and drain the eSIM pool the signup benchmark needs.
Exactly-once is checked after the run: the data consumed on all lines (whole MB plus the fraction)
equals the KB sent, although the first bulk request is sent twice.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.context import BenchContext
from bench.load import open_loop

ORDER = 45
LINES = 1_000
OFFERING = "PLAN_L"  # 150 GB of data: the benchmark never exhausts a line
BULK_REQUESTS = 10
BULK_EVENTS = 20_000
SINGLE_CLIENTS = 8
SINGLE_EVENTS = 4_000
ALONE_EVENTS = 1_000  # one client, one event at a time: latency without queueing behind others
OPEN_RATE = 200.0  # events/s, open loop: the target's p99 is at this fixed rate
OPEN_SECONDS = 20.0
QUICK = {
    "BULK_REQUESTS": 3,
    "BULK_EVENTS": 5_000,
    "SINGLE_EVENTS": 800,
    "ALONE_EVENTS": 200,
    "OPEN_SECONDS": 5.0,
}
USAGE = "/tmf-api/usageManagement/v4/usage"
BULK = f"{USAGE}/bulk"
MSISDN_BASE = 97_000_000


def run(ctx: BenchContext) -> None:
    asyncio.run(_run(ctx))


async def _run(ctx: BenchContext) -> None:
    size = dict(QUICK) if ctx.quick else {}
    bulk_requests = size.get("BULK_REQUESTS", BULK_REQUESTS)
    bulk_events = size.get("BULK_EVENTS", BULK_EVENTS)
    single_events = size.get("SINGLE_EVENTS", SINGLE_EVENTS)
    alone_events = size.get("ALONE_EVENTS", ALONE_EVENTS)
    open_seconds = size.get("OPEN_SECONDS", OPEN_SECONDS)
    db = ctx.stack.db_url()
    engine = create_async_engine(db)
    try:
        msisdns = await _lines(engine)
        rng = random.Random(42)
        sent_kb = 0
        async with ctx.api(max_connections=SINGLE_CLIENTS + 2) as api:
            bodies = []
            for n in range(bulk_requests + 1):  # the first is a warm-up, sent again at the end
                events = [_event(rng, f"bulk-{n}-{i}", msisdns) for i in range(bulk_events)]
                sent_kb += sum(_data_kb(e) for e in events)
                bodies.append(json.dumps(events).encode())
            await _bulk(api, bodies[0])
            cpu_before = ctx.cpu_sample()
            started = time.perf_counter()
            per_request = [await _bulk(api, body) for body in bodies[1:]]
            elapsed = time.perf_counter() - started
            ctx.add_cpu("rating.bulk", cpu_before, ctx.cpu_sample(), bulk_requests * bulk_events, "event")
            rated = sum(r["rated"] for r, _ in per_request)
            resent, resend_s = await _bulk(api, bodies[0])

            singles = [_event(rng, f"single-{i}", msisdns) for i in range(single_events)]
            sent_kb += sum(_data_kb(e) for e in singles)
            cpu_before = ctx.cpu_sample()
            single_started = time.perf_counter()
            latencies = await _singles(api, singles, SINGLE_CLIENTS)
            single_elapsed = time.perf_counter() - single_started
            ctx.add_cpu("rating.single", cpu_before, ctx.cpu_sample(), len(latencies), "event")

            alone = [_event(rng, f"alone-{i}", msisdns) for i in range(alone_events)]
            sent_kb += sum(_data_kb(e) for e in alone)
            alone_latencies = await _singles(api, alone, 1)

            # Open loop at a fixed rate: each event leaves on schedule, its latency counts from then.
            opened = [_event(rng, f"open-{i}", msisdns) for i in range(int(OPEN_RATE * open_seconds))]
            sent_kb += sum(_data_kb(e) for e in opened)
            cpu_before = ctx.cpu_sample()
            paced = await open_loop(
                api, "POST", USAGE, rate=OPEN_RATE, duration=open_seconds, expect=201,
                concurrency=SINGLE_CLIENTS, json_for=lambda i: opened[i],
            )  # fmt: skip
            cpu_after = ctx.cpu_sample()
            if paced.errors:
                raise RuntimeError(f"open-loop usage POSTs failed: {paced.errors}")
        consumed_kb = await _consumed_kb(engine)
    finally:
        await engine.dispose()

    exact = consumed_kb == sent_kb and resent["rated"] == 0 and resent["duplicate"] == bulk_events
    params = {
        "lines": LINES,
        "requests": bulk_requests,
        "events_per_request": bulk_events,
        "body": "JSON array of TMF635 Usage",
        "exactly_once_verified": exact,
        "measured": "sequential POST usage/bulk, wall time including upload and commit",
    }
    ctx.add("rating.bulk.events_per_s", rated / elapsed, "events/s", **params)
    ctx.add("rating.bulk.request_p50", statistics.median(s for _, s in per_request) * 1000, "ms", **params)
    ctx.add(
        "rating.bulk.resend_events_per_s", bulk_events / resend_s, "events/s", duplicates=resent["duplicate"]
    )
    single = {"clients": SINGLE_CLIENTS, "events": single_events, "lines": LINES, "loop": "closed"}
    ctx.add("rating.single.events_per_s", len(latencies) / single_elapsed, "events/s", **single)
    ctx.add("rating.single.p50", _pct(latencies, 50), "ms", **single)
    ctx.add("rating.single.p99", _pct(latencies, 99), "ms", **single)
    one = {"clients": 1, "events": alone_events, "lines": LINES, "loop": "closed"}
    ctx.add("rating.single_one_client.p50", _pct(alone_latencies, 50), "ms", **one)
    ctx.add("rating.single_one_client.p99", _pct(alone_latencies, 99), "ms", **one)
    paced_params = {
        "rate": OPEN_RATE,
        "seconds": open_seconds,
        "events": paced.sent,
        "achieved_rate": round(paced.achieved_rate, 1),
        "loop": f"open, at most {SINGLE_CLIENTS} in flight, latency from the scheduled send",
    }
    ctx.add("rating.open_200.p50", paced.percentile(50), "ms", **paced_params)
    ctx.add("rating.open_200.p99", paced.percentile(99), "ms", **paced_params)
    ctx.add_cpu("rating.open_200", cpu_before, cpu_after, paced.sent, "event", **paced_params)
    if not exact:
        raise RuntimeError(
            f"exactly-once check failed: consumed {consumed_kb} KB, sent {sent_kb} KB, resend {resent}"
        )


async def _lines(engine) -> list[str]:
    """LINES active lines on OFFERING with fresh balances, numbers 97000000…"""
    numbers = [str(MSISDN_BASE + i) for i in range(LINES)]
    async with engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO subscription.subscription (id, customer_id, offering_id, order_id, msisdn, iccid,
                    state, activated_at, current_period_start, current_period_end, price_id, price_amount,
                    price_currency, created_at, updated_at)
                SELECT 'SUB-' || lpad(nextval('subscription.subscription_seq')::text, 6, '0'), 'CUST-bench0000',
                    CAST(:offering AS varchar), 'BENCH-' || n, n, '8999' || n, 'active', now(), now(), now() + interval '30 days',
                    'PRICE_' || CAST(:offering AS varchar), 45.00, 'SGD', now(), now()
                FROM unnest(CAST(:numbers AS varchar[])) AS n
                """
            ),
            {"offering": OFFERING, "numbers": numbers},
        )
        await conn.execute(
            text(
                """
                INSERT INTO subscription.bundle_balance (subscription_id, allowance_type, total, consumed, unit,
                    period_start, period_end)
                SELECT s.id, a.allowance_type, a.quantity, 0, a.unit, s.current_period_start, s.current_period_end
                FROM subscription.subscription s JOIN catalog.bundle_allowance a ON a.offering_id = s.offering_id
                WHERE s.order_id LIKE 'BENCH-%'
                """
            )
        )
    return numbers


def _event(rng: random.Random, event_id: str, msisdns: list[str]) -> dict:
    roll = rng.random()
    if roll < 0.8:
        kind, quantity, unit = "data", rng.randint(1, 2048), "KB"
    elif roll < 0.9:
        kind, quantity, unit = "voice", rng.randint(1, 600), "sec"
    else:
        kind, quantity, unit = "sms", 1, "count"
    return {
        "id": event_id,
        "usageType": kind,
        "usageCharacteristic": [
            {"name": "msisdn", "value": rng.choice(msisdns)},
            {"name": "quantity", "value": quantity},
            {"name": "unit", "value": unit},
        ],
    }


def _data_kb(event: dict) -> int:
    return event["usageCharacteristic"][1]["value"] if event["usageType"] == "data" else 0


async def _bulk(api, body: bytes) -> tuple[dict, float]:
    started = time.perf_counter()
    r = await api.post(BULK, content=body, headers={"content-type": "application/json"}, timeout=120)
    r.raise_for_status()
    return r.json(), time.perf_counter() - started


async def _singles(api, events: list[dict], clients: int) -> list[float]:
    queue = iter(events)
    latencies: list[float] = []

    async def client() -> None:
        for event in queue:
            started = time.perf_counter()
            r = await api.post(USAGE, json=event)
            if r.status_code != 201:
                raise RuntimeError(f"single usage answered {r.status_code}: {r.text}")
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


async def _consumed_kb(engine) -> int:
    async with engine.connect() as conn:
        row = await conn.execute(
            text(
                """
                SELECT coalesce(sum(b.consumed * 1024 + coalesce(f.fine, 0)), 0)
                FROM subscription.bundle_balance b
                JOIN subscription.subscription s ON s.id = b.subscription_id
                LEFT JOIN usage.balance_fraction f ON f.balance_id = b.id AND f.period_start = b.period_start
                WHERE s.order_id LIKE 'BENCH-%' AND b.allowance_type = 'data'
                """
            )
        )
        return int(row.scalar_one())


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]

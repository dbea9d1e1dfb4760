"""Signup latency: POST productOrder → line active (the order workflow completed), through the API.

Measured twice: with the simulators' default network latencies (HLR 0.5 s, PCRF 0.3 s, OCS 0.2 s,
eSIM prepare 0.4 s, in parallel) and with latency 0, where what remains is pure orchestration.
The orchestration overhead is the latency minus the slowest simulated task (0.5 s at factor 1).
"""

from __future__ import annotations

import asyncio
import statistics
import time

from bench.context import BenchContext, customer_with_card

ORDER = 50
ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
SLOWEST_TASK_S = 0.5
SAMPLES = {1: 20, 10: 50}  # concurrency -> orders
QUICK_SAMPLES = {1: 6, 10: 20}
SUSTAINED_ORDERS = 150
QUICK_SUSTAINED_ORDERS = 40
SUSTAINED_CONCURRENCY = 20


def run(ctx: BenchContext) -> None:
    for factor in ("1", "0"):
        if ctx.stack.env.get("BSS_SIM_LATENCY_FACTOR") != factor:
            ctx.stack.stop()
            ctx.stack.env["BSS_SIM_LATENCY_FACTOR"] = factor
            ctx.stack.start()
            ctx.stack.settle()
        asyncio.run(_measure(ctx, float(factor)))
    # Sustained signups again with two worker processes (`bss up --workers 2`); a REF that cannot
    # run two has no such figures.
    try:
        if ctx.stack.restart_with(BSS_WORKERS="2") == 2:
            asyncio.run(_sustained(ctx, "signup.workers2"))
    finally:
        ctx.stack.restart_with(BSS_WORKERS="1")


async def _measure(ctx: BenchContext, factor: float) -> None:
    from temporalio.client import Client

    client = await Client.connect(f"127.0.0.1:{ctx.stack.env['BSS_TEMPORAL_PORT']}")
    async with ctx.api(max_connections=50) as api:
        for concurrency, n in (QUICK_SAMPLES if ctx.quick else SAMPLES).items():
            customers = await _customers(api, n)
            await _order_and_wait(api, client, customers[0])  # warm-up
            before = ctx.cpu_sample()
            latencies = await _run_orders(api, client, customers[1:], concurrency)
            after = ctx.cpu_sample()
            _report(ctx, factor, concurrency, latencies)
            ctx.add_cpu(
                f"signup.sim{factor:g}.c{concurrency}",
                before,
                after,
                len(latencies),
                "order",
                sim_latency_factor=factor,
                concurrency=concurrency,
            )
    if factor == 0:
        await _sustained(ctx, "signup")


async def _sustained(ctx: BenchContext, prefix: str, factor: float = 0.0) -> None:
    """SUSTAINED_ORDERS signups at SUSTAINED_CONCURRENCY, latency 0: orders/s and CPU per order."""
    from temporalio.client import Client

    client = await Client.connect(f"127.0.0.1:{ctx.stack.env['BSS_TEMPORAL_PORT']}")
    async with ctx.api(max_connections=50) as api:
        n = ctx.size(SUSTAINED_ORDERS, QUICK_SUSTAINED_ORDERS)
        customers = await _customers(api, n + 1)
        await _order_and_wait(api, client, customers.pop())  # warm-up
        before = ctx.cpu_sample()
        started = time.monotonic()
        done = await _run_orders(api, client, customers, SUSTAINED_CONCURRENCY)
        elapsed = time.monotonic() - started
        after = ctx.cpu_sample()
        ctx.add(
            f"{prefix}.sustained_orders_per_s",
            len(done) / elapsed,
            "orders/s",
            orders=len(done),
            concurrency=SUSTAINED_CONCURRENCY,
            sim_latency_factor=factor,
        )
        ctx.add_cpu(
            f"{prefix}.sustained",
            before,
            after,
            len(done),
            "order",
            sim_latency_factor=factor,
            concurrency=SUSTAINED_CONCURRENCY,
            measured="every process of the stack, from the first POST to the last order completed",
        )


async def _customers(api, n: int) -> list[str]:
    sem = asyncio.Semaphore(10)

    async def one(i: int) -> str:
        async with sem:
            return await customer_with_card(api, f"signup-{i}")

    return await asyncio.gather(*(one(i) for i in range(n)))


async def _order_and_wait(api, client, customer_id: str) -> float:
    body = {
        "productOrderItem": [{"id": "1", "action": "add", "productOffering": {"id": "PLAN_M"}}],
        "relatedParty": [{"id": customer_id, "role": "customer"}],
    }
    started = time.perf_counter()
    r = await api.post(ORDERS, json=body)
    r.raise_for_status()
    result = await client.get_workflow_handle(f"order-{r.json()['id']}").result()
    if result.get("state") != "completed":
        raise RuntimeError(f"order {r.json()['id']} ended {result.get('state')}: {result.get('reason')}")
    return (time.perf_counter() - started) * 1000


async def _run_orders(api, client, customers: list[str], concurrency: int) -> list[float]:
    sem = asyncio.Semaphore(concurrency)

    async def one(c: str) -> float:
        async with sem:
            return await _order_and_wait(api, client, c)

    return list(await asyncio.gather(*(one(c) for c in customers)))


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def _report(ctx: BenchContext, factor: float, concurrency: int, latencies: list[float]) -> None:
    params = {
        "sim_latency_factor": factor,
        "concurrency": concurrency,
        "orders": len(latencies),
        "measured": "POST productOrder until the order workflow returned completed",
    }
    p50, p99 = statistics.median(latencies), _pct(latencies, 99)
    tag = f"signup.latency.sim{factor:g}.c{concurrency}"
    ctx.add(f"{tag}.p50", p50, "ms", **params)
    ctx.add(f"{tag}.p99", p99, "ms", **params)
    floor = SLOWEST_TASK_S * 1000 * factor
    ctx.add(f"{tag}.overhead_p50", p50 - floor, "ms", slowest_simulated_task_ms=floor, **params)
    ctx.add(f"{tag}.overhead_p99", p99 - floor, "ms", slowest_simulated_task_ms=floor, **params)

"""API read latency at a steady, open-loop request rate: the catalogue and one customer."""

from __future__ import annotations

import asyncio

from bench.context import BenchContext
from bench.load import LoadResult, open_loop

ORDER = 30
RATE = 100.0  # requests per second
DURATION = 20.0  # seconds per endpoint
WARM_UP = 5.0
# Open loop with a bounded pool: a request that finds every connection busy waits for one, and
# that wait counts in its latency. An unbounded pool only makes the client itself the bottleneck
# on a small machine (httpx's pool slows down with hundreds of connections or waiters).
POOL = 10

OFFERINGS = "/tmf-api/productCatalogManagement/v4/productOffering"
CUSTOMERS = "/tmf-api/customerManagement/v4/customer"


def run(ctx: BenchContext) -> None:
    asyncio.run(_run(ctx))


async def _run(ctx: BenchContext) -> None:
    async with ctx.api(max_connections=POOL) as api:
        targets = [("api.get_product_offerings", OFFERINGS)]
        customer_id = await _customer(ctx, api)
        if customer_id is not None:
            targets.append(("api.get_customer", f"{CUSTOMERS}/{customer_id}"))
        for name, path in targets:
            probe = await api.get(path)
            if probe.status_code != 200:
                print(f"skipping {name}: GET {path} answers {probe.status_code}")
                continue
            duration = 5.0 if ctx.quick else DURATION
            await open_loop(
                api, "GET", path, rate=RATE, duration=1.0 if ctx.quick else WARM_UP, concurrency=POOL
            )
            before = ctx.cpu_sample()
            result = await open_loop(api, "GET", path, rate=RATE, duration=duration, concurrency=POOL)
            after = ctx.cpu_sample()
            _report(ctx, name, path, result, duration)
            ctx.add_cpu(name, before, after, result.sent, "request", path=path)


async def _customer(ctx: BenchContext, api) -> str | None:
    body = {
        "name": "Bench Subscriber",
        "contactMedium": [{"mediumType": "email", "characteristic": {"emailAddress": "bench@example.com"}}],
    }
    r = await api.post(CUSTOMERS, json=body)
    if r.status_code != 201:
        print(f"skipping api.get_customer: POST customer answers {r.status_code}")
        return None
    ctx.state["customer_id"] = r.json()["id"]
    return ctx.state["customer_id"]


def _report(ctx: BenchContext, name: str, path: str, result: LoadResult, duration: float) -> None:
    params = {
        "path": path,
        "target_rate_rps": RATE,
        "achieved_rate_rps": round(result.achieved_rate, 1),
        "duration_s": duration,
        "requests": result.sent,
        "errors": sum(result.errors.values()),
        "pacing": "open loop, latency from scheduled send time",
        "client": f"httpx.AsyncClient, {POOL} connections, on the same machine",
    }
    if result.errors:
        params["error_kinds"] = result.errors
    ctx.add(f"{name}.p50", result.percentile(50), "ms", **params)
    ctx.add(f"{name}.p99", result.percentile(99), "ms", **params)
    ctx.add(f"{name}.achieved_rate", result.achieved_rate, "req/s", target_rate_rps=RATE)

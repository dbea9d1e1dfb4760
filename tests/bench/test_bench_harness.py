"""The benchmark harness itself (not its figures, which are never asserted): pacing, percentiles, discovery."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI

from bench.figures import Figure, machine_figures, write
from bench.load import LoadResult, open_loop
from bench.run import benchmark_modules


def test_percentile_is_nearest_rank():
    result = LoadResult(rate=1, duration=1, latencies_ms=[float(v) for v in range(1, 101)])
    assert result.percentile(50) == 50
    assert result.percentile(99) == 99
    assert result.percentile(100) == 100
    assert LoadResult(rate=1, duration=1).percentile(50) != LoadResult(rate=1, duration=1).percentile(
        50
    )  # NaN


async def test_open_loop_keeps_its_schedule_when_the_server_is_slow():
    app = FastAPI()
    in_flight = {"now": 0, "max": 0}

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await asyncio.sleep(0.2)  # ten times the sending interval
        in_flight["now"] -= 1
        return {"ok": True}

    @app.get("/broken")
    async def broken() -> None:
        raise ValueError("boom")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
        result = await open_loop(client, "GET", "/slow", rate=50, duration=1)
        failing = await open_loop(client, "GET", "/broken", rate=50, duration=0.2)

    assert result.sent == 50 and not result.errors
    # A closed loop would have one request in flight at a time; the open loop sends regardless.
    assert in_flight["max"] >= 5
    assert min(result.latencies_ms) >= 200
    assert result.elapsed < 1.5
    assert failing.errors == {"http 500": 10} and failing.latencies_ms == []


def test_benchmarks_are_discovered_in_order():
    modules = benchmark_modules()
    names = [m.__name__ for m in modules]
    assert {"bench.startup", "bench.memory", "bench.api_reads"} <= set(names)
    assert [m.ORDER for m in modules] == sorted(m.ORDER for m in modules)
    assert names.index("bench.startup") == 0, "the startup benchmark must run first: it starts the stack"
    assert benchmark_modules(["memory"])[0].__name__ == "bench.memory"


def test_results_are_a_flat_list_of_figures(tmp_path):
    path = tmp_path / "latest.json"
    write([*machine_figures(), Figure("api.x.p50", 1.5, "ms", {"rate": 100})], path)
    rows = json.loads(path.read_text())
    assert all(set(row) == {"name", "value", "unit", "params"} for row in rows)
    cpus = next(row for row in rows if row["name"] == "machine.cpus")
    assert cpus["value"] >= 1 and cpus["params"]["cpu_model"]
    assert rows[-1] == {"name": "api.x.p50", "value": 1.5, "unit": "ms", "params": {"rate": 100}}


@pytest.mark.parametrize("module", benchmark_modules(), ids=lambda m: m.__name__)
def test_every_benchmark_module_has_a_run_function(module):
    assert callable(module.run) and isinstance(module.ORDER, int)


async def test_open_loop_bounds_requests_in_flight_and_counts_the_wait():
    app = FastAPI()
    in_flight = {"now": 0, "max": 0}

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await asyncio.sleep(0.1)
        in_flight["now"] -= 1
        return {"ok": True}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
        result = await open_loop(client, "GET", "/slow", rate=100, duration=0.3, concurrency=2)

    assert in_flight["max"] == 2
    assert result.sent == 30 and not result.errors
    # 30 requests, two at a time, 0.1 s each: the last one waited about 1.4 s past its schedule.
    assert max(result.latencies_ms) >= 1000

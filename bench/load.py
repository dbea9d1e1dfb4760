"""Open-loop load: requests leave on a fixed schedule whether or not earlier ones have answered.

A closed loop (send, wait, send) slows down with the server and hides its queueing; here a slow
answer cannot delay the next request, and each latency counts from the request's scheduled time.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class LoadResult:
    rate: float
    duration: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def sent(self) -> int:
        return len(self.latencies_ms) + sum(self.errors.values())

    @property
    def achieved_rate(self) -> float:
        """Answered requests per second of wall time, errors included."""
        return self.sent / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the successful requests' latencies."""
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
        return ordered[rank - 1]


async def open_loop(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    rate: float,
    duration: float,
    json: Any = None,
    expect: int = 200,
    concurrency: int | None = None,
    json_for: Callable[[int], Any] | None = None,
) -> LoadResult:
    """`concurrency` bounds the requests in flight; the others queue here (cheaply, unlike in
    httpx's pool, whose waiting list costs the client CPU it then lacks) and their wait counts.
    `json_for(i)` gives the i-th request its own body (e.g. a usage event with its own id)."""
    result = LoadResult(rate=rate, duration=duration)
    total = int(rate * duration)
    start = time.perf_counter()
    gate = asyncio.Semaphore(concurrency) if concurrency else None

    async def one(scheduled: float, body: Any) -> None:
        try:
            if gate is None:
                r = await client.request(method, path, json=body)
            else:
                async with gate:
                    r = await client.request(method, path, json=body)
            outcome = "ok" if r.status_code == expect else f"http {r.status_code}"
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        if outcome == "ok":
            result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
        else:
            result.errors[outcome] = result.errors.get(outcome, 0) + 1

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled, json_for(i) if json_for else json)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
    return result

"""Memory of every process of the stack at idle: supervisor, Postgres (with backends), Temporal, worker, API."""

from __future__ import annotations

import time

from bench.context import BenchContext

ORDER = 20
SETTLE_S = 5.0


def run(ctx: BenchContext) -> None:
    time.sleep(SETTLE_S)  # let start-up garbage and connection churn settle
    record(ctx, "memory.idle", after="start + 5 s idle")


def record(ctx: BenchContext, prefix: str, **params: object) -> None:
    mem = ctx.stack.memory_mib()
    per_component = {k.removeprefix("rss."): v for k, v in mem.items() if k.startswith("rss.")}
    processes = len(ctx.stack.processes())
    ctx.add(f"{prefix}_rss_total", mem["rss"], "MiB", processes=processes, **per_component, **params)
    ctx.add(f"{prefix}_pss_total", mem["pss"], "MiB", note="shared pages divided among sharers", **params)

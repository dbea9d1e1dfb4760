"""Memory of the stack again once every load benchmark has run: caches, pools and heaps grown."""

from __future__ import annotations

import time

from bench import memory
from bench.context import BenchContext

ORDER = 90


def run(ctx: BenchContext) -> None:
    time.sleep(memory.SETTLE_S)
    done = [f.name for f in ctx.figures if f.name.endswith(".p50")]
    memory.record(ctx, "memory.after_load", after=f"{len(done)} load runs + 5 s idle")

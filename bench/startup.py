"""Cold start (empty data dir: initdb, migrations, seed) and warm restart, each until /health is 200,
with the CPU seconds the stack spent on it and when the worker polls (/health does not wait for it);
and a warm restart with no bytecode at all, side by side."""

from __future__ import annotations

import tempfile
import time

from bench import cpu
from bench.context import BenchContext

ORDER = 10
STARTS_STACK = True
POLLING = "worker polling task queue"  # worker.py logs it once it serves


def run(ctx: BenchContext) -> None:
    polled, started = _polls(ctx), time.monotonic()
    cold = ctx.stack.start()
    ctx.add("startup.cold_to_healthy", cold, "s", data_dir="empty", includes="initdb, migrations, seed")
    _start_cpu(ctx, "startup.cold")
    _worker_polling(ctx, "startup.cold_worker_polling", started, polled)
    stop = ctx.stack.stop()
    ctx.add("startup.stop", stop, "s", signal="SIGTERM to the supervisor (bss down)")
    polled, started = _polls(ctx), time.monotonic()
    warm = ctx.stack.start()
    ctx.add("startup.warm_restart_to_healthy", warm, "s", data_dir="kept from the cold start")
    _start_cpu(ctx, "startup.warm")
    _worker_polling(ctx, "startup.warm_worker_polling", started, polled)
    ctx.stack.settle()
    ctx.add(
        "startup.warm_settled_after",
        time.monotonic() - started,
        "s",
        meaning="until the stack idles (portals imported)",
    )
    # The same restart with no bytecode to read and none written (what PYTHONDONTWRITEBYTECODE=1
    # did to every start before stack/bytecode.py): an empty pycache prefix hides the compiled files.
    ctx.stack.stop()
    with tempfile.TemporaryDirectory(prefix="bss-no-pyc-") as empty:
        saved = dict(ctx.stack.env)
        ctx.stack.env.update(
            PYTHONPYCACHEPREFIX=empty, PYTHONDONTWRITEBYTECODE="1", BSS_COMPILE_BYTECODE="false"
        )
        try:
            bare = ctx.stack.start()
            ctx.add("startup.warm_no_bytecode_to_healthy", bare, "s", bytecode="none readable, none written")
            _start_cpu(ctx, "startup.warm_no_bytecode")
            ctx.stack.settle()
            ctx.stack.stop()
        finally:
            ctx.stack.env.clear()
            ctx.stack.env.update(saved)
    ctx.stack.start()
    ctx.stack.settle()


def _polls(ctx: BenchContext) -> int:
    log = ctx.stack.data_dir / "logs" / "worker.log"
    return log.read_text(errors="replace").count(POLLING) if log.exists() else 0


def _worker_polling(ctx: BenchContext, name: str, started: float, polled: int) -> None:
    """Seconds from the start until the worker of this start polls its queue."""
    while _polls(ctx) <= polled and time.monotonic() - started < 120:
        time.sleep(0.05)
    if _polls(ctx) > polled:
        ctx.add(name, time.monotonic() - started, "s", meaning="until the worker polls its queue")


def _start_cpu(ctx: BenchContext, name: str) -> None:
    """CPU seconds every process of the stack has spent since it was born, at /health 200 (with the
    children the supervisor already reaped: initdb, the migration child)."""
    spent = cpu.cpu_between(cpu.Sample(0.0, {}), cpu.sample(ctx.stack.cpu_processes()))
    ctx.add(
        f"{name}.cpu_s", sum(spent.values()), "s CPU", **{k: round(v, 2) for k, v in sorted(spent.items())}
    )

"""Cold start (empty data dir: initdb, migrations, seed) and warm restart, each until /health is 200."""

from __future__ import annotations

from bench.context import BenchContext

ORDER = 10
STARTS_STACK = True


def run(ctx: BenchContext) -> None:
    cold = ctx.stack.start()
    ctx.add("startup.cold_to_healthy", cold, "s", data_dir="empty", includes="initdb, migrations, seed")
    stop = ctx.stack.stop()
    ctx.add("startup.stop", stop, "s", signal="SIGTERM to the supervisor (bss down)")
    warm = ctx.stack.start()
    ctx.add("startup.warm_restart_to_healthy", warm, "s", data_dir="kept from the cold start")

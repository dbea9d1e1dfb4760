"""`bss --help`: wall and CPU seconds of the command a newcomer types first (fastest of several
runs, a fresh interpreter each), from the tree the stack runs (REF's in `make bench-compare`)."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from pathlib import Path

from bench.context import BenchContext

ORDER = 12  # after startup (which must run first: it starts the stack cold)
STARTS_STACK = True  # needs no stack: alone (`ONLY=cli_help`) none is started
RUNS = 5


def run(ctx: BenchContext) -> None:
    bss = Path(ctx.stack.python).parent / "bss"
    command = [str(bss)] if bss.exists() else [ctx.stack.python, "-m", "cli.main"]
    walls, cpus = [], []
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            [*command, "--help"],
            cwd=ctx.stack.root,
            env={k: v for k, v in os.environ.items() if not k.startswith("BSS_")},
            stdout=subprocess.DEVNULL,
            check=True,
        )
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    ctx.add("cli.help_wall", min(walls), "s", runs=RUNS, command="bss --help", measured="fastest run")
    ctx.add("cli.help_cpu", min(cpus), "s CPU", runs=RUNS, command="bss --help")

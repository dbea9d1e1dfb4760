"""`make bench`: start a fresh embedded stack, run every benchmark module in ORDER, write the figures.

python -m bench.run                  # all of them
python -m bench.run startup memory   # only these modules (the stack is started either way)
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

import bench
from bench.context import BenchContext
from bench.figures import machine_figures, print_table, write
from bench.stack import BenchStack

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def benchmark_modules(only: list[str] | None = None) -> list[ModuleType]:
    """Every module of the bench package with ORDER and run(ctx), so a new benchmark is one new file."""
    found = []
    for info in pkgutil.iter_modules(bench.__path__):
        module = importlib.import_module(f"bench.{info.name}")
        if hasattr(module, "ORDER") and callable(getattr(module, "run", None)):
            if not only or info.name in only:
                found.append(module)
    return sorted(found, key=lambda m: m.ORDER)


def main(argv: list[str]) -> int:
    modules = benchmark_modules(argv or None)
    if not modules:
        print(f"no benchmark module matches {argv}", file=sys.stderr)
        return 2
    ctx = BenchContext(stack=BenchStack())
    ctx.figures.extend(machine_figures())
    failed = []
    print(f"stack data in {ctx.stack.data_dir}, API on {ctx.stack.api_url}", flush=True)
    try:
        for module in modules:
            name = module.__name__.removeprefix("bench.")
            print(f"running {name}…", flush=True)
            started = time.monotonic()
            try:
                # The startup benchmark starts the stack itself, to time it; the others need it up.
                if not getattr(module, "STARTS_STACK", False) and not ctx.stack.running:
                    ctx.add("startup.cold_to_healthy", ctx.stack.start(), "s", data_dir="empty")
                module.run(ctx)
            except Exception:
                failed.append(name)
                traceback.print_exc()
            print(f"  {name} took {time.monotonic() - started:.1f} s", flush=True)
    finally:
        ctx.stack.close()
    write(ctx.figures, RESULTS)
    print_table(ctx.figures)
    print(f"written to {RESULTS}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

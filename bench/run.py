"""`make bench`: start a fresh embedded stack, run every benchmark module in ORDER, write the figures.

python -m bench.run                     # all of them
python -m bench.run startup memory      # only these modules (the stack is started either way)
python -m bench.run --quick signup      # a few units of each workload (also BENCH_QUICK=1)

The run starts and ends with a CPU calibration (bench/cpu.py): how fast this shared machine was
while the figures were taken. Compare two commits in one run with `make bench-compare REF=…`.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

import bench
from bench import cpu
from bench.context import BenchContext
from bench.figures import Figure, machine_figures, print_table, write
from bench.stack import ROOT, BenchStack

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


def quick_from_env() -> bool:
    return os.environ.get("BENCH_QUICK", "").lower() in ("1", "true", "yes")


def calibration_figures(when: str) -> tuple[list[Figure], float]:
    c = cpu.calibrate()
    params = {
        "loop": f"bench.cpu.calibration_loop({cpu.CALIBRATION_N})",
        "runs": cpu.CALIBRATION_RUNS,
        "median_cpu_ms": round(c["cpu_ms_median"], 2),
        "min_wall_ms": round(c["wall_ms_min"], 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    return [Figure(f"calibration.{when}", round(c["cpu_ms_min"], 2), "ms CPU (min)", params)], c["cpu_ms_min"]


def run_side(
    modules: list[ModuleType],
    *,
    root: Path = ROOT,
    python: str = sys.executable,
    quick: bool = False,
    label: str = "",
) -> tuple[list[Figure], list[str]]:
    """Run `modules` against one fresh stack started from the code in `root`; (figures, failed)."""
    ctx = BenchContext(stack=BenchStack(root=root, python=python), quick=quick)
    start_cal, ctx.calibration_ms = calibration_figures("start")
    ctx.figures.extend(start_cal)
    failed = []
    prefix = f"[{label}] " if label else ""
    print(f"{prefix}stack from {root}, data in {ctx.stack.data_dir}, API on {ctx.stack.api_url}", flush=True)
    try:
        for module in modules:
            name = module.__name__.removeprefix("bench.")
            print(f"{prefix}running {name}{' (quick)' if quick else ''}…", flush=True)
            started = time.monotonic()
            try:
                # The startup benchmark starts the stack itself, to time it; the others need it up.
                if not getattr(module, "STARTS_STACK", False) and not ctx.stack.running:
                    ctx.add("startup.cold_to_healthy", ctx.stack.start(), "s", data_dir="empty")
                    ctx.stack.settle()
                module.run(ctx)
            except Exception:
                failed.append(name)
                traceback.print_exc()
            print(f"{prefix}  {name} took {time.monotonic() - started:.1f} s", flush=True)
    finally:
        ctx.stack.close()
    ctx.figures.extend(calibration_figures("end")[0])
    return ctx.figures, failed


def main(argv: list[str]) -> int:
    quick = quick_from_env() or "--quick" in argv
    names = [a for a in argv if not a.startswith("--")]
    modules = benchmark_modules(names or None)
    if not modules:
        print(f"no benchmark module matches {names}", file=sys.stderr)
        return 2
    figures = machine_figures()
    side, failed = run_side(modules, quick=quick)
    figures.extend(side)
    write(figures, RESULTS)
    print_table(figures)
    print(f"written to {RESULTS}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

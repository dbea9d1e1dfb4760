"""`make bench-compare REF=<git ref>`: the same benchmarks on REF and on the working tree, one after
the other in one run, each figure side by side with its ratio.

python -m bench.compare REF [module ...] [--quick] [--rounds N]

REF is checked out into a temporary `git worktree`. Its stack runs on our venv when its uv.lock is
the same as ours, else on its own venv (`uv sync --frozen` into the worktree). The driver — this
process, with the working tree's bench code — is the same for both sides, so only the product
differs. `--rounds 2` runs REF, tree, REF, tree and keeps each side's best value of every figure
(CPU per unit: the lowest), which evens out a machine whose load changes during the run.

The figures go to bench/results/compare.json; the calibration of each side says how fast the
machine was meanwhile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bench.figures import Figure, machine_figures
from bench.run import benchmark_modules, quick_from_env, run_side
from bench.stack import ROOT

RESULTS = Path(__file__).resolve().parent / "results" / "compare.json"
# What a side-by-side run measures by default: the stack's workloads (pg_commit and sandbox measure
# the Postgres binary and the in-process replayer, the same on both sides).
DEFAULT_MODULES = [
    "cli_help",
    "startup",
    "memory",
    "api_reads",
    "rating",
    "signup",
    "saga_floor",
    "renewals",
    "memory_after_load",
]
# Units where a smaller value is better; for the others (throughput) a larger one is.
LOWER_IS_BETTER = ("ms", "s", "s CPU", "MiB", "KiB", "ms CPU", "× calibration loop", "ms CPU (min)")


def lower_is_better(unit: str) -> bool:
    return unit in LOWER_IS_BETTER


def best_of(rounds: list[list[Figure]]) -> list[Figure]:
    """One figure per name over several rounds of one side: the best value (the least disturbed)."""
    best: dict[str, Figure] = {}
    order: list[str] = []
    for figures in rounds:
        for f in figures:
            if not isinstance(f.value, int | float):
                continue
            old = best.get(f.name)
            if old is None:
                order.append(f.name)
                best[f.name] = f
            elif (f.value < old.value) == lower_is_better(f.unit) and f.value != old.value:
                best[f.name] = f
    return [best[n] for n in order]


def ratio_rows(ref: list[Figure], new: list[Figure]) -> list[dict[str, object]]:
    """Every figure of either side: name, unit, REF's value, the tree's value and new/ref (None when
    a side lacks it or REF is 0). `better` says whether the tree's value is the better one."""
    by_ref = {f.name: f for f in ref}
    by_new = {f.name: f for f in new}
    names = list(by_ref) + [n for n in by_new if n not in by_ref]
    rows = []
    for name in names:
        r, n = by_ref.get(name), by_new.get(name)
        unit = (n or r).unit  # type: ignore[union-attr]
        rv = r.value if r else None
        nv = n.value if n else None
        ratio = nv / rv if isinstance(rv, int | float) and isinstance(nv, int | float) and rv else None
        better = None
        if ratio is not None and ratio != 1:
            better = (ratio < 1) == lower_is_better(unit)
        rows.append({"name": name, "unit": unit, "ref": rv, "new": nv, "ratio": ratio, "better": better})
    return rows


def format_rows(rows: list[dict[str, object]], ref_label: str, new_label: str) -> str:
    """A plain-text table (also what the report pastes): figure, unit, REF, tree, tree/REF."""

    def num(v: object) -> str:
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
        return str(v)

    header = ["figure", "unit", ref_label, new_label, "new/ref"]
    body = []
    for row in rows:
        ratio = row["ratio"]
        mark = "" if row["better"] is None else (" better" if row["better"] else " worse")
        body.append(
            [
                str(row["name"]),
                str(row["unit"]),
                num(row["ref"]),
                num(row["new"]),
                "—" if ratio is None else f"{ratio:.2f}×{mark}",
            ]
        )
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = []
    for i, r in enumerate([header, *body]):
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])] + [
            c.rjust(w) for c, w in zip(r[2:], widths[2:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        raise FileNotFoundError("uv is needed for REF's own venv (make .tools/bin/uv)")
    return found


def prepare_ref(ref: str, where: Path) -> tuple[Path, str, str]:
    """Check REF out into `where`; (tree, its python, how its venv was made)."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    _git("worktree", "add", "--detach", str(where), commit)
    if (where / "uv.lock").read_bytes() == (ROOT / "uv.lock").read_bytes():
        return where, sys.executable, "ours (same uv.lock)"
    env = dict(os.environ, UV_PROJECT_ENVIRONMENT=str(where / ".venv"), UV_PYTHON_DOWNLOADS="never")
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([_uv(), "sync", "--frozen", "--python", "python3"], cwd=where, env=env, check=True)
    return where, str(where / ".venv" / "bin" / "python"), "its own (uv sync --frozen)"


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    rounds = 1
    if "--rounds" in argv:
        rounds = int(argv[argv.index("--rounds") + 1])
        args.remove(str(rounds))
    if not args:
        print("usage: python -m bench.compare REF [module ...] [--quick] [--rounds N]", file=sys.stderr)
        return 2
    ref, names = args[0], args[1:] or DEFAULT_MODULES
    quick = quick_from_env() or "--quick" in argv
    modules = benchmark_modules(names)
    if not modules:
        print(f"no benchmark module matches {names}", file=sys.stderr)
        return 2
    ref_commit = _git("rev-parse", "--short", f"{ref}^{{commit}}")
    head = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    new_label = f"tree ({head}{'+changes' if dirty else ''})"
    ref_label = f"REF {ref_commit}"
    tmp = Path(tempfile.mkdtemp(prefix="bss-bench-ref-"))
    where = tmp / "tree"
    started = time.monotonic()
    ref_rounds: list[list[Figure]] = []
    new_rounds: list[list[Figure]] = []
    failed: list[str] = []
    try:
        tree, python, venv = prepare_ref(ref, where)
        print(f"REF {ref} = {ref_commit} in {tree}, venv: {venv}", flush=True)
        for i in range(rounds):
            figs, bad = run_side(
                modules, root=tree, python=python, quick=quick, label=f"{ref_label} #{i + 1}"
            )
            ref_rounds.append(figs)
            failed += [f"ref:{b}" for b in bad]
            figs, bad = run_side(modules, quick=quick, label=f"{new_label} #{i + 1}")
            new_rounds.append(figs)
            failed += [f"tree:{b}" for b in bad]
    finally:
        try:
            _git("worktree", "remove", "--force", str(where))
        except subprocess.CalledProcessError:
            shutil.rmtree(where, ignore_errors=True)
            _git("worktree", "prune")
        shutil.rmtree(tmp, ignore_errors=True)
    ref_best, new_best = best_of(ref_rounds), best_of(new_rounds)
    rows = ratio_rows(ref_best, new_best)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "ref": ref,
                "ref_commit": ref_commit,
                "tree": head,
                "tree_has_uncommitted_changes": dirty,
                "quick": quick,
                "rounds": rounds,
                "modules": [m.__name__.removeprefix("bench.") for m in modules],
                "seconds": round(time.monotonic() - started, 1),
                "machine": [asdict(f) for f in machine_figures()],
                "rows": rows,
                "ref_figures": [asdict(f) for f in ref_best],
                "tree_figures": [asdict(f) for f in new_best],
            },
            indent=2,
        )
        + "\n"
    )
    print()
    print(format_rows(rows, ref_label, new_label))
    print(f"\n{rounds} round(s) in {time.monotonic() - started:.0f} s; written to {RESULTS}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

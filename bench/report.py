"""The README's figures table from a side-by-side run (bench/results/compare.json): each figure of
issue 12 with REF's value, the tree's, the ratio and the target, as Markdown.

python -m bench.report [path/to/compare.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.compare import RESULTS

# (figure, what it is, target: ("ratio<=", x) against REF, ("<=", x) / (">=", x) absolute, or None)
ROWS: list[tuple[str, str, tuple[str, float] | None]] = [
    ("signup.sim0.c1.cpu_ms_per_order", "CPU per signup, latency 0, one at a time (ms)", ("ratio<=", 0.5)),
    ("signup.sim0.c10.cpu_ms_per_order", "CPU per signup, latency 0, 10 concurrent (ms)", ("ratio<=", 0.5)),
    ("signup.sim0.c1.cpu_ms_per_order.temporal", "— of which the Temporal dev server (ms)", None),
    ("signup.sim0.c1.cpu_ms_per_order.worker", "— of which the worker (ms)", None),
    ("signup.sim0.c1.cpu_ms_per_order.postgres", "— of which Postgres (ms)", None),
    ("signup.sim0.c1.cpu_ms_per_order.api", "— of which the API (ms)", None),
    (
        "signup.latency.sim1.c1.overhead_p50",
        "signup overhead at default latency, p50 (ms)",
        ("ratio<=", 2 / 3),
    ),
    ("signup.latency.sim0.c1.p50", "signup at latency 0, one at a time, p50 (ms)", None),
    (
        "signup.sustained_orders_per_s",
        "sustained signups, 20 concurrent, 1 worker (orders/s)",
        ("ratio>=", 2.0),
    ),
    ("signup.workers2.sustained_orders_per_s", "— with 2 workers (orders/s)", None),
    ("renewals.cpu_ms_per_renewal", "CPU per renewal (ms)", ("ratio<=", 1 / 3)),
    (
        "renewals.all_due_at_once.duration",
        "lines due at the same moment, all renewed (s)",
        ("ratio<=", 1 / 3),
    ),
    ("renewals.workers2.all_due_at_once.duration", "— with 2 workers (s)", None),
    ("rating.open_200.p99", "single usage events at 200/s open loop, p99 (ms)", ("<=", 10.0)),
    ("rating.open_200.cpu_ms_per_event", "— CPU per event (ms)", None),
    ("rating.bulk.events_per_s", "bulk rating (events/s)", (">=", 20_000.0)),
    ("startup.cold_to_healthy", "cold start to healthy, empty data dir (s)", ("<=", 5.0)),
    ("startup.warm_restart_to_healthy", "warm restart to healthy (s)", None),
    ("memory.idle_pss_total", "memory of the whole stack at idle, PSS (MiB)", ("ratio<=", 1.0)),
    ("cli.help_wall", "`bss --help` (s)", ("<=", 0.5)),
    ("calibration.start", "calibration loop at the start (ms CPU)", None),
]


def _num(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.2f}" if abs(v) < 10 else f"{v:,.0f}"


def _target(target: tuple[str, float] | None, ref: float | None, new: float | None) -> tuple[str, str]:
    if target is None:
        return "", ""
    kind, x = target
    if kind.startswith("ratio"):
        text = f"{kind[5:]} {x:.2f}×"
        if not ref or new is None:
            return text, "—"
        ratio = new / ref
        met = ratio <= x if kind == "ratio<=" else ratio >= x
    else:
        text = f"{kind} {_num(x)}"
        if new is None:
            return text, "—"
        met = new <= x if kind == "<=" else new >= x
    return text, "yes" if met else "**no**"


def markdown(data: dict) -> str:
    by_name = {r["name"]: r for r in data["rows"]}
    lines = [
        f"| figure | REF {data['ref_commit']} | tree {data['tree']} | tree/REF | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for name, label, target in ROWS:
        row = by_name.get(name)
        if row is None:
            continue
        ref, new = row["ref"], row["new"]
        ratio = f"{row['ratio']:.2f}×" if row["ratio"] is not None else "—"
        text, met = _target(target, ref, new)
        lines.append(f"| {label} | {_num(ref)} | {_num(new)} | {ratio} | {text} | {met} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else RESULTS
    data = json.loads(path.read_text())
    print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

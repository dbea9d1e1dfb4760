"""The figures a benchmark reports, the machine they were taken on, and how they are written."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    params: dict[str, Any] = field(default_factory=dict)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ram_mib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return 0.0


def machine_figures() -> list[Figure]:
    """The machine, as figures too, so latest.json stays one flat list of {name, value, unit, params}."""
    about = {
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "system": platform.system(),
    }
    load1, load5, _ = os.getloadavg()
    return [
        Figure("machine.cpus", os.cpu_count() or 0, "cores", about),
        Figure("machine.ram", ram_mib(), "MiB", {}),
        # The machine may be shared: a busy one explains slower figures.
        Figure(
            "machine.load_average_1m_at_start", round(load1, 2), "runnable tasks", {"5m": round(load5, 2)}
        ),
    ]


def write(figures: list[Figure], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n")


def format_table(figures: list[Figure], params_width: int = 70) -> str:
    """A plain-text table: figure, value, unit and the parameters cut to `params_width` (all of them
    are in the JSON)."""
    rows = [("figure", "value", "unit", "parameters")]
    for f in figures:
        value = f"{f.value:,.1f}" if isinstance(f.value, float) else str(f.value)
        params = ", ".join(f"{k}={v}" for k, v in f.params.items())
        if len(params) > params_width:
            params = params[: params_width - 1] + "…"
        rows.append((f.name, value, f.unit, params))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for n, (name, value, unit, params) in enumerate(rows):
        lines.append(
            f"{name.ljust(widths[0])}  {value.rjust(widths[1])}  {unit.ljust(widths[2])}  {params}".rstrip()
        )
        if n == 0:
            lines.append("-" * (sum(widths) + 6 + params_width))
    return "\n".join(lines)


def print_table(figures: list[Figure]) -> None:
    print(format_table(figures), flush=True)

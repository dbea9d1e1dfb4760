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


def print_table(figures: list[Figure]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="BSS benchmarks")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("unit")
    table.add_column("parameters", overflow="fold")
    for f in figures:
        value = f"{f.value:,.1f}" if isinstance(f.value, float) else str(f.value)
        params = ", ".join(f"{k}={v}" for k, v in f.params.items())
        table.add_row(f.name, value, f.unit, params)
    Console().print(table)

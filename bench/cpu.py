"""CPU accounting for the benchmarks: a calibration loop, and the CPU seconds every process of the
stack spent between two samples, read from /proc/<pid>/stat.

On a shared machine wall-clock figures drift by a factor of two within a day; the CPU time a unit
of work costs (per signup, per renewal, per rated event) drifts much less, and the calibration
(a fixed pure-Python loop, the fastest of several runs) says how fast the machine was meanwhile.

A process that exits between two samples is not lost: its parent's cutime/cstime (children
reaped) grows by the child's whole CPU time, so the part it had spent before the first sample is
taken off again (Postgres backends that end, a worker the supervisor restarts).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
CALIBRATION_N = 300_000
CALIBRATION_RUNS = 7


def calibration_loop(n: int = CALIBRATION_N) -> int:
    """The fixed work the machine's speed is measured with: integer arithmetic, a branch, a call."""
    total = 0
    for i in range(n):
        if i % 3:
            total += (i * i) % 7
        else:
            total ^= abs(i)
    return total


def calibrate(runs: int = CALIBRATION_RUNS, n: int = CALIBRATION_N) -> dict[str, float]:
    """CPU and wall milliseconds of calibration_loop: the fastest of `runs` (the least disturbed),
    and the median CPU, so a busy machine shows as a wider spread."""
    cpu, wall = [], []
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        calibration_loop(n)
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    cpu.sort()
    return {"cpu_ms_min": min(cpu), "cpu_ms_median": cpu[len(cpu) // 2], "wall_ms_min": min(wall)}


@dataclass(frozen=True)
class Stat:
    """What /proc/<pid>/stat says about one process, in seconds."""

    pid: int
    ppid: int
    start: int  # clock ticks after boot: tells a reused pid apart
    own: float  # utime + stime
    children: float  # cutime + cstime: children it has waited for


def parse_stat(text: str, ticks: int = TICKS) -> Stat:
    """Parse one /proc/<pid>/stat line. The command name (field 2) is in parentheses and may hold
    spaces and parentheses itself, so the fields are counted from the last ')'."""
    pid = int(text.split(" ", 1)[0])
    rest = text.rsplit(")", 1)[1].split()
    # rest[0] is field 3 (state): field N is rest[N - 3].
    ppid = int(rest[1])
    utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
    start = int(rest[19])
    return Stat(pid, ppid, start, (utime + stime) / ticks, (cutime + cstime) / ticks)


def read_stat(pid: int) -> Stat | None:
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class Sample:
    """CPU counters of a set of processes at one moment, each with the component it belongs to."""

    at: float
    procs: dict[tuple[int, int], tuple[str, Stat]]  # (pid, start) -> (component, stat)


def sample(pids: Iterable[tuple[int, str]]) -> Sample:
    procs = {}
    for pid, component in pids:
        stat = read_stat(pid)
        if stat is not None:
            procs[(stat.pid, stat.start)] = (component, stat)
    return Sample(time.monotonic(), procs)


def cpu_between(before: Sample, after: Sample) -> dict[str, float]:
    """CPU seconds per component between two samples.

    - a process in both: its own time's growth; a new one: all its own time;
    - a parent's children time grows by the whole time of each child it reaped meanwhile, so the
      part a reaped child had before the first sample is taken off; what stays is counted to that
      child's component (or to the parent's when the child was born and reaped in between, e.g.
      a short-lived helper).
    """
    spent: dict[str, float] = {}

    def add(component: str, seconds: float) -> None:
        spent[component] = spent.get(component, 0.0) + max(0.0, seconds)

    gone: dict[int, list[tuple[str, Stat]]] = {}  # parent pid -> children seen before, gone after
    for key, (component, old) in before.procs.items():
        if key not in after.procs:
            gone.setdefault(old.ppid, []).append((component, old))
    for key, (component, new) in after.procs.items():
        old_entry = before.procs.get(key)
        old = old_entry[1] if old_entry else None
        add(component, new.own - (old.own if old else 0.0))
        if old is None:
            add(component, new.children)  # children it started and reaped since it was born
            continue
        reaped = new.children - old.children
        if reaped <= 0:
            continue
        lost = gone.get(new.pid, [])
        reaped -= sum(s.own + s.children for _, s in lost)
        kinds = {c for c, _ in lost}
        add(kinds.pop() if len(kinds) == 1 else component, reaped)
    return spent


class StackCpu:
    """Samples the CPU of a stack's processes; `processes()` lists (pid, component) afresh each time
    so backends and restarted children are seen."""

    def __init__(self, processes: Callable[[], list[tuple[int, str]]]) -> None:
        self.processes = processes

    def sample(self) -> Sample:
        return sample(self.processes())

    @staticmethod
    def between(before: Sample, after: Sample) -> dict[str, float]:
        return cpu_between(before, after)


def own_cpu() -> float:
    """CPU seconds of this process (the benchmark's driver) so far."""
    t = os.times()
    return t.user + t.system

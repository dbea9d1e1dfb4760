"""The bench's CPU accounting and side-by-side table (pure parts; no stack): the calibration loop,
/proc/<pid>/stat parsing, CPU between two samples with processes that come and go, and the ratios."""

from __future__ import annotations

import os

import pytest

from bench import cpu
from bench.compare import best_of, format_rows, ratio_rows
from bench.figures import Figure


def stat_line(pid, comm, ppid, utime, stime, cutime=0, cstime=0, start=1000):
    # Fields 3..22 of proc(5): state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime priority nice threads itrealvalue starttime, then more.
    fields = ["S", ppid, 1, 1, 0, -1, 0, 0, 0, 0, 0, utime, stime, cutime, cstime, 20, 0, 4, 0, start, 9, 9]
    return f"{pid} ({comm}) " + " ".join(str(f) for f in fields)


def test_stat_is_parsed_from_the_last_parenthesis():
    # A command name may hold spaces and parentheses: fields are counted after the last ')'.
    stat = cpu.parse_stat(stat_line(42, "post gres: (idle)", 7, 150, 50, 300, 100, start=555), ticks=100)
    assert stat == cpu.Stat(pid=42, ppid=7, start=555, own=2.0, children=4.0)


def test_stat_of_this_process_matches_os_times():
    stat = cpu.read_stat(os.getpid())
    assert stat is not None and stat.ppid == os.getppid()
    t = os.times()
    assert abs(stat.own - (t.user + t.system)) < 0.2


def sample(at, *rows):
    """rows: (component, pid, ppid, own, children[, start])"""
    procs = {}
    for component, pid, ppid, own, children, *start in rows:
        s = cpu.Stat(pid, ppid, start[0] if start else 1, own, children)
        procs[(pid, s.start)] = (component, s)
    return cpu.Sample(at, procs)


def test_cpu_between_counts_growth_new_processes_and_reaped_children():
    before = sample(
        0,
        ("postgres", 10, 1, 5.0, 20.0),  # postmaster: 20 s of backends reaped before
        ("postgres", 11, 10, 3.0, 0.0),  # a backend that ends in between
        ("worker", 20, 1, 100.0, 0.0),
        ("temporal", 30, 1, 50.0, 0.0),
    )
    after = sample(
        10,
        ("postgres", 10, 1, 5.5, 24.0),  # reaped backend 11 with 3.0 + 1.0 spent in between
        ("postgres", 12, 10, 0.7, 0.0),  # a new backend
        ("worker", 20, 1, 102.0, 0.0),
        ("temporal", 30, 1, 51.5, 0.0),
    )
    spent = cpu.cpu_between(before, after)
    assert spent == pytest.approx({"postgres": 0.5 + 1.0 + 0.7, "worker": 2.0, "temporal": 1.5})


def test_a_restarted_child_is_charged_to_its_own_component():
    before = sample(0, ("supervisor", 1, 0, 1.0, 0.0), ("worker", 20, 1, 30.0, 0.0))
    # The worker died after 2 more seconds; the supervisor reaped it and started another.
    after = sample(5, ("supervisor", 1, 0, 1.1, 32.0), ("worker", 21, 1, 4.0, 0.0))
    assert cpu.cpu_between(before, after) == pytest.approx({"supervisor": 0.1, "worker": 2.0 + 4.0})


def test_a_reused_pid_is_a_new_process():
    before = sample(0, ("api", 40, 1, 9.0, 0.0, 100))
    after = sample(1, ("api", 40, 1, 0.5, 0.0, 200))  # same pid, later start: another process
    assert cpu.cpu_between(before, after) == {"api": 0.5}


def test_calibration_is_the_fastest_of_its_runs():
    result = cpu.calibrate(runs=3, n=20_000)
    assert 0 < result["cpu_ms_min"] <= result["cpu_ms_median"]
    assert result["wall_ms_min"] > 0
    assert cpu.calibration_loop(10) == cpu.calibration_loop(10)


def test_ratio_rows_put_each_figure_side_by_side():
    ref = [Figure("signup.cpu_ms_per_order", 800.0, "ms CPU"), Figure("signup.orders_per_s", 2.0, "orders/s")]
    new = [
        Figure("signup.cpu_ms_per_order", 400.0, "ms CPU"),
        Figure("signup.orders_per_s", 5.0, "orders/s"),
        Figure("signup.workers2.orders_per_s", 7.0, "orders/s"),
    ]
    rows = {r["name"]: r for r in ratio_rows(ref, new)}
    assert rows["signup.cpu_ms_per_order"]["ratio"] == 0.5 and rows["signup.cpu_ms_per_order"]["better"]
    assert rows["signup.orders_per_s"]["ratio"] == 2.5 and rows["signup.orders_per_s"]["better"]
    assert rows["signup.workers2.orders_per_s"]["ref"] is None
    assert rows["signup.workers2.orders_per_s"]["ratio"] is None
    table = format_rows(list(rows.values()), "REF 64d011a", "tree")
    assert "0.50× better" in table and "2.50× better" in table and "—" in table
    assert table.splitlines()[0].split()[:2] == ["figure", "unit"]


def test_best_of_rounds_keeps_the_least_disturbed_value():
    r1 = [Figure("x.cpu_ms_per_order", 500.0, "ms CPU"), Figure("x.per_s", 3.0, "orders/s")]
    r2 = [Figure("x.cpu_ms_per_order", 450.0, "ms CPU"), Figure("x.per_s", 2.5, "orders/s")]
    best = {f.name: f.value for f in best_of([r1, r2])}
    assert best == {"x.cpu_ms_per_order": 450.0, "x.per_s": 3.0}

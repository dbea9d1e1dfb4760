"""A fresh embedded stack for the benchmarks: its own data dir, free ports, timed starts and stops."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from stack import postgres

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 180.0
STOP_TIMEOUT = 90.0
# After /health answers, the portals and the worker may still be importing: a workload measured
# then would be charged their start-up. settle() waits until the stack idles.
SETTLE_CORES = 0.25
SETTLE_TIMEOUT = 30.0


def _free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(postgres.free_port())
    return sorted(ports)


def isolated_env(data_dir: Path, latency_factor: str) -> tuple[dict[str, str], list[int]]:
    """The environment of a stack of our own in `data_dir` on free ports (Postgres, Temporal,
    its UI, the API, the portal, the cockpit, in that order). Only our settings: an outer BSS_DB_URL would point the run at
    someone else's database."""
    pg, temporal, ui, api, portal, cockpit = ports = _free_ports(6)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BSS_")}
    env.update(
        BSS_DATA_DIR=str(data_dir),
        BSS_PG_PORT=str(pg),
        BSS_TEMPORAL_PORT=str(temporal),
        BSS_TEMPORAL_UI_PORT=str(ui),
        BSS_API_PORT=str(api),
        BSS_PORTAL_PORT=str(portal),
        BSS_COCKPIT_PORT=str(cockpit),
        BSS_SIM_LATENCY_FACTOR=latency_factor,
        PYTHONUNBUFFERED="1",
    )
    return env, ports


@dataclass
class BenchStack:
    """`root` is the tree whose code the stack runs (a worktree of another commit for
    `make bench-compare`) and `python` the interpreter of its venv; the driver stays in ours."""

    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bss-bench-")))
    env: dict[str, str] = field(default_factory=dict)
    supervisor: subprocess.Popen[bytes] | None = None
    root: Path = ROOT
    python: str = sys.executable

    def __post_init__(self) -> None:
        self.env, _ = isolated_env(self.data_dir, "0")

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['BSS_API_PORT']}"

    def db_url(self, driver: str = "postgresql+asyncpg") -> str:
        """The stack's database, with the password its Postgres generated (none for a REF from
        before passwords, whose cluster trusted local connections)."""
        cluster, port = self.data_dir / "pg", int(self.env["BSS_PG_PORT"])
        if not postgres.password_file(cluster).exists():
            return f"{driver}://{postgres.USER}@127.0.0.1:{port}/bss"
        return postgres.url(cluster, port, "bss", driver=driver)

    @property
    def token(self) -> str:
        return (self.data_dir / "api-token").read_text().strip()

    @property
    def running(self) -> bool:
        return self.supervisor is not None and self.supervisor.poll() is None

    def start(self) -> float:
        """Start the supervisor (what `bss up --detach` runs) and return seconds until /health is 200."""
        if self.running:
            raise RuntimeError("the benchmark stack already runs")
        log = self.data_dir / "logs" / "stack.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(log, "ab") as out:
            self.supervisor = subprocess.Popen(
                [self.python, "-m", "stack.runner", "supervise"],
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with httpx.Client(timeout=2) as client:
            while time.monotonic() - started < START_TIMEOUT:
                if self.supervisor.poll() is not None:
                    raise RuntimeError(f"the stack exited during start-up; see {log}")
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise TimeoutError(f"the stack was not healthy after {START_TIMEOUT:.0f} s; see {log}")

    def stop(self) -> float:
        """SIGTERM to the supervisor (what `bss down` sends); seconds until it and its children exit."""
        if not self.running:
            return 0.0
        assert self.supervisor is not None
        started = time.monotonic()
        self.supervisor.send_signal(signal.SIGTERM)
        self.supervisor.wait(STOP_TIMEOUT)
        return time.monotonic() - started

    def processes(self) -> list[psutil.Process]:
        """The supervisor and every process under it (Postgres backends included)."""
        if not self.running:
            return []
        assert self.supervisor is not None
        root = psutil.Process(self.supervisor.pid)
        return [root, *root.children(recursive=True)]

    def cpu_processes(self) -> list[tuple[int, str]]:
        """(pid, component) of every process of the stack, for bench.cpu's samples."""
        found = []
        for proc in self.processes():
            try:
                found.append((proc.pid, component_of(proc)))
            except psutil.Error:
                continue
        return found

    def workers(self) -> int:
        """Worker processes running now (a REF from before `--workers` runs one whatever it is told)."""
        return sum(1 for _, component in self.cpu_processes() if component == "worker")

    def restart_with(self, **env: str) -> int:
        """Stop, start again with these settings changed, wait until idle; the number of workers."""
        self.stop()
        self.env.update(env)
        self.start()
        self.settle()
        return self.workers()

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> float:
        """Wait until the whole stack uses under SETTLE_CORES for a second (start-up done); returns
        the seconds waited."""
        from bench import cpu

        started = time.monotonic()
        before = cpu.sample(self.cpu_processes())
        while time.monotonic() - started < timeout:
            time.sleep(1.0)
            after = cpu.sample(self.cpu_processes())
            busy = sum(cpu.cpu_between(before, after).values()) / max(after.at - before.at, 1e-3)
            if busy < SETTLE_CORES:
                break
            before = after
        return time.monotonic() - started

    def memory_mib(self) -> dict[str, float]:
        """Summed RSS (counts shared pages once per process) and PSS (shares them out) of the stack."""
        rss = pss = 0
        by_name: dict[str, float] = {}
        for proc in self.processes():
            try:
                info = proc.memory_full_info()
                name = component_of(proc)
            except psutil.Error:
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            by_name[name] = by_name.get(name, 0) + info.rss
        mib = 1024 * 1024
        return {
            "rss": rss / mib,
            "pss": pss / mib,
            **{f"rss.{k}": round(v / mib, 1) for k, v in sorted(by_name.items())},
        }

    def close(self) -> None:
        try:
            self.stop()
        except subprocess.TimeoutExpired:
            pass
        # Whatever survived a failed stop must not outlive the benchmark.
        for proc in psutil.process_iter():
            try:
                if proc.environ().get("BSS_DATA_DIR") == str(self.data_dir):
                    proc.kill()
            except psutil.Error:
                continue
        shutil.rmtree(self.data_dir, ignore_errors=True)


def component_of(proc: psutil.Process) -> str:
    name = proc.name()
    if name in ("postgres", "temporal"):  # the binaries' own names; backends share "postgres"
        return name
    if name.startswith("bss-"):  # forked from the supervisor (stack/zygote.py): bss-api, bss-worker-2…
        part = name.removeprefix("bss-").split("-")[0]
        return "supervisor" if part == "migrate" else part
    cmd = " ".join(proc.cmdline())
    markers = (
        ("stack.runner", "supervisor"),
        ("api.app", "api"),
        ("portals.", "portals"),
        ("worker.py", "worker"),
        ("migrate_and_seed", "supervisor"),
    )
    for marker, component in markers:
        if marker in cmd:
            return component
    return name

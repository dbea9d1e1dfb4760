"""`bss up` / `bss down` / `bss status`: the whole stack on one machine.

A supervisor process owns every child (Postgres, Temporal dev server, worker, API, portals),
each in its own session so that one Ctrl-C reaches only the supervisor, which then stops the
worker and the API, then Temporal and Postgres; a Ctrl-C during start-up stops whatever had
started. Its pid (and start time, against pid reuse) in <data dir>/stack.pid tells a second
`bss up` that a stack already runs. Migrations run in a short-lived child, so Alembic and the
seeders never stay resident.

The Python children (migrations, API, workers, the doors' process) are forked from the supervisor
after it imported what they share, in a thread while Postgres starts (stack/zygote.py): the stack
holds one copy of those pages at idle instead of one per process.

Start-up runs side by side what does not depend on each other: the migration child and the API
are forked at once, through stack/gate.py, and import the rest of their code while the
migrations run and the dev server boots (the workers once the API has imported); each is let go
only when what it needs is ready (the migration child at once, Postgres being up, the workers
and the API once the database is migrated and Temporal listens). The log of a detached stack ends its start with a timeline.

Every child that dies is started again, the infrastructure included: a killed Postgres or
Temporal dev server comes back on the same data (the API answers 503 meanwhile; an order stored
while Temporal was away is started by the worker's order sweeper). More than five restarts of one
child within a minute is a crash loop: the supervisor then waits between attempts.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings, get_settings
from stack import bytecode, postgres, temporal, zygote
from stack.gate import Gate

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Child:
    name: str
    cmd: list[str]
    port: int | None
    restartable: bool
    proc: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    # Held at its gate after its imports until the supervisor opens it (first start only).
    gate: Gate | None = None
    # The web doors' process: the ports it serves (one per door).
    door_ports: tuple[int, ...] = ()


@dataclass
class Infra:
    """Postgres or the Temporal dev server: `start()` runs it on its data and waits until it serves."""

    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    proc: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)

    def exited(self) -> bool:
        return self.proc is None or self.proc.poll() is not None


def pid_file(settings: Settings) -> Path:
    return settings.data_dir / "stack.pid"


def running_pid(settings: Settings) -> int | None:
    path = pid_file(settings)
    try:
        fields = path.read_text().split()
        pid = int(fields[0])
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, IndexError, ProcessLookupError, PermissionError):
        return None
    # After a crash or a reboot the pid may belong to another process by now: compare start times.
    if len(fields) > 1 and _start_time(pid) not in (None, fields[1]):
        return None
    return pid


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a process (clock ticks since boot); None where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _write_pid_file(settings: Settings) -> None:
    pid = os.getpid()
    pid_file(settings).write_text(f"{pid} {_start_time(pid) or ''}".strip() + "\n")


PORTALS = (
    # (name, module of its uvicorn factory `app_from_env`, settings attribute of its port)
    ("portal", "portals.selfserve.app", "portal_port"),
    ("cockpit", "portals.cockpit.app", "cockpit_port"),
)


def portals(settings: Settings) -> list[tuple[str, str, int]]:
    """The web doors this tree has: (name, uvicorn factory, port). A door whose module is not in
    the tree yet is simply not started."""
    found = []
    for name, module, port_attr in PORTALS:
        if (ROOT / (module.replace(".", "/") + ".py")).is_file():
            found.append((name, f"{module}:app_from_env", int(getattr(settings, port_attr))))
    return found


def doors_child(settings: Settings) -> Child | None:
    """One process serves every door (portals/web/serve.py: one uvicorn server per door, each with
    its own app and port, in one event loop): the doors import the same operations layer and web
    stack, and two processes held two copies of it at idle. Killed or crashed, it is started again
    with every door; `bss status` checks each door's port."""
    doors = [(name, factory.split(":")[0], port) for name, factory, port in portals(settings)]
    if not doors:
        return None
    from portals.web.serve import door_args

    cmd = [sys.executable, "-m", "portals.web.serve", "--host", settings.host, *door_args(doors)]
    return Child("portals", cmd, None, True, door_ports=tuple(port for _, _, port in doors))


def components(settings: Settings) -> list[tuple[str, str, int | None]]:
    """(name, address, port) of every part of the stack, for status and the banner."""
    parts: list[tuple[str, str, int | None]] = []
    if settings.embedded_db:
        parts.append(("postgres", f"127.0.0.1:{settings.pg_port}", settings.pg_port))
    else:
        parts.append(("postgres (external)", redact_url(settings.database_url), None))
    if settings.embedded_temporal:
        parts.append(("temporal", settings.temporal_target, settings.temporal_port))
        parts.append(
            ("temporal ui", f"http://{settings.host}:{settings.temporal_ui_port}", settings.temporal_ui_port)
        )
    else:
        parts.append(("temporal (external)", settings.temporal_target, None))
    parts.append(("api", settings.api_url, settings.api_port))
    for name in running_worker_names(settings) or worker_names(settings):
        parts.append((name, f"task queue {settings.task_queue}", None))
    for name, _, port in portals(settings):
        parts.append((name, f"http://{settings.host}:{port}", port))
    return parts


def worker_names(settings: Settings) -> list[str]:
    """`worker` alone, or `worker-1` … `worker-N` with `bss up --workers N` (BSS_WORKERS)."""
    n = max(1, settings.workers)
    return ["worker"] if n == 1 else [f"worker-{i}" for i in range(1, n + 1)]


def running_worker_names(settings: Settings) -> list[str]:
    """The workers the running stack here started (its children file), whatever BSS_WORKERS the
    caller of `bss status` has; empty when no stack runs."""
    if running_pid(settings) is None:
        return []
    try:
        record = json.loads(children_file(settings).read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [k for k in record if k.startswith("worker") and k != "workers"]


def redact_url(url: str) -> str:
    if "@" in url and ":" in url.split("@")[0].split("//")[-1]:
        scheme, rest = url.split("//", 1)
        creds, host = rest.split("@", 1)
        return f"{scheme}//{creds.split(':')[0]}:***@{host}"
    return url


def _log(settings: Settings, name: str) -> Path:
    return settings.data_dir / "logs" / f"{name}.log"


# The supervisor's imports its Python children share (stack/zygote.py); None: they are exec'd.
_preload: zygote.Preload | None = None


def _spawn(settings: Settings, child: Child, env: dict[str, str]) -> None:
    log = _log(settings, child.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    gate = child.gate
    popen = subprocess.Popen
    if _preload is not None and child.cmd[0] == sys.executable:
        _preload.join()
        popen = functools.partial(zygote.Forked, child.name)
    with open(log, "ab") as out:
        child.proc = popen(
            child.cmd,
            cwd=ROOT,
            env=gate.env(env) if gate else env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=gate.fds if gate else (),
        )
    if gate is not None:
        gate.spawned()


def _let_go(child: Child) -> None:
    if child.gate is not None:
        child.gate.open()
        child.gate = None  # a restart runs at once


def _gated(argv: list[str], preload: tuple[str, ...]) -> list[str]:
    """`python -m stack.gate`: import `preload`, wait for the supervisor, then run argv (stack/gate.py)."""
    return [sys.executable, "-m", "stack.gate", *(a for m in preload for a in ("--preload", m)), "--", *argv]


# What each child imports while it waits: the bulk of its start-up CPU (stack/gate.py), up to
# what uvicorn, the lifespan and the first /health need (the Temporal client and its tracing).
API_PRELOAD = (
    "api.app",
    "api.routers",
    "core.telemetry",
    "asyncpg",
    "temporalio.client",
    "temporalio.contrib.opentelemetry",
    "opentelemetry.instrumentation.fastapi",
    "uvicorn.main",
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.websockets_sansio_impl",
)
WORKER_PRELOAD = (
    "core.telemetry",
    "asyncpg",
    "temporalio.client",
    "temporalio.contrib.opentelemetry",
    "temporalio.worker",
    "ops.runtime",
    "activities.registry",
    "workflows.registry",
    "workflows.quarantine",
    "ops.orders",
    "ops.crm",
    "ops.notify",
)
# The migration child: what deciding needs (stack/prepare.py); on a new cluster also the seeders
# and their models, loaded while initdb runs. Alembic loads only when there is an upgrade to run.
CHECK_PRELOAD = ("asyncpg", "core.settings", "stack.runner", "stack.prepare")
SEED_PRELOAD = (*CHECK_PRELOAD, "ops.seed", "domains.seeds")


def _signal(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is not None and proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass


def _reap(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    if proc is None:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def health(settings: Settings, timeout: float = 2) -> tuple[int, dict[str, object]]:
    """The API's /health: (status, body). The standard library's client: polled every 0.1 s during
    start-up, httpx built a client (and its TLS context) per call, a second of CPU over a start."""
    from urllib.parse import urlsplit

    url = urlsplit(settings.api_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=timeout)
    try:
        conn.request("GET", "/health")
        answer = conn.getresponse()
        body = json.loads(answer.read() or b"{}")
        return answer.status, body if isinstance(body, dict) else {}
    finally:
        conn.close()


def wait_healthy(
    settings: Settings, timeout: float = 90, watch: list[Child] | None = None
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last: dict[str, object] = {}
    while time.monotonic() < deadline:
        for child in watch or []:
            if child.proc is not None and child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited during start-up; see {_log(settings, child.name)}")
        try:
            status, last = health(settings)
            if status == 200:
                return last
        except (OSError, http.client.HTTPException, ValueError):  # refused, reset, timed out; not JSON
            pass
        time.sleep(0.1)
    raise TimeoutError(f"The stack did not become healthy within {timeout:.0f} s (last answer: {last}).")


def prepare_database(settings: Settings) -> str:
    """Migrate and seed (stack/prepare.py: Alembic and the models only when there is work for them)."""
    from stack.prepare import prepare

    return asyncio.run(prepare(settings))


def _migration_child(settings: Settings) -> Child:
    """prepare_database in a child process: Alembic and every model would otherwise stay resident
    in the supervisor for the life of the stack. Started at once and held at its gate."""
    fresh = settings.embedded_db and not (settings.data_dir / "pg" / "PG_VERSION").exists()
    cmd = _gated(["-m", "stack.migrate_and_seed"], SEED_PRELOAD if fresh else CHECK_PRELOAD)
    return Child("migrate", cmd, None, False, gate=Gate())


def _finish_migrations(settings: Settings, child: Child) -> None:
    """Wait for the migration child (let go once Postgres accepts connections)."""
    assert child.proc is not None
    code = child.proc.wait()
    if code != 0:
        log = _log(settings, "migrate")
        lines = log.read_text(errors="replace").strip().splitlines()
        raise RuntimeError(f"{lines[-1] if lines else 'migrations failed'} (see {log})")


def ensure_dev_token(path: Path) -> str:
    """Generate the development token once; later starts reuse it (the API reads it: api/auth.py)."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def supervise(settings: Settings, announce: bool = True) -> int:
    """Run the stack in the foreground until SIGINT/SIGTERM."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if (pid := running_pid(settings)) is not None and pid != os.getpid():
        print(f"A stack already runs here (pid {pid}); `bss status` shows it, `bss down` stops it.")
        return 0
    _write_pid_file(settings)
    started = time.monotonic()
    timeline: list[tuple[str, float]] = []

    def mark(what: str) -> None:
        timeline.append((what, time.monotonic() - started))

    stopping = False
    starting = True

    def on_signal(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True
        if starting:
            # Abort a start-up step (waiting for a port, migrating) at once instead of finishing it.
            raise KeyboardInterrupt

    # SIGHUP too: a closed terminal must not orphan the children, which live in their own sessions.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    global _preload
    infra: list[Infra] = []
    apps: list[Child] = []
    migration: Child | None = None
    env = child_env(settings)
    try:
        if bytecode.enabled():
            # PYTHONDONTWRITEBYTECODE=1 would make every child compile every module at every start.
            bytecode.compile_project()
        # What the Python children share, imported here once while the dev server boots and
        # Postgres starts; each child is then forked from this process (stack/zygote.py).
        _preload = zygote.Preload()
        if settings.embedded_temporal:
            # Started first and awaited last: it boots while Postgres starts and migrates.
            step("temporal dev server", announce)
            dev_server = _temporal_infra(settings)
            dev_server.proc = temporal.spawn(
                settings.data_dir / "temporal.db",
                settings.temporal_port,
                settings.temporal_ui_port,
                _log(settings, "temporal"),
            )
            infra.append(dev_server)
        py = sys.executable
        migration = _migration_child(settings)
        api = Child(
            "api",
            _gated(_uvicorn(py, "api.app:app_from_env", settings.host, settings.api_port)[1:], API_PRELOAD),
            settings.api_port,
            True,
            gate=Gate(),
        )
        workers = [
            Child(name, _gated([str(ROOT / "worker.py")], WORKER_PRELOAD), None, True, gate=Gate())
            for name in worker_names(settings)
        ]
        apps = [api]
        if settings.embedded_db:
            step("postgres", announce)
            pg = _postgres_infra(settings)
            pg.proc = pg.start()
            infra.append(pg)
            postgres.ensure_database(settings.data_dir / "pg", settings.pg_port, "bss")
            mark("postgres ready")
        # The migration child and the API are forked once the shared imports are in (the first
        # _spawn waits for them), import the rest of their code and wait at their gates
        # (stack/gate.py); the workers, whose imports /health does not wait for, once the API has
        # imported (on two cores they would slow it). While a child is being spawned a signal only
        # sets `stopping` (raised in the middle of a fork it would orphan that child, which lives
        # in its own session); checked right after.
        starting = False
        for child in (migration, api):
            _spawn(settings, child, env)
        _record_children(settings, apps)
        starting = True
        if stopping:
            return 0
        mark("api importing")
        step("migrations and reference data", announce)
        _let_go(migration)
        # The workers start once the API has imported (or died trying: its watch reports it).
        assert api.gate is not None
        api.gate.wait_ready()
        mark("api imported")
        starting = False
        for child in workers:
            _spawn(settings, child, env)
        apps = [*workers, api]
        _record_children(settings, apps)
        starting = True
        if stopping:
            return 0
        _finish_migrations(settings, migration)
        mark("migrated")
        if settings.embedded_temporal:
            assert dev_server.proc is not None
            temporal.wait_ready(
                dev_server.proc, "127.0.0.1", settings.temporal_port, _log(settings, "temporal")
            )
            mark("temporal listening")
        ensure_dev_token(settings.token_file)
        if (door_process := doors_child(settings)) is not None:
            apps.append(door_process)
        what = "worker" if settings.workers <= 1 else f"{settings.workers} workers"
        doors = [c for c in apps if c.door_ports]
        step(f"{what}, api and portals" if doors else f"{what} and api", announce)
        # The doors start once the API answers: on two cores their imports would otherwise slow
        # the worker's and the API's, and /health needs neither door.
        for child in apps:
            _let_go(child)
        wait_healthy(settings, watch=[c for c in apps if c not in doors])
        mark("healthy")
        starting = False
        for child in doors:
            _spawn(settings, child, env)
        _record_children(settings, apps)
        starting = True
        if stopping:
            return 0
        _wait_doors(settings, doors)
        mark("portals listening")
        starting = False
        if stopping:
            return 0
        if not sys.stdout.isatty():
            print("  timeline: " + ", ".join(f"{what} {at:.1f} s" for what, at in timeline), flush=True)
        if announce:
            banner(settings, time.monotonic() - started, detached=not sys.stdin.isatty())
        if bytecode.enabled():
            bytecode.compile_venv_in_background()  # a venv made without `make venv`: next start
        while not stopping:
            time.sleep(0.3)
            for item in infra:
                if item.exited() and not stopping:
                    # A SIGTERM/SIGINT while it starts again aborts the wait, as during start-up.
                    starting = True
                    _restart_infra(item)
                    starting = False
            for child in apps:
                if child.proc is not None and child.proc.poll() is not None and not stopping:
                    _restart(settings, child, env)
                    _record_children(settings, apps)
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        print(f"\nThe stack could not start: {exc}", file=sys.stderr)
        return 1
    finally:
        starting = False
        if announce:
            print("\nstopping…", flush=True)
        # A child still at its gate exits without running its target once the gate closes.
        for child in (migration, *apps):
            if child is not None and child.gate is not None:
                child.gate.close()
        if migration is not None:
            _signal(migration.proc, signal.SIGTERM)
        # The worker and the API drain in parallel; the infrastructure goes last.
        for child in apps:
            _signal(child.proc, signal.SIGTERM)
        for child in apps:
            _reap(child.proc, timeout=15)
        if migration is not None:
            _reap(migration.proc, timeout=15)
        # SIGINT is Postgres' "fast" shutdown; the Temporal CLI stops cleanly on it too. Neither
        # needs the other, so they stop side by side.
        for item in infra:
            _signal(item.proc, signal.SIGINT)
        for item in infra:
            _reap(item.proc, timeout=30)
        pid_file(settings).unlink(missing_ok=True)
        children_file(settings).unlink(missing_ok=True)
    return 0


def _wait_doors(settings: Settings, doors: list[Child], timeout: float = 30) -> None:
    """Until every door listens. A door that fails does not stop the stack (the API and the
    worker serve without it): the supervisor's loop keeps restarting it, and `bss status` shows it down."""
    deadline = time.monotonic() + timeout
    waiting = [(child, port) for child in doors for port in child.door_ports]
    while waiting and time.monotonic() < deadline:
        for child, port in list(waiting):
            if child.proc is not None and child.proc.poll() is not None:
                print(f"{child.name} exited during start-up; see {_log(settings, child.name)}", flush=True)
                waiting.remove((child, port))
            elif postgres.port_open(settings.host, port):
                waiting.remove((child, port))
        if waiting:
            time.sleep(0.2)
    for child, port in waiting:
        print(f"{child.name} does not listen on {port} yet; see {_log(settings, child.name)}", flush=True)


def _uvicorn(py: str, factory: str, host: str, port: int) -> list[str]:
    return [py, "-m", "uvicorn", factory, "--factory", "--host", host, "--port", str(port),
            "--no-access-log", "--log-level", "warning"]  # fmt: skip


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of the stack's children: the data dir, and the test clock on or off as the
    supervisor has it (`bss up --test-clock`), whatever the caller's shell says."""
    return dict(
        os.environ,
        BSS_DATA_DIR=str(settings.data_dir.resolve()),
        BSS_TEST_CLOCK="true" if settings.test_clock else "false",
        BSS_WORKERS=str(max(1, settings.workers)),
        PYTHONUNBUFFERED="1",
    )


def _restart(settings: Settings, child: Child, env: dict[str, str]) -> None:
    now = time.monotonic()
    child.restarts = [t for t in child.restarts if now - t < 60] + [now]
    print(
        f"{child.name} exited (code {child.proc.returncode if child.proc else '?'}); restarting it.",
        flush=True,
    )
    if len(child.restarts) > 5:
        time.sleep(5)  # a crash loop: do not spin the CPU
    _spawn(settings, child, env)


def _temporal_infra(settings: Settings) -> Infra:
    def start() -> subprocess.Popen[bytes]:
        return temporal.start(
            settings.data_dir / "temporal.db",
            settings.temporal_port,
            settings.temporal_ui_port,
            _log(settings, "temporal"),
        )

    return Infra("temporal", start)


def _postgres_infra(settings: Settings) -> Infra:
    def start() -> subprocess.Popen[bytes]:
        return postgres.start(settings.data_dir / "pg", settings.pg_port, _log(settings, "postgres"))

    return Infra("postgres", start)


def _restart_infra(item: Infra) -> None:
    """Start a dead Postgres or dev server again on its data; a failed attempt is retried on the
    next round of the supervisor's loop, with the same crash-loop pause as the worker and the API."""
    now = time.monotonic()
    item.restarts = [t for t in item.restarts if now - t < 60] + [now]
    code = item.proc.returncode if item.proc is not None else "?"
    print(f"{item.name} exited (code {code}); restarting it.", flush=True)
    if len(item.restarts) > 5:
        time.sleep(5)  # a crash loop: do not spin the CPU
    try:
        item.proc = item.start()
        print(f"{item.name} is back.", flush=True)
    except (OSError, RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
        print(f"{item.name} did not start again: {exc}", flush=True)


def step(what: str, announce: bool) -> None:
    if announce:
        print(f"  starting {what}…", flush=True)


def banner(settings: Settings, seconds: float, detached: bool = False) -> None:
    token = settings.token_file.read_text().strip() if settings.token_file.exists() else "(BSS_API_TOKEN)"
    print(f"\nBSS is up in {seconds:.1f} s.\n")
    print(f"  TMF API      {settings.api_url}   (OpenAPI: {settings.api_url}/docs)")
    titles = {"portal": "Self-serve", "cockpit": "Cockpit"}
    for name, _, port in portals(settings):
        print(f"  {titles.get(name, name):<12} http://{settings.host}:{port}")
    if settings.embedded_temporal:
        print(f"  Temporal UI  http://{settings.host}:{settings.temporal_ui_port}")
    print(f"  Temporal     {settings.temporal_target}")
    print(f"  Postgres     {redact_url(settings.database_url)}")
    print(f"  API token    {token}   (also in {settings.token_file})")
    if settings.test_clock:
        print("  Test clock   on: `bss clock` freezes and moves business time (test stacks only)")
    stop_hint = "`bss down` stops everything" if detached else "Ctrl-C stops everything"
    print(f"\nTry `bss catalog list` in another terminal. {stop_hint}; data stays in {settings.data_dir}.")


def up(detach: bool = False, test_clock: bool = False, workers: int | None = None) -> int:
    settings = get_settings()
    if test_clock:
        settings = settings.model_copy(update={"test_clock": True})
    if workers is not None:
        settings = settings.model_copy(update={"workers": max(1, workers)})
    if (pid := running_pid(settings)) is not None:
        print(f"A stack already runs here (pid {pid}).")
        if settings.test_clock and not stack_test_clock(settings):
            print("It runs without the test clock: `bss down`, then `bss up --test-clock`.")
        print_status(settings)
        return 0
    if not detach:
        return supervise(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = _log(settings, "stack")
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stack.runner", "supervise"],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=child_env(settings),
        )
    print("starting the stack in the background…", flush=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"The stack stopped during start-up; see {log}.", file=sys.stderr)
            return 1
        try:
            wait_healthy(settings, timeout=1)
        except TimeoutError:
            continue
        # The supervisor waits for the portals before it settles; give them that long here too.
        doors_deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < doors_deadline:
            if all(postgres.port_open(settings.host, port) for _, _, port in portals(settings)):
                break
            time.sleep(0.2)
        banner(settings, time.monotonic() - started, detached=True)
        return 0
    print(f"The stack is not healthy after 120 s; see {log}.", file=sys.stderr)
    return 1


def down() -> int:
    settings = get_settings()
    pid = running_pid(settings)
    if pid is None:
        print("No stack runs here.")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print("Stopped.")
            return 0
        time.sleep(0.2)
    print(f"The stack (pid {pid}) did not stop within 60 s.", file=sys.stderr)
    return 1


def status_rows(settings: Settings) -> list[dict[str, object]]:
    answer: dict[str, object] = {}
    try:
        answer = health(settings)[1]
    except (OSError, http.client.HTTPException, ValueError):
        pass
    rows = []
    for name, address, port in components(settings):
        if name.startswith("postgres"):
            ok = answer.get("database") == "up"
        elif name == "temporal" or name.startswith("temporal (ext"):
            ok = answer.get("temporal") == "up"
        elif name.startswith("worker"):
            ok = _worker_alive(settings, name)
        else:
            ok = port is not None and postgres.port_open(settings.host, port)
        rows.append({"component": name, "address": address, "healthy": ok})
    return rows


def _worker_alive(settings: Settings, name: str = "worker") -> bool:
    if running_pid(settings) is None:
        return False
    try:
        pid = json.loads(children_file(settings).read_text())[name]
        os.kill(pid, 0)
        return True
    except (FileNotFoundError, KeyError, ValueError, ProcessLookupError):
        return False


def children_file(settings: Settings) -> Path:
    return settings.data_dir / "stack-children.json"


def _record_children(settings: Settings, apps: list[Child]) -> None:
    record: dict[str, object] = {c.name: c.proc.pid for c in apps if c.proc}
    record["testClock"] = settings.test_clock
    record["workers"] = [c.proc.pid for c in apps if c.proc and c.name.startswith("worker")]
    children_file(settings).write_text(json.dumps(record))


def stack_test_clock(settings: Settings) -> bool:
    """Whether the stack running here was started with the test clock (`bss up --test-clock`)."""
    if running_pid(settings) is None:
        return False
    try:
        return json.loads(children_file(settings).read_text()).get("testClock") is True
    except (FileNotFoundError, ValueError, AttributeError):
        return False


def print_status(settings: Settings, as_json: bool = False) -> int:
    rows = status_rows(settings)
    pid = running_pid(settings)
    test_clock = stack_test_clock(settings)
    if as_json:
        print(
            json.dumps({"running": pid is not None, "pid": pid, "testClock": test_clock, "components": rows})
        )
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(
            title=f"BSS stack ({'running, pid ' + str(pid) if pid else 'not running'})",
            caption="test clock: on (`bss clock` moves business time)" if test_clock else None,
        )
        for col in ("component", "address", "state"):
            table.add_column(col)
        for row in rows:
            table.add_row(
                str(row["component"]),
                str(row["address"]),
                "[green]healthy[/]" if row["healthy"] else "[red]down[/]",
            )
        Console().print(table)
    return 0 if pid is not None and all(r["healthy"] for r in rows) else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["supervise"]:
        sys.exit(supervise(get_settings(), announce=True))
    sys.exit(up("--detach" in sys.argv))

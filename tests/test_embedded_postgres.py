"""The embedded Postgres of `bss up`: a commit is on disk when it returns, and every connection
needs the generated password, including on a cluster an earlier version created with `trust`."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack import postgres


@pytest.fixture
def cluster() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="bss-pg-auth-"))
    try:
        yield tmp / "pg"
    finally:
        postgres.remove(tmp / "pg")
        postgres.remove(tmp)


def _connect(port: int, password: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run(
        [str(postgres.bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-w"]
        + ["-d", "postgres", "-tAc", "SELECT 1"],
        capture_output=True,
        text=True,
        env=env,
    )


def _refused(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode != 0 and (
        "password" in result.stderr or "authentication failed" in result.stderr
    )


def test_a_new_cluster_commits_to_disk_and_wants_its_password(cluster: Path):
    port = postgres.free_port()
    server = postgres.start(cluster, port, cluster.parent / "pg.log")
    try:
        assert postgres.psql(cluster, port, "SHOW synchronous_commit") == "on"
        assert postgres.psql(cluster, port, "SHOW fsync") == "on"
        secret = postgres.password_file(cluster)
        assert secret.stat().st_mode & 0o777 == 0o600
        assert len(postgres.password(cluster)) >= 32
        assert "trust" not in (cluster / "pg_hba.conf").read_text().replace("# ", "")
        assert _refused(_connect(port, None))
        assert _refused(_connect(port, "not-the-password"))
        assert _connect(port, postgres.password(cluster)).stdout.strip() == "1"
    finally:
        postgres.stop(server)


def test_the_server_runs_no_io_worker_nor_replication_launcher(cluster: Path):
    # Reads are the backends' own (io_method=sync) and nothing replicates: a few MiB each at idle.
    port = postgres.free_port()
    server = postgres.start(cluster, port, cluster.parent / "pg.log", durable=False)
    try:
        kinds = postgres.psql(
            cluster, port, "SELECT string_agg(DISTINCT backend_type, ',') FROM pg_stat_activity"
        )
        assert "checkpointer" in kinds
        assert "io worker" not in kinds and "logical replication launcher" not in kinds
    finally:
        postgres.stop(server)


def test_a_trust_cluster_of_an_earlier_version_is_secured_on_start_and_keeps_its_data(cluster: Path):
    # What the earlier version made: initdb -A trust, `synchronous_commit = off` in postgresql.conf,
    # a server started without the durability options, and some data in it.
    port = postgres.free_port()
    log = cluster.parent / "pg.log"
    user = postgres._system_user()
    postgres._prepare_dirs(cluster, user)
    subprocess.run(
        [str(postgres.bin_dir() / "initdb"), "-D", str(cluster), "-U", "postgres", "-A", "trust"]
        + ["-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        user=user,
    )
    with open(cluster / "postgresql.conf", "a") as conf:
        conf.write("\nmax_connections = 200\nshared_buffers = 128MB\nfsync = on\nsynchronous_commit = off\n")
    old_cmd = postgres.server_command(cluster, port)[:-4]  # without the durability options
    with open(log, "ab") as out:
        old = subprocess.Popen(old_cmd, stdout=out, stderr=subprocess.STDOUT, user=user)
    try:
        postgres.wait_ready("127.0.0.1", port, old)
        assert _connect(port, None).returncode == 0, "the earlier version trusted everyone"
        env = {"PATH": "/usr/bin:/bin"}
        subprocess.run(
            [str(postgres.bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
            + ["-c", "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('from before')"],
            check=True,
            capture_output=True,
            env=env,
        )
    finally:
        postgres.stop(old)
    assert not postgres.password_file(cluster).exists()

    server = postgres.start(cluster, port, log)
    try:
        assert _refused(_connect(port, None)), "trust must be gone after the upgrade"
        assert postgres.password_file(cluster).stat().st_mode & 0o777 == 0o600
        assert postgres.psql(cluster, port, "SELECT v FROM kept") == "from before"
        assert postgres.psql(cluster, port, "SHOW synchronous_commit") == "on"
    finally:
        postgres.stop(server)
    # And the next start finds it secured as it is.
    server = postgres.start(cluster, port, log)
    try:
        assert _refused(_connect(port, None))
        assert postgres.psql(cluster, port, "SELECT v FROM kept") == "from before"
    finally:
        postgres.stop(server)

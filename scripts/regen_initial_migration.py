"""Regenerate migrations/versions/0001_initial.py from the SQLModel tables, and migrations/head.sql
(what `bss up` applies to an empty database: stack/prepare.py) from the migrations.

Only while the project has no release: once 0001 ships, schema changes get new revisions.
Usage: .venv/bin/python scripts/regen_initial_migration.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402

from core.migrate import ROOT, sync_url, upgrade  # noqa: E402
from stack import postgres  # noqa: E402


def main() -> None:
    target = ROOT / "migrations" / "versions" / "0001_initial.py"
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="bss-regen-") as tmp:
        port = postgres.free_port()
        server = postgres.start(Path(tmp) / "pg", port, Path(tmp) / "pg.log")
        try:
            postgres.ensure_database(Path(tmp) / "pg", port, "bss")
            url = postgres.url(Path(tmp) / "pg", port, "bss")
            upgrade(url, "0000")
            cfg = Config(str(ROOT / "alembic.ini"))
            cfg.attributes["url"] = sync_url(url)
            command.revision(cfg, message="initial", autogenerate=True, rev_id="0001")
        finally:
            server.terminate()
            server.wait()
    subprocess.run([sys.executable, "-m", "ruff", "format", str(target)], check=True)
    subprocess.run([sys.executable, "-m", "ruff", "check", "--fix", "-q", str(target)], check=False)
    print(f"wrote {target.relative_to(ROOT)}")
    # What `bss up` applies to an empty database instead of running Alembic (stack/prepare.py).
    subprocess.run([sys.executable, "-m", "stack.prepare", "render"], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()

"""Migrations and reference data at every start, paying for Alembic and the models only when needed.

`bss up` (and the `migrate` service of docker-compose.yml) prepares the database before the API
and the workers use it. Importing Alembic, SQLAlchemy's DDL and every SQLModel table cost seconds
of CPU at every start although, on most starts, there is nothing to do. So, under an advisory lock
(two preparers never race):

- an **empty database** gets `migrations/head.sql`: the SQL Alembic's upgrade to head runs,
  rendered by `make migration` (`python -m stack.prepare render`) and checked in, applied in one
  transaction with the version stamped, as long as it was rendered from the migration files in the
  tree (their SHA-256 is in its header; tests/stack/test_prepare.py checks the schema it makes is
  the one Alembic makes);
- a database **at that head** is left alone;
- **anything else** (an older schema, a file not rendered from the current migrations) goes through
  Alembic's upgrade, as before;
- the **reference data** is seeded (ops/seed.py, idempotent) when the schema was just created or
  upgraded, or when the code that seeds it changed since the database was last seeded: a SHA-256
  of that code is kept in `public.bss_reference_data`.

A URL with query parameters (TLS settings and the like, which only SQLAlchemy reads) takes the
old road: Alembic's upgrade and the seeders at every start.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RENDERED = ROOT / "migrations" / "head.sql"
VERSIONS = ROOT / "migrations" / "versions"
HEADER = "-- bss rendered schema:"
# pg_advisory_lock key of every preparer of a database ("bss prep" in ASCII).
LOCK_KEY = 0x6273732070726570
# What decides the reference data: the seeders and everything they may read.
SEED_SOURCES = ("ops/seed.py", "domains", "core")


@dataclass(frozen=True)
class Rendered:
    revision: str
    sources: str
    sql: str


def migration_sources(versions: Path = VERSIONS) -> str:
    """SHA-256 of the migration files (names and contents): what the rendered SQL was made from."""
    digest = hashlib.sha256()
    for path in sorted(versions.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def seed_fingerprint(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for source in SEED_SOURCES:
        path = root / source
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def load_rendered(path: Path = RENDERED) -> Rendered | None:
    """The rendered head, or None when it is missing or was not rendered from these migrations."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    first = text.split("\n", 1)[0]
    if not first.startswith(HEADER):
        return None
    fields = dict(item.split("=", 1) for item in first[len(HEADER) :].split())
    if fields.get("sources") != migration_sources(path.parent / "versions") or "revision" not in fields:
        return None
    return Rendered(fields["revision"], fields["sources"], text)


def render(path: Path = RENDERED) -> Rendered:
    """Write what Alembic's upgrade from nothing to head runs (offline mode: migrations/env.py),
    without its BEGIN/COMMIT: prepare() applies it in its own transaction."""
    import io

    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    out = io.StringIO()
    cfg = Config(str(ROOT / "alembic.ini"), output_buffer=out)
    cfg.set_main_option("script_location", str(path.parent))
    command.upgrade(cfg, "head", sql=True)
    lines = [line.rstrip() for line in out.getvalue().strip().splitlines()]
    if lines[0] != "BEGIN;" or lines[-1] != "COMMIT;":
        raise RuntimeError("Alembic's offline upgrade is not one transaction; cannot render it")
    revision = ScriptDirectory.from_config(cfg).get_current_head()
    header = f"{HEADER} revision={revision} sources={migration_sources(path.parent / 'versions')}"
    note = "-- Written by `make migration` (python -m stack.prepare render); do not edit.\n"
    path.write_text(header + "\n" + note + "\n".join(lines[1:-1]).strip() + "\n")
    loaded = load_rendered(path)
    assert loaded is not None
    return loaded


def _dsn(url: str) -> str | None:
    """The asyncpg DSN of a SQLAlchemy URL, or None when only SQLAlchemy can read it."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres") or "?" in rest:
        return None
    return f"postgresql://{rest}"


async def _version(conn: Any) -> str | None:
    if await conn.fetchval("SELECT to_regclass('public.alembic_version')") is None:
        return None
    return await conn.fetchval("SELECT version_num FROM public.alembic_version")


async def _empty(conn: Any) -> bool:
    """No schema of ours and no table in public: nothing a rendered head could collide with."""
    return not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname NOT IN ('public', 'information_schema')"
        " AND nspname NOT LIKE 'pg\\_%') OR EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname = 'public')"
    )


async def _seeded(conn: Any) -> str | None:
    if await conn.fetchval("SELECT to_regclass('public.bss_reference_data')") is None:
        return None
    return await conn.fetchval("SELECT fingerprint FROM public.bss_reference_data")


async def _record_seeded(conn: Any, fingerprint: str) -> None:
    async with conn.transaction():
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS public.bss_reference_data"
            " (fingerprint text NOT NULL, seeded_at timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute("DELETE FROM public.bss_reference_data")
        await conn.execute("INSERT INTO public.bss_reference_data (fingerprint) VALUES ($1)", fingerprint)


def _upgrade(url: str) -> None:
    from core.migrate import upgrade

    upgrade(url)


async def _seed(settings: Settings) -> None:
    from ops.seed import seed_reference_data

    await seed_reference_data(settings)


async def prepare(settings: Settings) -> str:
    """Migrate and seed the database of `settings`; returns what it did, for the log."""
    dsn = _dsn(settings.database_url)
    if dsn is None:
        await asyncio.to_thread(_upgrade, settings.database_url)
        await _seed(settings)
        return "migrated (Alembic) and seeded"
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        version = await _version(conn)
        rendered = load_rendered()
        done = []
        if version is None and rendered is not None and await _empty(conn):
            async with conn.transaction():
                await conn.execute(rendered.sql)
            done.append(f"schema {rendered.revision} created from {RENDERED.relative_to(ROOT)}")
        elif rendered is None or version != rendered.revision:
            await asyncio.to_thread(_upgrade, settings.database_url)
            done.append(f"migrated from {version or 'nothing'} (Alembic)")
        fingerprint = seed_fingerprint()
        if done or await _seeded(conn) != fingerprint:
            await _seed(settings)
            await _record_seeded(conn, fingerprint)
            done.append("reference data seeded")
        return ", ".join(done) or "schema at head and reference data current: nothing to do"
    finally:
        await conn.close()  # ends the session, and with it the advisory lock


if __name__ == "__main__":
    if sys.argv[1:] == ["render"]:
        sys.path.insert(0, str(ROOT))
        made = render()
        print(f"wrote {RENDERED.relative_to(ROOT)} (revision {made.revision})")
    else:
        raise SystemExit("usage: python -m stack.prepare render")

"""stack/prepare.py, what `bss up` runs before the API and the workers: an empty database gets the
schema from migrations/head.sql (the same schema Alembic's upgrade makes, without importing
Alembic), an older schema goes through Alembic, and the reference data is seeded when the schema
was made or the seeding code changed, not at every start."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from core.migrate import upgrade
from core.settings import Settings
from stack import postgres
from stack.prepare import RENDERED, load_rendered, prepare

ROOT = Path(__file__).resolve().parent.parent.parent
_n = itertools.count()


@pytest.fixture
def new_db(pg) -> Iterator[str]:
    """The name of an empty database (no template of ours: what a new cluster's `bss` is)."""
    name = f"prep_{os.getpid()}_{next(_n)}"
    pg.sql(f'CREATE DATABASE "{name}"')
    yield name
    pg.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _dump(pg, db: str) -> str:
    out = subprocess.run(
        [str(postgres.bin_dir() / "pg_dump"), "--schema-only", "-h", "127.0.0.1", "-p", str(pg.port),
         "-U", postgres.USER, "-d", db],
        check=True, capture_output=True, text=True, env=dict(os.environ, PGPASSWORD=postgres.password(pg.cluster)),
    )  # fmt: skip
    # pg_dump's \restrict key is random per run.
    return "\n".join(
        line for line in out.stdout.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )


async def _fetch(url: str, sql: str):
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_the_rendered_head_makes_the_schema_alembic_makes(pg, new_db: str):
    rendered = load_rendered()
    assert rendered is not None, (
        f"{RENDERED} is not rendered from the migrations in the tree: run `make migration`"
    )
    by_alembic = f"{new_db}_alembic"
    pg.sql(f'CREATE DATABASE "{by_alembic}"')
    try:

        async def apply() -> None:
            conn = await asyncpg.connect(pg.url(new_db).replace("+asyncpg", ""))
            try:
                async with conn.transaction():
                    await conn.execute(rendered.sql)
            finally:
                await conn.close()

        asyncio.run(apply())
        upgrade(pg.url(by_alembic))
        assert _dump(pg, new_db) == _dump(pg, by_alembic)
        version = "SELECT version_num FROM public.alembic_version"
        assert pg.sql(version, db=new_db) == pg.sql(version, db=by_alembic) == rendered.revision
    finally:
        pg.sql(f'DROP DATABASE IF EXISTS "{by_alembic}" WITH (FORCE)')


def test_an_empty_database_is_made_and_seeded_without_importing_alembic(pg, new_db: str, tmp_path: Path):
    code = (
        "import asyncio, sys\n"
        "from core.settings import Settings\n"
        "from stack.prepare import prepare\n"
        "print(asyncio.run(prepare(Settings(db_url=sys.argv[1], data_dir=sys.argv[2]))))\n"
        "print('alembic imported' if 'alembic' in sys.modules else 'alembic not imported')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BSS_")}
    out = subprocess.run(
        [sys.executable, "-c", code, pg.url(new_db), str(tmp_path)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert "created from migrations/head.sql" in out and "reference data seeded" in out
    assert "alembic not imported" in out
    url = pg.url(new_db)
    assert (
        asyncio.run(_fetch(url, "SELECT version_num FROM public.alembic_version")) == load_rendered().revision
    )
    assert asyncio.run(_fetch(url, "SELECT count(*) FROM catalog.product_offering")) == 3
    assert asyncio.run(_fetch(url, "SELECT count(*) FROM inventory.msisdn")) == 1000


async def test_an_older_schema_is_upgraded_by_alembic_and_seeding_follows_the_code(pg, new_db: str, tmp_path):
    url = pg.url(new_db)
    await asyncio.to_thread(upgrade, url, "0000")
    settings = Settings(db_url=url, data_dir=tmp_path)

    did = await prepare(settings)
    assert "migrated from 0000 (Alembic)" in did and "reference data seeded" in did
    assert await _fetch(url, "SELECT version_num FROM public.alembic_version") == load_rendered().revision
    assert await _fetch(url, "SELECT count(*) FROM catalog.product_offering") == 3

    # The next start: nothing to do, the seeders not run (an operator's deletion stays deleted).
    await _fetch(url, "DELETE FROM provisioning.fault_rule WHERE id = 'FI_PCRF_SLOW'")
    assert await prepare(settings) == "schema at head and reference data current: nothing to do"
    assert await _fetch(url, "SELECT count(*) FROM provisioning.fault_rule WHERE id = 'FI_PCRF_SLOW'") == 0

    # Seeding code that changed since (here: a fingerprint recorded by other code) seeds again.
    await _fetch(url, "UPDATE public.bss_reference_data SET fingerprint = 'older code'")
    assert await prepare(settings) == "reference data seeded"
    assert await _fetch(url, "SELECT count(*) FROM provisioning.fault_rule WHERE id = 'FI_PCRF_SLOW'") == 1


def test_a_rendered_head_older_than_the_migrations_is_not_used(tmp_path: Path):
    copy = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert load_rendered(copy / "head.sql") is not None
    first = sorted((copy / "versions").glob("*.py"))[-1]
    first.write_text(first.read_text() + "\n# a change not rendered yet\n")
    assert load_rendered(copy / "head.sql") is None

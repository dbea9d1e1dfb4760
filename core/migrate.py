"""Apply the Alembic migrations programmatically (used by `bss up` and the test fixtures)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sync_url(url: str) -> str:
    return url.replace("+asyncpg", "+psycopg")


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = sync_url(database_url)
    command.upgrade(cfg, revision)

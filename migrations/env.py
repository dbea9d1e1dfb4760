from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

import domains.registry  # noqa: F401  (loads every table into the metadata)
from core.db import SCHEMAS
from core.migrate import sync_url
from core.settings import get_settings

config = context.config
target_metadata = SQLModel.metadata


def include_name(name, type_, parent_names):
    if type_ == "schema":
        return name in SCHEMAS
    return True


def run_migrations_online() -> None:
    url = config.attributes.get("url") or sync_url(get_settings().database_url)
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_schemas=True,
            include_name=include_name,
            version_table_schema="public",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


def run_migrations_offline() -> None:
    """`alembic upgrade --sql`: the SQL the upgrade would run, printed (stack/prepare.py renders
    migrations/head.sql from it)."""
    context.configure(
        url=config.attributes.get("url") or "postgresql+psycopg://",
        target_metadata=target_metadata,
        include_schemas=True,
        include_name=include_name,
        version_table_schema="public",
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""Reference data (SPEC.md), seeded idempotently at every `bss up`: a re-run changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from core.db import make_engine, make_session_factory, transaction
from core.settings import Settings

Seeder = Callable[[AsyncSession], Awaitable[None]]


def seeders() -> list[Seeder]:
    """Each domain's reference data, in dependency order."""
    from domains import seeds

    return seeds.SEEDERS


async def seed_all(factory) -> None:
    for seeder in seeders():
        async with transaction(factory) as session:
            await seeder(session)


async def seed_reference_data(settings: Settings) -> None:
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        await seed_all(make_session_factory(engine))
    finally:
        await engine.dispose()

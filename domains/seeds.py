"""Every domain's reference-data seeder. Each `domains/<context>/seed.py` defines
`ORDER` (an int; lower runs first) and `async def seed(session)`, which must be idempotent."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession

import domains

Seeder = Callable[[AsyncSession], Awaitable[None]]


def discover() -> list[Seeder]:
    found: list[tuple[int, str, Seeder]] = []
    for info in pkgutil.iter_modules(domains.__path__):
        if not info.ispkg:
            continue
        try:
            module = importlib.import_module(f"domains.{info.name}.seed")
        except ModuleNotFoundError as exc:
            if exc.name != f"domains.{info.name}.seed":
                raise
            continue
        found.append((getattr(module, "ORDER", 100), info.name, module.seed))
    return [seeder for _, _, seeder in sorted(found, key=lambda t: (t[0], t[1]))]


SEEDERS = discover()

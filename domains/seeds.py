"""Every domain's reference-data seeder, in dependency order. Each must be idempotent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession

SEEDERS: list[Callable[[AsyncSession], Awaitable[None]]] = []

"""What every operation needs: the database, the Temporal client and the settings.

Built once per process (the API lifespan, the worker, a test) and handed to the operations.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.db import SessionFactory, make_engine, make_session_factory
from core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine
    from temporalio.client import Client


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    db: SessionFactory
    _temporal: Client | None = None
    _temporal_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, *, pool_size: int = 10) -> Runtime:
        if settings.test_clock:
            # Every process of a test stack (API, worker) builds its Runtime here: all of them then
            # read business time from the one file `bss clock` moves.
            from core.clock import clock

            clock.use_file(settings.clock_file)
        engine = make_engine(settings.database_url, pool_size=pool_size)
        return cls(settings=settings, engine=engine, db=make_session_factory(engine))

    async def temporal(self) -> Client:
        """Connect on first use, so the API starts (and answers /health) while Temporal is down."""
        async with self._temporal_lock:
            if self._temporal is None:
                from temporalio.client import Client

                from core.telemetry import temporal_interceptors

                # The worker built on this client inherits the tracing interceptor too.
                self._temporal = await Client.connect(
                    self.settings.temporal_target,
                    namespace=self.settings.temporal_namespace,
                    interceptors=temporal_interceptors(),
                )
            return self._temporal

    def use_temporal(self, client: Client) -> None:
        self._temporal = client

    async def close(self) -> None:
        await self.engine.dispose()

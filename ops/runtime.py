"""What every operation needs: the database, the Temporal client and the settings.

Built once per process (the API lifespan, the worker, a test) and handed to the operations.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.db import SessionFactory, make_engine, make_session_factory
from core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine
    from temporalio.client import Client


def temporal_connect_options(settings: Settings) -> dict[str, Any]:
    """The arguments of `Client.connect` for the configured cluster: address, namespace, TLS and API key.

    TLS is on when BSS_TEMPORAL_TLS says so, when any certificate setting is given, or with an API
    key (a key never travels in clear). Client certificate and key go together (mutual TLS)."""
    from temporalio.service import TLSConfig

    s = settings
    options: dict[str, Any] = {"target_host": s.temporal_target, "namespace": s.temporal_namespace}
    if (s.temporal_tls_cert is None) != (s.temporal_tls_key is None):
        raise ValueError(
            "BSS_TEMPORAL_TLS_CERT and BSS_TEMPORAL_TLS_KEY go together (mutual TLS); set both or neither."
        )

    def pem(path: Path | None, name: str) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ValueError(f"{name}={path} cannot be read: {exc.strerror or exc}.") from None

    files = {
        "server_root_ca_cert": pem(s.temporal_tls_ca, "BSS_TEMPORAL_TLS_CA"),
        "client_cert": pem(s.temporal_tls_cert, "BSS_TEMPORAL_TLS_CERT"),
        "client_private_key": pem(s.temporal_tls_key, "BSS_TEMPORAL_TLS_KEY"),
    }
    if any(files.values()) or s.temporal_tls_server_name:
        options["tls"] = TLSConfig(domain=s.temporal_tls_server_name, **files)
    elif s.temporal_tls or s.temporal_api_key is not None:
        options["tls"] = True
    if s.temporal_api_key is not None:
        options["api_key"] = s.temporal_api_key.get_secret_value()
    return options


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    db: SessionFactory
    _temporal: Client | None = None
    _temporal_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, *, pool_size: int = 10, pre_ping: bool = True) -> Runtime:
        if settings.test_clock:
            # Every process of a test stack (API, worker) builds its Runtime here: all of them then
            # read business time from the one file `bss clock` moves.
            from core.clock import clock

            clock.use_file(settings.clock_file)
        engine = make_engine(settings.database_url, pool_size=pool_size, pre_ping=pre_ping)
        return cls(settings=settings, engine=engine, db=make_session_factory(engine))

    async def temporal(self) -> Client:
        """Connect on first use, so the API starts (and answers /health) while Temporal is down."""
        async with self._temporal_lock:
            if self._temporal is None:
                from temporalio.client import Client

                from core.telemetry import temporal_interceptors

                # The worker built on this client inherits the tracing interceptor too.
                self._temporal = await Client.connect(
                    **temporal_connect_options(self.settings), interceptors=temporal_interceptors()
                )
            return self._temporal

    def use_temporal(self, client: Client) -> None:
        self._temporal = client

    async def close(self) -> None:
        await self.engine.dispose()

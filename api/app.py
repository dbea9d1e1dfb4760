"""The TMF API: one FastAPI app, one router per TMF API, thin over the operations layer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api import errors
from api.auth import identify, load_tokens
from core.context import RequestContext
from core.settings import Settings, get_settings
from ops.runtime import Runtime

CHANNELS = {"cli", "api", "llm", "portal-self-serve", "portal-csr", "portal-chat", "scenario", "system"}


async def authenticate(request: Request) -> None:
    identity = identify(request.app.state.tokens, request.headers.get("authorization"))
    if identity is None:
        from core.errors import DomainError

        err = DomainError(
            "auth.unauthorized", "A valid bearer token is required (Authorization: Bearer <token>)."
        )
        err.status, err.kind = 401, "UNAUTHORIZED"
        raise err
    channel = request.headers.get("x-bss-channel", "api")
    request.state.ctx = RequestContext(
        actor=request.headers.get("x-bss-actor", identity)[:200],
        channel=channel if channel in CHANNELS else "api",
        service_identity=identity,
        trace_id=_trace_id(),
    )


def _trace_id() -> str | None:
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover
        return None
    span = trace.get_current_span().get_span_context()
    return format(span.trace_id, "032x") if span.is_valid else None


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = runtime or Runtime.create(settings)
        app.state.tokens = load_tokens(settings)
        yield
        if runtime is None:
            await app.state.runtime.close()

    app = FastAPI(
        title="BSS on Temporal — TMF API",
        version="0.1.0",
        description="TM Forum Open API v4 facades over a prepaid eSIM MVNO whose long-running flows are Temporal workflows.",
        lifespan=lifespan,
    )
    errors.install(app)
    from core import telemetry

    telemetry.setup("bss-api", settings)
    telemetry.instrument_app(app)

    @app.get("/health", tags=["health"])
    async def health(request: Request) -> JSONResponse:
        rt: Runtime = request.app.state.runtime
        db, temporal = await asyncio.gather(_db_health(rt), _temporal_health(rt))
        ok = db == "up" and temporal == "up"
        return JSONResponse(
            {"status": "up" if ok else "degraded", "database": db, "temporal": temporal},
            status_code=200 if ok else 503,
        )

    from api.routers import ROUTERS

    for router in ROUTERS:
        app.include_router(router, dependencies=[Depends(authenticate)])
    return app


async def _db_health(rt: Runtime) -> str:
    try:
        async with rt.engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), 2)
        return "up"
    except Exception as exc:  # the health answer is the point, whatever broke
        return f"down: {type(exc).__name__}"


async def _temporal_health(rt: Runtime) -> str:
    try:
        client = await asyncio.wait_for(rt.temporal(), 3)
        await asyncio.wait_for(client.service_client.check_health(), 2)
        return "up"
    except Exception as exc:
        return f"down: {type(exc).__name__}"


def app_from_env() -> FastAPI:
    """Entry point for uvicorn --factory."""
    return create_app()

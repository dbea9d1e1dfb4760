"""The TMF API: one FastAPI app, one router per TMF API, thin over the operations layer."""

from __future__ import annotations

import asyncio
import gc
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api import errors
from api.auth import TokenRegistry
from api.permissions import Routes
from core.context import RequestContext
from core.settings import Settings, get_settings
from domains.access.rules import Role
from ops.runtime import Runtime

CHANNELS = {"cli", "api", "llm", "portal-self-serve", "portal-csr", "portal-chat", "scenario", "system"}
# Served to anyone: the health answer and the API's own documentation.
PUBLIC = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
MAX_ACTOR_LENGTH = 200
ACTOR = re.compile(r"[^\x00-\x1f\x7f]+")


class AccessControl:
    """Authenticates every request but PUBLIC and checks its role against api/permissions.py before
    the router reads the body, then stamps the RequestContext the operations and the audit log use.

    The actor is the token's identity; only a `channel` token (a portal, the agent) may name the
    person it acts for in X-BSS-Actor, and any other token sending that header is refused.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC:
            await self.app(scope, receive, send)
            return
        refusal, ctx = await self._admit(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})["ctx"] = ctx
        await self.app(scope, receive, send)

    async def _admit(self, scope: Scope) -> tuple[JSONResponse | None, RequestContext | None]:
        app = scope["app"]
        headers = Headers(scope=scope)
        try:
            principal = await app.state.tokens.identify(headers.get("authorization"))
        except (TimeoutError, OSError, DBAPIError):
            return errors.error_response(
                503, "auth.unavailable", "Tokens cannot be checked right now; try again shortly."
            ), None
        if principal is None:
            return errors.error_response(
                401, "auth.unauthorized", "A valid bearer token is required (Authorization: Bearer <token>)."
            ), None
        scope.setdefault("state", {})["role"] = principal.role  # for the few finer checks (port-out)
        status = _routes(app).decide(principal.role, scope["method"], scope["path"])
        if status == 403:
            return errors.error_response(
                403,
                "auth.role.forbidden",
                f"The role {principal.role.value} of token {principal.name} may not {scope['method']} this resource.",
            ), None
        if status == 404:
            return errors.error_response(404, "resource.not_found", "Not Found"), None
        if status == 405:
            return errors.error_response(405, "method.not_allowed", "Method Not Allowed"), None
        actor = principal.name
        named = headers.get("x-bss-actor")
        if named is not None:
            if principal.role is not Role.CHANNEL:
                return errors.error_response(
                    403,
                    "auth.actor_header.forbidden",
                    "Only a channel token may name an actor (X-BSS-Actor); the audit log records this token's name.",
                ), None
            named = named.strip()
            if not named or len(named) > MAX_ACTOR_LENGTH or not ACTOR.fullmatch(named):
                return errors.error_response(
                    400,
                    "auth.actor_header.invalid",
                    f"X-BSS-Actor must be 1-{MAX_ACTOR_LENGTH} printable characters.",
                ), None
            actor = named
        channel = headers.get("x-bss-channel", "api")
        return None, RequestContext(
            actor=actor,
            channel=channel if channel in CHANNELS else "api",
            service_identity=principal.name,
            trace_id=_trace_id(),
        )


def _routes(app: FastAPI) -> Routes:
    routes = getattr(app.state, "routes", None)
    if routes is None:
        routes = app.state.routes = Routes(app.openapi())
        if getattr(app.state, "serving", False):
            # Everything built so far (the modules, the app, its OpenAPI schema) lives as long as the
            # process: out of the collector's sight, a collection no longer walks it.
            gc.freeze()
    return routes


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
        app.state.tokens = TokenRegistry(settings, app.state.runtime.db)
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
    app.add_middleware(AccessControl)  # added before telemetry's, so it runs inside the request's span
    from core import telemetry

    telemetry.setup("bss-api", settings)
    telemetry.instrument_app(app)

    # Polls that overlap (`bss up` and its supervisor poll at once) check the database one after
    # the other, on one pooled connection: each connection the pool opens stays open, a Postgres
    # backend of a few MiB for the life of the stack.
    db_checks = asyncio.Lock()

    async def db_health(rt: Runtime) -> str:
        async with db_checks:
            return await _db_health(rt)

    @app.get("/health", tags=["health"])
    async def health(request: Request) -> JSONResponse:
        rt: Runtime = request.app.state.runtime
        db, temporal = await asyncio.gather(db_health(rt), _temporal_health(rt))
        ok = db == "up" and temporal == "up"
        return JSONResponse(
            {"status": "up" if ok else "degraded", "database": db, "temporal": temporal},
            status_code=200 if ok else 503,
        )

    from api.routers import ROUTERS

    for router in ROUTERS:
        app.include_router(router)
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


# The API serving on its own (app_from_env): a young generation this large is collected tens of
# times less often while a bulk of usage is parsed and rated (every collection walks the records
# parsed so far, and a full one everything not frozen): with the freeze in _routes, a bulk event
# costs ~40 % less API CPU than at the default (700, 10, 10). Garbage without cycles is freed at
# once whatever the thresholds.
GC_THRESHOLDS = (20_000, 20, 10)


def app_from_env() -> FastAPI:
    """Entry point for uvicorn --factory."""
    gc.set_threshold(*GC_THRESHOLDS)
    app = create_app()
    app.state.serving = True
    return app

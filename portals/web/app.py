"""The foundation of both web doors (self-serve portal, operator cockpit): one call builds a
FastAPI app with server-side sessions, CSRF on every unsafe request, the shared layout and static
files (vendored htmx), security headers, and error pages instead of JSON or a 500.

    app, templates = create_web_app(Door("selfserve", "bss_portal", "BSS Mobile"), TEMPLATES)
    @app.get("/")
    async def home(request: Request):
        return render(request, "home.html", {...})

A door's templates extend `base.html` from portals/web/templates and put a form's CSRF token in
with `{{ csrf_field() }}`; htmx requests send it in the `X-CSRF-Token` header (set on <body>).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import DomainError
from core.settings import Settings, get_settings
from ops.runtime import Runtime
from portals.web.sessions import SessionMiddleware, ensure_session

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
TEMPLATES_DIR = WEB_DIR / "templates"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
log = logging.getLogger("bss.web")

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


@dataclass(frozen=True)
class Door:
    portal: str  # selfserve | cockpit: the sessions' `portal`
    cookie_name: str  # distinct per door: cookies do not tell ports apart
    title: str
    channel: str  # the RequestContext channel of everything done through this door


class CsrfRefused(Exception):
    pass


async def csrf_protect(request: Request) -> None:
    """Every unsafe request must carry the session's CSRF token (form field `csrf_token` or header
    `X-CSRF-Token`) and, when the browser names one, come from this origin; else 403."""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise CsrfRefused("cross-origin request")
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").split(";")[0].strip() in FORM_TYPES:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    session = request.state.web.session
    if session is None or not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise CsrfRefused("missing or wrong CSRF token")


async def form_data(request: Request) -> dict[str, str]:
    """The posted form's text fields (the CSRF check has read and cached it already)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    state = getattr(request.state, "web", None)
    session = state.session if state is not None else None
    ctx = {
        "door": request.app.state.door,
        "session": session,
        "csrf_token": session.csrf_token if session else "",
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


async def render_form_page(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    """A page with a form: it needs a session (for the CSRF token) even before login."""
    await ensure_session(request)
    return render(request, name, context, status_code)


def _csrf_field_factory():
    @jinja2.pass_context
    def csrf_field(ctx: Any) -> Markup:
        token = ctx.get("csrf_token") or ""
        return Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(token))

    return csrf_field


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _error_page(request: Request, status: int, title: str, message: str, code: str | None = None) -> Response:
    if "text/html" not in request.headers.get("accept", "text/html") and "*/*" not in request.headers.get(
        "accept", ""
    ):
        return JSONResponse({"status": status, "code": code, "message": message}, status_code=status)
    try:
        return render(request, "error.html", {"title": title, "message": message, "code": code}, status)
    except Exception:  # noqa: BLE001 - the error page itself must not fail
        log.exception("error page failed")
        return HTMLResponse(f"<h1>{escape(title)}</h1><p>{escape(message)}</p>", status_code=status)


TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    422: "That did not work",
    429: "Too many attempts",
    503: "Unavailable",
}


def install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        return _error_page(
            request,
            403,
            "Form expired",
            "This form was not accepted; go back, reload the page and try again.",
            "web.csrf.refused",
        )

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        status = getattr(exc, "status", 422)
        return _error_page(request, status, TITLES.get(status, "That did not work"), exc.message, exc.code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = (
            exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else "There is no such page."
        )
        return _error_page(request, exc.status_code, TITLES.get(exc.status_code, "Error"), message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return _error_page(
            request, 400, TITLES[400], "The request was not understood.", "web.request.invalid"
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        from sqlalchemy.exc import DBAPIError

        from ops.orders import TemporalUnavailable

        if isinstance(exc, TemporalUnavailable | DBAPIError | OSError | TimeoutError):
            log.warning("%s %s: %s", request.method, request.url.path, exc)
            return _error_page(
                request, 503, TITLES[503], "The service is busy or down; try again in a moment."
            )
        log.exception("%s %s failed", request.method, request.url.path)
        return _error_page(request, 500, "Something went wrong", "That did not work; try again later.")


def create_web_app(
    door: Door,
    templates_dir: Path,
    settings: Settings | None = None,
    runtime: Runtime | None = None,
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = runtime or Runtime.create(settings, pool_size=5)
        yield
        if runtime is None:
            await app.state.runtime.close()

    app = FastAPI(
        title=door.title,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(csrf_protect)],
    )
    app.state.door = door
    app.state.settings = settings
    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(str(templates_dir)), jinja2.FileSystemLoader(str(TEMPLATES_DIR))]
    )
    env = jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape(default=True))
    env.globals["csrf_field"] = _csrf_field_factory()
    app.state.templates = Jinja2Templates(env=env)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SessionMiddleware, portal=door.portal, cookie_name=door.cookie_name)
    app.add_middleware(SecurityHeaders)
    install_error_pages(app)

    @app.get("/health", include_in_schema=False)
    async def health(request: Request) -> JSONResponse:
        from sqlalchemy import text

        try:
            async with request.app.state.runtime.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return JSONResponse({"status": "up", "database": "up"})
        except Exception as exc:  # noqa: BLE001 - the health answer is the point
            return JSONResponse(
                {"status": "degraded", "database": f"down: {type(exc).__name__}"}, status_code=503
            )

    return app

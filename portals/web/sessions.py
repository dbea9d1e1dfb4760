"""Server-side sessions for the web doors, kept in Postgres (schema `web`, domains/web).

`SessionMiddleware` (pure ASGI) reads the door's cookie, loads the live session into
`request.state.web` (a `WebState`) and writes the cookie the handler asked for on the way out.
The cookie is an opaque random token (the row is keyed by its SHA-256), `HttpOnly`,
`SameSite=Lax`, `Path=/`, and `Secure` when the request came over TLS. Sessions are created only
when a page needs one (a form's CSRF token, a login): the landing page sets no cookie.
A login always starts a new session (a fixated cookie is worth nothing); logout deletes the row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.db import transaction


def _wall_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Session:
    """A detached copy of the session row: what a handler and a template read."""

    id: str
    subject: str | None
    email: str | None
    csrf_token: str
    data: dict[str, Any] = field(default_factory=dict)
    authenticated_at: datetime | None = None

    @classmethod
    def of(cls, row: Any) -> Session:
        return cls(row.id, row.subject, row.email, row.csrf_token, dict(row.data or {}), row.authenticated_at)


@dataclass
class WebState:
    portal: str
    cookie_name: str
    secure: bool
    session: Session | None = None
    set_token: str | None = None  # a new cookie to send
    clear_cookie: bool = False

    def cookie_header(self) -> str | None:
        if self.set_token is not None:
            value = f"{self.cookie_name}={self.set_token}; Path=/; HttpOnly; SameSite=Lax"
        elif self.clear_cookie:
            value = f"{self.cookie_name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        else:
            return None
        return value + ("; Secure" if self.secure else "")


def web_state(request: Request) -> WebState:
    return request.state.web


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def ensure_session(request: Request) -> Session:
    """The visitor's session, created (anonymous) when there is none yet."""
    from domains.web import services as web

    state = web_state(request)
    if state.session is None:
        async with transaction(request.app.state.runtime.db) as s:
            token, row = await web.new_session(s, state.portal, _wall_now(), ip=client_ip(request))
            state.session = Session.of(row)
        state.set_token, state.clear_cookie = token, False
    return state.session


async def start_login(
    request: Request, subject: str | None, email: str | None = None, data: dict[str, Any] | None = None
) -> Session:
    """A new signed-in session for `subject`, replacing the visitor's (anonymous) one. Without a
    subject but with a verified `email` it is a prospect's session (a new customer signing up): it
    reaches only what needs no customer until `bind_subject`. `data` carries values over."""
    from domains.web import services as web

    state = web_state(request)
    now = _wall_now()
    async with transaction(request.app.state.runtime.db) as s:
        if state.session is not None:
            await web.end_session(s, state.session.id)
        await web.prune_sessions(s, now)  # expired sessions of anybody go at each login
        token, row = await web.new_session(
            s, state.portal, now, subject=subject, email=email, ip=client_ip(request), data=data
        )
        if subject is None and email:
            row.authenticated_at = now  # the email is verified
            s.add(row)
        state.session = Session.of(row)
    state.set_token, state.clear_cookie = token, False
    return state.session


async def bind_subject(request: Request, subject: str) -> Session:
    """A prospect's session becomes the signed-in session of the customer just created for its
    verified email (same session, same CSRF token: the funnel goes on where it was)."""
    from domains.web.models import WebSession

    state = web_state(request)
    session = state.session
    if session is None or session.email is None:
        raise RuntimeError("only a session with a verified email can be bound to a customer")
    async with transaction(request.app.state.runtime.db) as s:
        row = await s.get(WebSession, session.id)
        if row is not None:
            row.subject = subject
            s.add(row)
    session.subject = subject
    return session


async def end(request: Request) -> None:
    from domains.web import services as web

    state = web_state(request)
    if state.session is not None:
        async with transaction(request.app.state.runtime.db) as s:
            await web.end_session(s, state.session.id)
    state.session, state.set_token, state.clear_cookie = None, None, True


async def update_data(request: Request, **values: Any) -> Session:
    """Keep small values (the address a code went to) in the session; None removes a key."""
    from domains.web.models import WebSession

    session = await ensure_session(request)
    for key, value in values.items():
        if value is None:
            session.data.pop(key, None)
        else:
            session.data[key] = value
    async with transaction(request.app.state.runtime.db) as s:
        row = await s.get(WebSession, session.id)
        if row is not None:
            row.data = dict(session.data)
            s.add(row)
    return session


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no session
                return None
            if name in jar:
                return jar[name].value
    return None


class SessionMiddleware:
    def __init__(self, app: ASGIApp, portal: str, cookie_name: str) -> None:
        self.app = app
        self.portal = portal
        self.cookie_name = cookie_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/") or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        from domains.web import services as web

        secure = scope.get("scheme") == "https"
        state = WebState(self.portal, self.cookie_name, secure)
        token = _cookie(scope, self.cookie_name)
        if token:
            async with transaction(scope["app"].state.runtime.db) as s:
                row = await web.load_session(s, self.portal, token, _wall_now())
                if row is not None:
                    state.session = Session.of(row)
            if state.session is None:
                state.clear_cookie = True  # an unknown or expired cookie goes
        scope.setdefault("state", {})["web"] = state

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                header = state.cookie_header()
                headers = MutableHeaders(scope=message)
                if header is not None:
                    headers.append("set-cookie", header)
                if state.session is not None or header is not None:
                    headers["cache-control"] = "no-store"  # a signed-in page is never cached
            await send(message)

        await self.app(scope, receive, send_with_cookie)

"""Every error leaves the API as a TMF Error body; no request may end in a bare 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import DomainError

log = logging.getLogger("bss.api")

KINDS = {
    400: "INVALID_INPUT",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "POLICY_VIOLATION",
}


def error_body(
    status: int, reason: str, message: str, code: str | None = None, **context: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@type": "Error",
        "code": code or KINDS.get(status, "ERROR"),
        "reason": reason,
        "message": message,
        "status": str(status),
        "referenceError": f"urn:bss:rule:{reason}",
    }
    if context:
        body["context"] = context
    return body


def error_response(status: int, reason: str, message: str, **context: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(status, reason, message, **context), status_code=status, headers=headers)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.status, exc.code, exc.message, code=exc.kind, **_jsonable(exc.context)),
            status_code=exc.status,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        message = "; ".join(problems[:5]) or "The request is not valid."
        return error_response(400, "request.invalid", message, errors=_jsonable(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        reason = {404: "resource.not_found", 405: "method.not_allowed", 401: "auth.unauthorized"}.get(
            exc.status_code, "http.error"
        )
        return error_response(exc.status_code, reason, str(exc.detail))

    @app.exception_handler(DBAPIError)
    async def database_error(_: Request, exc: DBAPIError) -> JSONResponse:
        # Input that passed validation but that Postgres cannot store (a NUL byte, a number out of
        # range) is still the client's error; the transaction was rolled back, nothing changed.
        state = _sqlstate(exc)
        if state.startswith("22"):
            return error_response(
                400,
                "request.invalid_value",
                "A value in the request cannot be stored (for example a NUL character or a number out of range).",
            )
        if state.startswith("23"):
            return error_response(
                409, "request.conflict", "The request conflicts with existing data; nothing was changed."
            )
        log.exception("database error")
        return error_response(
            503,
            "database.unavailable",
            "The database could not complete the request; nothing was changed. Try again shortly.",
        )

    @app.exception_handler(OSError)
    async def backend_unreachable(_: Request, exc: OSError) -> JSONResponse:
        # A refused or dropped connection to Postgres (or Temporal) while it restarts: the
        # transaction never committed, and the client should simply try again.
        log.warning("backend unreachable: %s", exc)
        return error_response(
            503,
            "service.unavailable",
            "The database or Temporal could not be reached; nothing was changed. Try again shortly.",
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        if _is_connection_error(exc):
            return await backend_unreachable(_, OSError(str(exc)))
        log.exception("unhandled error")
        return error_response(
            500, "internal.error", "Something went wrong on our side; the request changed nothing."
        )


def _sqlstate(exc: DBAPIError) -> str:
    for err in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if code:
            return str(code)
    return ""


def _is_connection_error(exc: BaseException) -> bool:
    """asyncpg's own errors while a connection is made or lost (the server starting up or shutting
    down) are not wrapped by SQLAlchemy."""
    from asyncpg.exceptions import (
        CannotConnectNowError,
        ConnectionDoesNotExistError,
        InterfaceError,
        PostgresConnectionError,
    )

    connection_errors = (
        CannotConnectNowError,
        ConnectionDoesNotExistError,
        InterfaceError,
        PostgresConnectionError,
    )
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (OSError, *connection_errors)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False

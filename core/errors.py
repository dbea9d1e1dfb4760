"""Domain errors. Each carries a stable rule code that every door (API, CLI, agent) shows as is."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 422
    kind = "POLICY_VIOLATION"

    def __init__(self, code: str, message: str, **context: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class PolicyViolation(DomainError):
    """A business rule refused the request (HTTP 422)."""


class NotFound(DomainError):
    status = 404
    kind = "NOT_FOUND"


class InvalidInput(DomainError):
    status = 400
    kind = "INVALID_INPUT"


class Conflict(DomainError):
    """The request contradicts what is stored under the same key (HTTP 409); nothing changed."""

    status = 409
    kind = "CONFLICT"


class Forbidden(DomainError):
    status = 403
    kind = "FORBIDDEN"

"""What every activity shares: a transaction per call, and domain errors mapped for Temporal.

A domain rule violation will not change on retry, so it becomes a non-retryable ApplicationError
whose `type` is the rule code; the workflow reads the code and the message from it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.exceptions import ApplicationError

from core.context import RequestContext
from core.errors import DomainError

T = TypeVar("T")

# Activities act for the system, through the workflow that called them.
WORKFLOW_CTX = RequestContext(actor="workflow", channel="system", service_identity="worker")


def ctx_for(workflow_id: str | None) -> RequestContext:
    from core.telemetry import current_trace_id

    return RequestContext(
        actor=f"workflow:{workflow_id}" if workflow_id else "workflow",
        channel="system",
        service_identity="worker",
        trace_id=current_trace_id(),
    )


def domain_errors(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except DomainError as exc:
            # Not chained: Temporal would ship the domain exception as a cause typed by its class
            # name, and the rule code must be what the workflow and the API read.
            raise ApplicationError(exc.message, exc.context, type=exc.code, non_retryable=True) from None

    return wrapper


def _chain(err: BaseException):
    """The failure and its causes, outermost first (Temporal failures nest: child → activity → app)."""
    seen: BaseException | None = err
    while seen is not None:
        yield seen
        seen = getattr(seen, "cause", None) or seen.__cause__


def rule_code(err: BaseException) -> str | None:
    """The innermost rule code carried by an activity or child-workflow failure, if any."""
    codes = [c.type for c in _chain(err) if isinstance(c, ApplicationError) and c.type]
    return codes[-1] if codes else None


def reason_of(err: BaseException) -> str:
    """The innermost message: what a person should read in the order's note."""
    messages = [c.message for c in _chain(err) if isinstance(c, ApplicationError) and c.message]
    return messages[-1] if messages else str(err)

"""What every activity shares: a transaction per call, and domain errors mapped for Temporal.

A domain rule violation will not change on retry, so it becomes a non-retryable ApplicationError
whose `type` is the rule code; the workflow reads the code and the message from it.

Other errors are sorted by `classify`: a broken connection, a restarting Postgres or an unreachable
element is worth retrying for as long as it takes; an integrity or data error, or a bug (TypeError,
KeyError, AttributeError), fails the same way every time, so it is non-retryable and the workflow
goes into its compensation at once instead of retrying a local activity forever. A card gateway
that did not answer (domains.payment.gateway.GatewayError) is transient: a RETRYABLE ApplicationError
typed by its code (`payment.gateway_unavailable`, …), retried with the same idempotency key.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.exceptions import ApplicationError

from core.context import RequestContext
from core.errors import DomainError
from domains.payment.gateway import GatewayError

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


# Rule codes of the errors that retrying cannot fix.
DB_INTEGRITY_ERROR = "activity.database.integrity_error"
PROGRAMMING_ERROR = "activity.programming_error"


def classify(exc: BaseException) -> ApplicationError | None:
    """The non-retryable ApplicationError for an error that fails the same way on every retry;
    None for one worth retrying (connection lost, Postgres restarting, a timeout, anything else)."""
    from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError

    if isinstance(exc, (IntegrityError, DataError, ProgrammingError)):
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0][:500]
        return ApplicationError(
            f"The database refused the step ({type(exc).__name__}): {detail}",
            type=DB_INTEGRITY_ERROR,
            non_retryable=True,
        )
    if isinstance(exc, (TypeError, KeyError, AttributeError)):
        return ApplicationError(
            f"The step hit a bug ({type(exc).__name__}: {str(exc)[:300]}); retrying cannot fix it.",
            type=PROGRAMMING_ERROR,
            non_retryable=True,
        )
    return None


def domain_errors(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except DomainError as exc:
            # Not chained: Temporal would ship the domain exception as a cause typed by its class
            # name, and the rule code must be what the workflow and the API read.
            raise ApplicationError(exc.message, exc.context, type=exc.code, non_retryable=True) from None
        except GatewayError as exc:
            raise ApplicationError(str(exc) or exc.code, type=exc.code, non_retryable=False) from None

        except ApplicationError:
            raise
        except Exception as exc:
            fatal = classify(exc)
            if fatal is None:
                raise
            raise fatal from None

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

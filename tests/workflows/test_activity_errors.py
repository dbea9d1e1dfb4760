"""Activities sort their errors: what a retry can fix is retried, what it cannot fails fast."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError
from temporalio.exceptions import ApplicationError

from activities.base import DB_INTEGRITY_ERROR, PROGRAMMING_ERROR, classify, domain_errors


@pytest.mark.parametrize(
    "exc, code",
    [
        (IntegrityError("insert", {}, Exception("duplicate key")), DB_INTEGRITY_ERROR),
        (DataError("insert", {}, Exception("value too long")), DB_INTEGRITY_ERROR),
        (ProgrammingError("select", {}, Exception("no such column")), DB_INTEGRITY_ERROR),
        (TypeError("missing argument"), PROGRAMMING_ERROR),
        (KeyError("iccid"), PROGRAMMING_ERROR),
        (AttributeError("no attribute"), PROGRAMMING_ERROR),
    ],
)
async def test_errors_no_retry_can_fix_fail_fast(exc, code):
    @domain_errors
    async def step():
        raise exc

    with pytest.raises(ApplicationError) as err:
        await step()
    assert err.value.type == code and err.value.non_retryable


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("connect", {}, Exception("connection refused")),
        ConnectionResetError("reset by peer"),
        OSError("network unreachable"),
        TimeoutError(),
    ],
)
async def test_connection_errors_stay_retryable(exc):
    assert classify(exc) is None

    @domain_errors
    async def step():
        raise exc

    with pytest.raises(type(exc)):
        await step()

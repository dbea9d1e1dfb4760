"""Number porting (MNP): the port request's state machine and its pure rules (no I/O).

A port-in brings a number from another operator (the donor) to a new line of ours or to an
existing line; a port-out lets one of our numbers go to another operator (the recipient). Each
request is checked with the number-portability clearinghouse (port-in), approved or rejected by an
operator, and carried out on the requested port date.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from core.errors import InvalidInput, PolicyViolation
from core.statemachine import StateMachine

PORT_IN, PORT_OUT = "port_in", "port_out"
DIRECTIONS = (PORT_IN, PORT_OUT)

ACKNOWLEDGED, VALIDATED, APPROVED = "acknowledged", "validated", "approved"
COMPLETED, REJECTED, FAILED = "completed", "rejected", "failed"
STATES = (ACKNOWLEDGED, VALIDATED, APPROVED, COMPLETED, REJECTED, FAILED)
# One live request per number: a request in one of these states holds it.
LIVE_STATES = (ACKNOWLEDGED, VALIDATED, APPROVED)
FINAL_STATES = (COMPLETED, REJECTED, FAILED)

PORT_REQUEST = StateMachine(
    "port_request",
    [
        ("validate", ACKNOWLEDGED, VALIDATED),
        ("approve", VALIDATED, APPROVED),
        ("complete", APPROVED, COMPLETED),
        # The clearinghouse refuses a port-in, or an operator refuses the request before it is done.
        ("reject", (ACKNOWLEDGED, VALIDATED, APPROVED), REJECTED),
        # It could not be carried out: the window passed without an approval, or the move failed.
        ("fail", (ACKNOWLEDGED, VALIDATED, APPROVED), FAILED),
    ],
)

# What the clearinghouse may answer instead of a yes (simulators/clearinghouse.py).
CLEARINGHOUSE_REJECTIONS = ("wrong_account", "number_locked", "donor_refuses")

# A number is 8 digits, as an order's preferred number is (Singapore numbering).
MSISDN_RE = re.compile(r"^[0-9]{8}$")
CARRIER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._&-]{0,63}$")
MAX_DAYS_AHEAD = 90
# After the requested port date, an approval may still come this long; then the request fails.
APPROVAL_GRACE = timedelta(days=2)
MAX_REASON = 200


def check_msisdn(msisdn: str) -> None:
    if not isinstance(msisdn, str) or not MSISDN_RE.match(msisdn):
        raise InvalidInput(
            "port.request.msisdn_invalid", f"A number to port is 8 digits, like 91234567; got {msisdn!r}."
        )


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise InvalidInput(
            "port.request.direction_invalid", f"direction is port_in or port_out; got {direction!r}."
        )


def check_carrier(carrier: str | None, field: str) -> str:
    value = (carrier or "").strip()
    if not CARRIER_RE.match(value):
        raise InvalidInput(
            "port.request.carrier_invalid",
            f"{field} names the other operator (1 to 64 letters, digits, spaces, . _ & -).",
            field=field,
        )
    return value


def port_instant(requested: date | datetime | str) -> datetime:
    """The moment the number moves: a date means its start (UTC); a time is kept as given."""
    if isinstance(requested, str):
        try:
            requested = (
                datetime.fromisoformat(requested) if len(requested) > 10 else date.fromisoformat(requested)
            )
        except ValueError:
            raise InvalidInput(
                "port.request.date_invalid",
                f"requestedPortDate is a date like 2026-12-24; got {requested[:40]!r}.",
            ) from None
    if isinstance(requested, datetime):
        return requested if requested.tzinfo else requested.replace(tzinfo=UTC)
    return datetime.combine(requested, time(), tzinfo=UTC)


def check_port_date(requested: datetime, now: datetime) -> None:
    """Today (business time) or later, and at most 90 days ahead."""
    if requested.date() < now.date() or requested > now + timedelta(days=MAX_DAYS_AHEAD):
        raise PolicyViolation(
            "port.request.date_invalid",
            f"The port date is today or a day up to {MAX_DAYS_AHEAD} days ahead; got {requested.date()}.",
            requested_port_date=requested.isoformat(),
        )


def check_target(
    direction: str, customer_id: str | None, offering_id: str | None, subscription_id: str | None
) -> None:
    """A port-in goes to a new line (customer + plan) or an existing one (subscription), not both."""
    if direction == PORT_OUT:
        if offering_id is not None:
            raise InvalidInput("port.request.target_invalid", "A port-out names no plan (offeringId).")
        return
    new_line = customer_id is not None and offering_id is not None
    if subscription_id is not None and offering_id is not None:
        raise InvalidInput(
            "port.request.target_invalid",
            "A port-in goes to a new line (customerId + offeringId) or to an existing one (subscriptionId), not both.",
        )
    if subscription_id is None and not new_line:
        raise InvalidInput(
            "port.request.target_invalid",
            "A port-in needs customerId and offeringId (a new line) or subscriptionId (an existing line).",
        )


def check_reason(reason: str | None) -> str:
    value = (reason or "").strip()
    if not value:
        raise InvalidInput("port.reject.reason_required", "A rejection needs a reason.")
    return value[:MAX_REASON]

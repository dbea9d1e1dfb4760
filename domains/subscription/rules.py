"""The subscription lifecycle (inventory §4.1) and balance arithmetic."""

from __future__ import annotations

from datetime import timedelta

from core.statemachine import StateMachine

PENDING = "pending"
ACTIVE = "active"
BLOCKED = "blocked"
TERMINATED = "terminated"

subscription_lifecycle = StateMachine(
    "subscription",
    [
        ("activate", PENDING, ACTIVE),
        ("fail_activate", PENDING, TERMINATED),
        ("exhaust", ACTIVE, BLOCKED),
        ("top_up", (ACTIVE, BLOCKED), ACTIVE),
        # The reference has no renew out of blocked, so a blocked line could never be renewed
        # (and its manual renew charged the card first): a paid renewal unblocks the line.
        ("renew", (ACTIVE, BLOCKED), ACTIVE),
        ("renew_fail", ACTIVE, BLOCKED),
        ("terminate", (ACTIVE, BLOCKED), TERMINATED),
    ],
)

PERIOD = timedelta(days=30)
UNLIMITED = -1
# The allowance whose exhaustion blocks the line; roaming never does.
PRIMARY_ALLOWANCE = "data"
ALLOWANCE_ORDER = ("data", "voice", "sms", "data_roaming")


def remaining(total: int, consumed: int) -> int:
    """-1 stays unlimited; a bucket never shows less than zero left."""
    if total == UNLIMITED:
        return UNLIMITED
    return max(total - consumed, 0)


def allowance_rank(allowance_type: str) -> int:
    try:
        return ALLOWANCE_ORDER.index(allowance_type)
    except ValueError:
        return len(ALLOWANCE_ORDER)

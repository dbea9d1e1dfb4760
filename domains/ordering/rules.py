"""The product order lifecycle (inventory §4.2) and the pure checks on an order request."""

from __future__ import annotations

import re

from core.errors import InvalidInput
from core.statemachine import StateMachine

ACKNOWLEDGED = "acknowledged"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})

TRANSITION_CODE = "order.transition.invalid"

order_lifecycle = StateMachine(
    "product_order",
    [
        ("start", ACKNOWLEDGED, IN_PROGRESS),
        ("complete", IN_PROGRESS, COMPLETED),
        ("fail", IN_PROGRESS, FAILED),
        ("cancel", (ACKNOWLEDGED, IN_PROGRESS), CANCELLED),
    ],
)

# trigger -> the state it leads to, whatever the source: lets a service see a repeated call.
TARGET = {"start": IN_PROGRESS, "complete": COMPLETED, "fail": FAILED, "cancel": CANCELLED}

_MSISDN = re.compile(r"\d{8}")
PROMO_CODE_MAX = 64
IDEMPOTENCY_KEY_MAX = 128


def check_msisdn_preference(msisdn: str | None) -> None:
    if msisdn is not None and not _MSISDN.fullmatch(msisdn):
        raise InvalidInput(
            "order.create.invalid_msisdn_preference",
            f"A preferred number is 8 digits, like 90000042; got {msisdn!r}.",
        )


def check_promo_code(code: str | None) -> None:
    if code is not None and not (0 < len(code) <= PROMO_CODE_MAX):
        raise InvalidInput(
            "order.create.invalid_promo_code", f"A promo code has 1 to {PROMO_CODE_MAX} characters."
        )


def check_idempotency_key(key: str | None) -> None:
    if key is not None and not (0 < len(key) <= IDEMPOTENCY_KEY_MAX):
        raise InvalidInput(
            "order.create.invalid_idempotency_key",
            f"An idempotency key has 1 to {IDEMPOTENCY_KEY_MAX} characters.",
        )

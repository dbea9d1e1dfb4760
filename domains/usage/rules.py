"""Mediation: validate a usage record and bring its quantity to an exact integer unit.

Pure functions; the rule codes are the reference's (inventory §5, "Mediation and rating").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import InvalidInput, PolicyViolation

USAGE_TYPES = ("data", "voice", "sms")
# The reference also knows voice as `voice_minutes`.
TYPE_ALIASES = {"voice_minutes": "voice"}

# usage type -> accepted unit -> fine units per unit. Fine units are exact integers:
# data in KB (1 MB = 1024 KB, as the catalogue's 5 GB = 5,120 MB), voice in seconds, SMS a count.
UNITS: dict[str, dict[str, int]] = {
    "data": {"KB": 1, "MB": 1024, "GB": 1024 * 1024},
    "voice": {"sec": 1, "min": 60},
    "sms": {"count": 1},
}
FINE_UNIT = {"data": "KB", "voice": "sec", "sms": "count"}
# Spellings people and switches use, folded to the canonical unit.
UNIT_SPELLINGS = {
    "kb": "KB",
    "mb": "MB",
    "gb": "GB",
    "s": "sec",
    "sec": "sec",
    "secs": "sec",
    "second": "sec",
    "seconds": "sec",
    "min": "min",
    "mins": "min",
    "minute": "min",
    "minutes": "min",
    "count": "count",
    "sms": "count",
}
# A unit needs no saying for an SMS.
DEFAULT_UNIT = {"sms": "count"}
# One event larger than this (about 1 PB of data, or 31,000 years of talk) is a broken record.
MAX_FINE_QUANTITY = 10**12
RESERVED_ID_PREFIX = "UE-"
# A plausible usageDate (else a 400, usage.record.usage_date_*): not later than an hour ahead of
# business time (switch clocks drift, a session is stamped when it closes), not older than 90 days
# (past the mediation window a record is stale or replayed by mistake), and not before its line
# existed (rating checks that one, with USAGE_BEFORE_LINE_SLACK for the activation moment).
MAX_USAGE_DATE_AHEAD = timedelta(hours=1)
MAX_USAGE_DATE_AGE = timedelta(days=90)
USAGE_BEFORE_LINE_SLACK = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class RawUsage:
    """A usage record as a switch or a client sent it, before mediation."""

    index: int
    id: str | None
    usage_type: str
    msisdn: Any
    quantity: Any
    unit: Any
    roaming: Any
    usage_date: datetime | None


@dataclass(frozen=True, slots=True)
class MediatedUsage:
    """A valid record: canonical type, quantity in fine units, time in UTC."""

    index: int
    id: str | None
    msisdn: str
    usage_type: str
    quantity: int
    original_quantity: Decimal
    original_unit: str
    roaming: bool
    usage_date: datetime
    # False: the record carried no usageDate and was stamped with the time it was rated.
    dated: bool = True

    @property
    def exact_quantity(self) -> Decimal:
        """The quantity in fine units before rounding up: what two sendings must agree on."""
        return self.original_quantity * UNITS[self.usage_type][self.original_unit]


def mediate(raw: RawUsage, now: datetime) -> MediatedUsage:
    """Validate one record; raises the rule that refuses it (422 policy, 400 malformed)."""
    if raw.id is not None and raw.id.startswith(RESERVED_ID_PREFIX):
        raise InvalidInput(
            "usage.record.reserved_id",
            f"Event ids starting with {RESERVED_ID_PREFIX} are given by the BSS; send your own id or none.",
            id=raw.id,
        )
    msisdn = _msisdn(raw.msisdn)
    usage_type = TYPE_ALIASES.get(raw.usage_type, raw.usage_type)
    if usage_type not in USAGE_TYPES:
        raise PolicyViolation(
            "usage.record.valid_event_type",
            f"Usage type must be one of {', '.join(USAGE_TYPES)}; got {raw.usage_type!r}.",
            usageType=raw.usage_type,
        )
    quantity = _quantity(raw.quantity)
    if quantity <= 0:
        raise PolicyViolation(
            "usage.record.positive_quantity",
            f"Quantity must be positive; got {quantity}.",
            quantity=str(quantity),
        )
    unit = _unit(usage_type, raw.unit)
    fine = quantity * UNITS[usage_type][unit]
    if fine > MAX_FINE_QUANTITY:
        raise InvalidInput(
            "usage.record.quantity_out_of_range",
            f"{quantity} {unit} is more than one usage record can hold.",
            quantity=str(quantity),
        )
    return MediatedUsage(
        index=raw.index,
        id=raw.id,
        msisdn=msisdn,
        usage_type=usage_type,
        # Part of a KB or a second counts as a whole one, as networks round partial units up.
        quantity=math.ceil(fine),
        original_quantity=quantity,
        original_unit=unit,
        roaming=_flag(raw.roaming),
        usage_date=_usage_date(raw.usage_date, now) if raw.usage_date is not None else now,
        dated=raw.usage_date is not None,
    )


def _usage_date(value: datetime, now: datetime) -> datetime:
    at = _utc(value)
    if at > now + MAX_USAGE_DATE_AHEAD:
        raise InvalidInput(
            "usage.record.usage_date_in_future",
            f"usageDate {at.isoformat()} is in the future; a usage record says when usage happened.",
            usageDate=at.isoformat(),
        )
    if at < now - MAX_USAGE_DATE_AGE:
        raise InvalidInput(
            "usage.record.usage_date_too_old",
            f"usageDate {at.isoformat()} is more than {MAX_USAGE_DATE_AGE.days} days old; "
            "such a record is no longer rated.",
            usageDate=at.isoformat(),
        )
    return at


def parse_quantity(text: str) -> tuple[Decimal, str | None]:
    """`500MB`, `1.5GB`, `3min`, `90sec`, `5` -> (amount, unit or None); for people typing."""
    stripped = text.strip()
    digits = stripped.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ").strip()
    suffix = stripped[len(digits) :].strip()
    try:
        amount = Decimal(digits)
    except InvalidOperation:
        raise InvalidInput(
            "usage.record.quantity_not_a_number", f"Cannot read a quantity in {text!r}."
        ) from None
    if not amount.is_finite():
        raise InvalidInput("usage.record.quantity_not_a_number", f"Cannot read a quantity in {text!r}.")
    if not suffix:
        return amount, None
    unit = UNIT_SPELLINGS.get(suffix.lower())
    if unit is None:
        raise InvalidInput("usage.record.unknown_unit", f"Unknown unit {suffix!r} in {text!r}.")
    return amount, unit


def _quantity(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise InvalidInput(
            "usage.record.quantity_not_a_number", "A numeric `quantity` characteristic is required."
        )
    try:
        quantity = Decimal(str(value).strip()) if isinstance(value, (str, int, float, Decimal)) else None
    except InvalidOperation:
        quantity = None
    if quantity is None or not quantity.is_finite():
        raise InvalidInput("usage.record.quantity_not_a_number", f"Quantity must be a number; got {value!r}.")
    return quantity


def _unit(usage_type: str, value: Any) -> str:
    if value is None and usage_type in DEFAULT_UNIT:
        return DEFAULT_UNIT[usage_type]
    unit = UNIT_SPELLINGS.get(value.strip().lower()) if isinstance(value, str) else None
    if unit not in UNITS[usage_type]:
        raise PolicyViolation(
            "usage.record.unit_matches_type",
            f"A {usage_type} record is counted in {' / '.join(UNITS[usage_type])}; got {value!r}.",
            usageType=usage_type,
            unit=str(value),
        )
    return unit


def _msisdn(value: Any) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
        raise InvalidInput("usage.record.msisdn_required", "An `msisdn` characteristic is required.")
    return str(value).strip()


def _flag(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidInput("usage.record.roaming_flag", f"`roaming` must be true or false; got {value!r}.")


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)

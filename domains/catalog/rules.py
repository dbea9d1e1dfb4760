"""Pure catalog rules: price windows, the lowest-active-price rule, sellability, allowance units."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from core.errors import InvalidInput, PolicyViolation
from core.statemachine import StateMachine
from domains.catalog.models import ProductOffering, ProductOfferingPrice

ACTIVE = "Active"
RETIRED = "Retired"
LIFECYCLE_STATUSES = (ACTIVE, RETIRED)

offering_lifecycle = StateMachine("offering", [("retire", ACTIVE, RETIRED)])

# allowance type -> the unit its quantity is counted in
ALLOWANCE_UNITS: Mapping[str, str] = {"data": "mb", "voice": "minutes", "sms": "count", "data_roaming": "mb"}
UNLIMITED = -1
CURRENCY = "SGD"


def in_window(valid_from: datetime | None, valid_to: datetime | None, at: datetime) -> bool:
    """Half-open window [valid_from, valid_to); a missing bound is open."""
    return (valid_from is None or valid_from <= at) and (valid_to is None or at < valid_to)


def lowest_active_price(prices: Iterable[ProductOfferingPrice], at: datetime) -> ProductOfferingPrice | None:
    """Among the rows whose window contains `at`, the cheapest wins; the id breaks a tie so the
    choice is stable across calls."""
    active = [p for p in prices if in_window(p.valid_from, p.valid_to, at)]
    return min(active, key=lambda p: (p.amount, p.id), default=None)


def why_not_sellable(offering: ProductOffering, at: datetime) -> str | None:
    """A sentence when the offering itself cannot be sold at `at`, else None (prices aside)."""
    if offering.lifecycle_status != ACTIVE:
        return f"Offering {offering.id} is {offering.lifecycle_status.lower()}."
    if not offering.is_sellable:
        return f"Offering {offering.id} is not sold on its own."
    if offering.valid_from is not None and at < offering.valid_from:
        return f"Offering {offering.id} is not on sale before {offering.valid_from.isoformat()}."
    if offering.valid_to is not None and at >= offering.valid_to:
        return f"Offering {offering.id} was withdrawn from sale at {offering.valid_to.isoformat()}."
    return None


def require_sellable(
    offering: ProductOffering, prices: Iterable[ProductOfferingPrice], at: datetime
) -> ProductOfferingPrice:
    reason = why_not_sellable(offering, at)
    if reason:
        raise PolicyViolation("policy.offering.not_sellable_now", reason, offering_id=offering.id)
    price = lowest_active_price(prices, at)
    if price is None:
        raise no_active_price(offering.id, at)
    return price


def no_active_price(offering_id: str, at: datetime) -> PolicyViolation:
    return PolicyViolation(
        "catalog.price.no_active_row",
        f"Offering {offering_id} has no price active at {at.isoformat()}, so it cannot be sold.",
        offering_id=offering_id,
        at=at.isoformat(),
    )


def check_price(amount: Decimal, valid_from: datetime | None, valid_to: datetime | None) -> None:
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise InvalidInput(
            "catalog.price.invalid_amount", f"A price must be positive with at most 2 decimals; got {amount}."
        )
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        raise InvalidInput("catalog.price.invalid_window", "A price window must end after it starts.")


def check_allowances(allowances: Mapping[str, int]) -> None:
    if not allowances:
        raise InvalidInput("catalog.offering.no_allowances", "A plan needs at least one allowance.")
    for kind, quantity in allowances.items():
        if kind not in ALLOWANCE_UNITS:
            raise InvalidInput(
                "catalog.allowance.invalid_type",
                f"Allowance type must be one of {', '.join(ALLOWANCE_UNITS)}; got {kind!r}.",
            )
        if quantity < UNLIMITED:
            raise InvalidInput(
                "catalog.allowance.invalid_quantity",
                f"Allowance {kind} must be -1 (unlimited) or a quantity of 0 or more; got {quantity}.",
            )

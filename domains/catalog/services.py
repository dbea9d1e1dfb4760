"""Catalog services: reads used by ordering and subscriptions, and the operator's admin writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from core.clock import clock
from core.context import RequestContext
from core.errors import NotFound, PolicyViolation
from domains.audit.services import record
from domains.catalog import rules
from domains.catalog.models import (
    BundleAllowance,
    ProductOffering,
    ProductOfferingPrice,
    ProductSpecification,
    ProductToServiceMapping,
    VasOffering,
)

DEFAULT_SPEC = "SPEC_MOBILE_PREPAID"
DEFAULT_CFS = "SSPEC_CFS_MOBILE_BROADBAND"
DEFAULT_RFS = ("SSPEC_RFS_DATA_BEARER", "SSPEC_RFS_VOICE_BEARER")
ALLOWANCE_SUFFIX = {"data": "DATA", "voice": "VOICE", "sms": "SMS", "data_roaming": "ROAM"}


@dataclass(frozen=True)
class OfferingDetails:
    """An offering with everything a channel shows: all price rows, the winning one, allowances."""

    offering: ProductOffering
    prices: list[ProductOfferingPrice]
    active_price: ProductOfferingPrice | None
    allowances: list[BundleAllowance]


# --- reads -----------------------------------------------------------------------------------


async def get_offering(session: AsyncSession, offering_id: str) -> ProductOffering:
    offering = await session.get(ProductOffering, offering_id)
    if offering is None:
        raise NotFound("catalog.offering.not_found", f"No offering {offering_id}.", offering_id=offering_id)
    return offering


async def prices_of(session: AsyncSession, offering_ids: Iterable[str]) -> list[ProductOfferingPrice]:
    rows = await session.exec(
        select(ProductOfferingPrice)
        .where(col(ProductOfferingPrice.offering_id).in_(list(offering_ids)))
        .order_by(col(ProductOfferingPrice.valid_from).nulls_first(), col(ProductOfferingPrice.id))
    )
    return list(rows)


async def active_price(
    session: AsyncSession, offering_id: str, at: datetime | None = None
) -> ProductOfferingPrice:
    """The lowest price whose window contains `at` (default: the business clock's now)."""
    at = at or clock.now()
    await get_offering(session, offering_id)
    price = rules.lowest_active_price(await prices_of(session, [offering_id]), at)
    if price is None:
        raise rules.no_active_price(offering_id, at)
    return price


async def require_sellable(
    session: AsyncSession, offering_id: str, at: datetime | None = None
) -> tuple[ProductOffering, ProductOfferingPrice]:
    """The offering and the price to snapshot, or a PolicyViolation saying why it cannot be sold."""
    at = at or clock.now()
    offering = await get_offering(session, offering_id)
    price = rules.require_sellable(offering, await prices_of(session, [offering_id]), at)
    return offering, price


async def allowances(session: AsyncSession, offering_id: str) -> list[BundleAllowance]:
    await get_offering(session, offering_id)
    return (await allowances_of(session, [offering_id]))[offering_id]


async def allowances_of(
    session: AsyncSession, offering_ids: Iterable[str]
) -> dict[str, list[BundleAllowance]]:
    ids = list(offering_ids)
    rows = await session.exec(
        select(BundleAllowance)
        .where(col(BundleAllowance.offering_id).in_(ids))
        .order_by(col(BundleAllowance.offering_id), col(BundleAllowance.id))
    )
    found: dict[str, list[BundleAllowance]] = {i: [] for i in ids}
    for row in rows:
        found[row.offering_id].append(row)
    return found


async def details(
    session: AsyncSession, offerings: Sequence[ProductOffering], at: datetime | None = None
) -> list[OfferingDetails]:
    """Prices and allowances of many offerings in two queries (a list page, a portal's plan grid)."""
    at = at or clock.now()
    ids = [o.id for o in offerings]
    by_offering: dict[str, list[ProductOfferingPrice]] = defaultdict(list)
    for price in await prices_of(session, ids):
        by_offering[price.offering_id].append(price)
    allowance_rows = await allowances_of(session, ids)
    return [
        OfferingDetails(
            offering=o,
            prices=by_offering[o.id],
            active_price=rules.lowest_active_price(by_offering[o.id], at),
            allowances=allowance_rows[o.id],
        )
        for o in offerings
    ]


def offerings_query(
    lifecycle_status: str | None = None, name: str | None = None
) -> SelectOfScalar[ProductOffering]:
    query = select(ProductOffering).order_by(col(ProductOffering.id))
    if lifecycle_status is not None:
        query = query.where(ProductOffering.lifecycle_status == lifecycle_status)
    if name is not None:
        query = query.where(func.lower(col(ProductOffering.name)) == name.lower())
    return query


def prices_query(offering_id: str | None = None) -> SelectOfScalar[ProductOfferingPrice]:
    query = select(ProductOfferingPrice).order_by(col(ProductOfferingPrice.id))
    if offering_id is not None:
        query = query.where(ProductOfferingPrice.offering_id == offering_id)
    return query


def specifications_query() -> SelectOfScalar[ProductSpecification]:
    return select(ProductSpecification).order_by(col(ProductSpecification.id))


async def get_price(session: AsyncSession, price_id: str) -> ProductOfferingPrice:
    price = await session.get(ProductOfferingPrice, price_id)
    if price is None:
        raise NotFound("catalog.price.not_found", f"No offering price {price_id}.", price_id=price_id)
    return price


async def get_specification(session: AsyncSession, spec_id: str) -> ProductSpecification:
    spec = await session.get(ProductSpecification, spec_id)
    if spec is None:
        raise NotFound(
            "catalog.specification.not_found", f"No product specification {spec_id}.", spec_id=spec_id
        )
    return spec


async def get_vas(session: AsyncSession, vas_id: str) -> VasOffering:
    vas = await session.get(VasOffering, vas_id)
    if vas is None:
        raise NotFound("catalog.vas.not_found", f"No VAS offering {vas_id}.", vas_id=vas_id)
    return vas


async def list_vas(session: AsyncSession) -> list[VasOffering]:
    return list(
        await session.exec(select(VasOffering).order_by(col(VasOffering.price_amount), col(VasOffering.id)))
    )


async def service_mapping(session: AsyncSession, offering_id: str) -> ProductToServiceMapping:
    """The CFS and RFS specifications service ordering decomposes this offering into."""
    mapping = await session.get(ProductToServiceMapping, offering_id)
    if mapping is None:
        await get_offering(session, offering_id)
        raise NotFound(
            "catalog.service_mapping.not_found",
            f"Offering {offering_id} has no service mapping.",
            offering_id=offering_id,
        )
    return mapping


# --- admin writes ----------------------------------------------------------------------------


async def add_offering(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    offering_id: str,
    name: str,
    amount: Decimal,
    allowances: Mapping[str, int],
    description: str | None = None,
    price_id: str | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    spec_id: str = DEFAULT_SPEC,
) -> OfferingDetails:
    """A new plan with its first price (same window as the offering) and its allowances, mapped to
    the mobile broadband CFS so it can be ordered at once."""
    rules.check_allowances(allowances)
    rules.check_price(amount, valid_from, valid_to)
    price_id = price_id or f"PRICE_{offering_id}"
    if await session.get(ProductOffering, offering_id) is not None:
        raise PolicyViolation(
            "catalog.offering.already_exists",
            f"Offering {offering_id} already exists.",
            offering_id=offering_id,
        )
    if await session.get(ProductOfferingPrice, price_id) is not None:
        raise PolicyViolation(
            "catalog.price.already_exists", f"Price {price_id} already exists.", price_id=price_id
        )
    await get_specification(session, spec_id)

    now = clock.now()
    offering = ProductOffering(
        id=offering_id,
        name=name,
        description=description,
        spec_id=spec_id,
        valid_from=valid_from,
        valid_to=valid_to,
        created_at=now,
        updated_at=now,
    )
    price = ProductOfferingPrice(
        id=price_id,
        offering_id=offering_id,
        amount=amount,
        valid_from=valid_from,
        valid_to=valid_to,
        created_at=now,
    )
    bundle = [
        BundleAllowance(
            id=f"BA_{offering_id}_{ALLOWANCE_SUFFIX[kind]}",
            offering_id=offering_id,
            allowance_type=kind,
            quantity=quantity,
            unit=rules.ALLOWANCE_UNITS[kind],
        )
        for kind, quantity in allowances.items()
    ]
    session.add(offering)
    await session.flush()  # the price, allowances and mapping refer to the offering
    session.add_all([price, *bundle])
    session.add(
        ProductToServiceMapping(
            offering_id=offering_id, cfs_spec_id=DEFAULT_CFS, rfs_spec_ids=list(DEFAULT_RFS)
        )
    )
    record(
        session,
        ctx,
        "catalog.offering.added",
        "ProductOffering",
        offering_id,
        {"name": name, "price_id": price_id, "amount": str(amount), "allowances": dict(allowances)},
    )
    await session.flush()
    return OfferingDetails(
        offering=offering,
        prices=[price],
        active_price=rules.lowest_active_price([price], now),
        allowances=bundle,
    )


async def add_price(
    session: AsyncSession,
    ctx: RequestContext,
    offering_id: str,
    price_id: str,
    amount: Decimal,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
) -> ProductOfferingPrice:
    """Another price row: a cheaper overlapping window is a promotion, a later one a price change."""
    rules.check_price(amount, valid_from, valid_to)
    offering = await get_offering(session, offering_id)
    if offering.lifecycle_status != rules.ACTIVE:
        raise PolicyViolation(
            "catalog.offering.already_retired",
            f"Offering {offering_id} is retired; it takes no new prices.",
            offering_id=offering_id,
        )
    if await session.get(ProductOfferingPrice, price_id) is not None:
        raise PolicyViolation(
            "catalog.price.already_exists", f"Price {price_id} already exists.", price_id=price_id
        )
    price = ProductOfferingPrice(
        id=price_id, offering_id=offering_id, amount=amount, valid_from=valid_from, valid_to=valid_to
    )
    session.add(price)
    offering.updated_at = clock.now()
    session.add(offering)
    record(session, ctx, "catalog.price.added", "ProductOffering", offering_id, _price_payload(price))
    await session.flush()
    return price


async def retire_offering(session: AsyncSession, ctx: RequestContext, offering_id: str) -> ProductOffering:
    """No new sales; lines already on the plan keep their snapshot price and renew as before."""
    offering = await get_offering(session, offering_id)
    offering.lifecycle_status = rules.offering_lifecycle.next(
        "retire", offering.lifecycle_status, code="catalog.offering.already_retired"
    )
    offering.updated_at = clock.now()
    session.add(offering)
    record(session, ctx, "catalog.offering.retired", "ProductOffering", offering_id, {})
    await session.flush()
    return offering


def _price_payload(price: ProductOfferingPrice) -> dict[str, Any]:
    return {
        "price_id": price.id,
        "amount": str(price.amount),
        "currency": price.currency,
        "valid_from": price.valid_from.isoformat() if price.valid_from else None,
        "valid_to": price.valid_to.isoformat() if price.valid_to else None,
    }

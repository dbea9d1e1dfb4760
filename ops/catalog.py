"""Catalog operations: what the API, CLI (through the API), portals and agent call."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from core.context import RequestContext
from core.db import transaction
from core.errors import Forbidden, PolicyViolation
from domains.catalog import services
from domains.catalog.models import ProductOffering, ProductOfferingPrice, VasOffering
from domains.catalog.services import OfferingDetails
from ops.runtime import Runtime

ANONYMOUS = {"", "anonymous"}


def _require_admin(ctx: RequestContext) -> None:
    # Catalogue changes reach every future sale: they must name who made them.
    if ctx.actor.strip().lower() in ANONYMOUS:
        raise Forbidden("catalog.admin_only", "Catalogue changes need a named actor (X-BSS-Actor).")


async def sellable_offerings(rt: Runtime, at: datetime | None = None) -> list[OfferingDetails]:
    """The plans a customer can buy now, each with its winning price and allowances."""
    async with rt.db() as s:
        offerings = list(await s.exec(services.offerings_query(lifecycle_status="Active")))
        found = await services.details(s, offerings, at)
    return [d for d in found if d.offering.is_sellable and d.active_price is not None]


async def offering_details(rt: Runtime, offering_id: str, at: datetime | None = None) -> OfferingDetails:
    async with rt.db() as s:
        offering = await services.get_offering(s, offering_id)
        return (await services.details(s, [offering], at))[0]


async def list_vas(rt: Runtime) -> list[VasOffering]:
    async with rt.db() as s:
        return await services.list_vas(s)


async def get_vas(rt: Runtime, vas_id: str) -> VasOffering:
    async with rt.db() as s:
        return await services.get_vas(s, vas_id)


async def add_offering(
    rt: Runtime,
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
) -> OfferingDetails:
    _require_admin(ctx)
    try:
        async with transaction(rt.db) as s:
            return await services.add_offering(
                s,
                ctx,
                offering_id=offering_id,
                name=name,
                amount=amount,
                allowances=allowances,
                description=description,
                price_id=price_id,
                valid_from=valid_from,
                valid_to=valid_to,
            )
    except IntegrityError:
        # a concurrent request created the same offering or price id between our check and insert
        raise PolicyViolation(
            "catalog.offering.already_exists", f"Offering {offering_id} or its price already exists."
        ) from None


async def add_price(
    rt: Runtime,
    ctx: RequestContext,
    offering_id: str,
    price_id: str,
    amount: Decimal,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
) -> ProductOfferingPrice:
    _require_admin(ctx)
    try:
        async with transaction(rt.db) as s:
            return await services.add_price(s, ctx, offering_id, price_id, amount, valid_from, valid_to)
    except IntegrityError:
        raise PolicyViolation("catalog.price.already_exists", f"Price {price_id} already exists.") from None


async def retire_offering(rt: Runtime, ctx: RequestContext, offering_id: str) -> OfferingDetails:
    _require_admin(ctx)
    async with transaction(rt.db) as s:
        offering: ProductOffering = await services.retire_offering(s, ctx, offering_id)
        return (await services.details(s, [offering]))[0]

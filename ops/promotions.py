"""Promotion operations: what the API, the CLI (through the API), portals and agent call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.context import RequestContext
from core.db import transaction
from domains.catalog import promotions
from domains.catalog.promotions import Promotion
from ops.runtime import Runtime


@dataclass
class PromotionView:
    promotion: Promotion
    eligible_customer_ids: list[str] | None  # None: a public code


@dataclass
class NewPromotion:
    code: str
    name: str
    discount_type: str
    discount_value: Decimal
    periods: int | None
    code_kind: str
    max_uses: int | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    eligible_customer_ids: list[str] | None = None


async def _view(s, promo: Promotion) -> PromotionView:
    if not promo.targeted:
        return PromotionView(promo, None)
    return PromotionView(promo, (await promotions.eligible_customers(s, [promo.code]))[promo.code])


async def create(rt: Runtime, ctx: RequestContext, req: NewPromotion) -> PromotionView:
    async with transaction(rt.db) as s:
        promo = await promotions.create_promotion(
            s,
            ctx,
            code=req.code,
            name=req.name,
            discount_type=req.discount_type,
            discount_value=req.discount_value,
            periods=req.periods,
            code_kind=req.code_kind,
            max_uses=req.max_uses,
            valid_from=req.valid_from,
            valid_to=req.valid_to,
            eligible_customer_ids=req.eligible_customer_ids,
        )
        return await _view(s, promo)


async def show(rt: Runtime, code: str) -> PromotionView:
    async with rt.db() as s:
        return await _view(s, await promotions.get_promotion(s, code))


async def listing(
    rt: Runtime, *, state: str | None = None, offset: int = 0, limit: int = 100
) -> tuple[list[PromotionView], int]:
    async with rt.db() as s:
        rows, total = await promotions.list_promotions(s, state=state, offset=offset, limit=limit)
        eligible = await promotions.eligible_customers(s, [p.code for p in rows if p.targeted])
        return [PromotionView(p, eligible[p.code] if p.targeted else None) for p in rows], total


async def assign(rt: Runtime, ctx: RequestContext, code: str, customer_id: str) -> PromotionView:
    async with transaction(rt.db) as s:
        return await _view(s, await promotions.assign(s, ctx, code, customer_id))


async def unassign(rt: Runtime, ctx: RequestContext, code: str, customer_id: str) -> PromotionView:
    async with transaction(rt.db) as s:
        return await _view(s, await promotions.unassign(s, ctx, code, customer_id))


async def exhaust(rt: Runtime, ctx: RequestContext, code: str) -> PromotionView:
    async with transaction(rt.db) as s:
        return await _view(s, await promotions.exhaust(s, ctx, code))

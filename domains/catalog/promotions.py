"""Promotions (schema `catalog`): the money terms of a promo code, who may use it, and each order's
claim on it.

A promotion is a percent or absolute discount on the lowest active price, for one period, N
periods or for ever (`periods` None), valid in a window, public or targeted (an eligibility list),
and of one code kind:
- `single_use_shared`: one shared code, used once in all (the first order to claim it wins);
- `multi_use`: any customer, any number of times, up to `max_uses` (None: no cap);
- `single_use_per_customer`: each customer once, up to `max_uses` in all.

An order snapshots the discount at create when its code is valid then (an invalid code never blocks
an order: it goes at full price with the reason in its note and an `order.promo_rejected` event).
The order's PromoClaimWorkflow then *claims* a use when the order starts: under the promotion's row
lock, so two concurrent orders cannot both take the last use of a capped code; the loser goes at
full price with the reason. The claim is *redeemed* when the line is active (its discount periods
then count down at each renewal) or *revoked* when the order fails, giving the use back: a failed
activation never burns a code. Activation counts as the first period, so a redeemed claim keeps
`periods - 1` periods (-1: perpetual). A plan change or a price migration ends the discount.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Numeric, UniqueConstraint, func
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import Conflict, InvalidInput, NotFound, PolicyViolation
from domains.audit.services import record

SCHEMA = {"schema": "catalog"}
AGGREGATE = "promotion"
ORDER_AGGREGATE = "product_order"

PERCENT, ABSOLUTE = "percent", "absolute"
DISCOUNT_TYPES = (PERCENT, ABSOLUTE)
SINGLE_USE_SHARED, MULTI_USE, SINGLE_USE_PER_CUSTOMER = (
    "single_use_shared",
    "multi_use",
    "single_use_per_customer",
)
CODE_KINDS = (SINGLE_USE_SHARED, MULTI_USE, SINGLE_USE_PER_CUSTOMER)
ACTIVE, EXHAUSTED = "active", "exhausted"
CAP_REACHED, BY_OPERATOR = "cap_reached", "operator"
CLAIMED, REDEEMED, REVOKED, REFUSED = "claimed", "redeemed", "revoked", "refused"
HOLDING = (CLAIMED, REDEEMED)  # claims that use up a use of the code
PERPETUAL = -1
CENT = Decimal("0.01")


def _when(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Promotion(SQLModel, table=True):
    __tablename__ = "promotion"
    __table_args__ = SCHEMA

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    discount_type: str = Field(max_length=10)
    discount_value: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    periods: int | None = Field(default=None)  # None: perpetual
    code_kind: str = Field(max_length=30)
    max_uses: int | None = Field(default=None)
    valid_from: datetime | None = _when(nullable=True)
    valid_to: datetime | None = _when(nullable=True)
    targeted: bool = False
    state: str = Field(default=ACTIVE, max_length=20)
    state_reason: str | None = Field(default=None, max_length=20)
    uses: int = 0
    created_by: str = Field(max_length=200)
    created_at: datetime = _when()
    updated_at: datetime = _when()


class PromotionEligibility(SQLModel, table=True):
    __tablename__ = "promotion_eligibility"
    __table_args__ = (UniqueConstraint("promotion_code", "customer_id"), SCHEMA)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    promotion_code: str = Field(foreign_key="catalog.promotion.code", max_length=32)
    customer_id: str = Field(max_length=64)
    created_by: str = Field(max_length=200)
    created_at: datetime = _when()


class PromotionClaim(SQLModel, table=True):
    """One order's claim on a use of a code: claimed → redeemed | revoked, or refused at once."""

    __tablename__ = "promotion_claim"
    __table_args__ = (
        Index("ix_promotion_claim_code_customer", "promotion_code", "customer_id", "state"),
        Index("ix_promotion_claim_subscription", "subscription_id", "state"),
        SCHEMA,
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    promotion_code: str = Field(foreign_key="catalog.promotion.code", max_length=32)
    order_id: str = Field(max_length=20, unique=True)
    customer_id: str = Field(max_length=64)
    subscription_id: str | None = Field(default=None, max_length=20)
    state: str = Field(max_length=10)
    discount_type: str = Field(max_length=10)
    discount_value: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    periods_remaining: int = 0  # after redemption: renewals still discounted; -1 perpetual
    reason: str | None = Field(default=None, max_length=200)
    claimed_at: datetime = _when()
    settled_at: datetime | None = _when(nullable=True)


# --------------------------------------------------------------------------- pure rules


def normalise(code: str) -> str:
    return code.strip().upper()


def discounted(base: Decimal, discount_type: str, value: Decimal) -> Decimal:
    """percent: base × (100 − v) / 100; absolute: base − v, never below 0; half-up to cents."""
    if discount_type == PERCENT:
        price = base * (Decimal(100) - value) / Decimal(100)
    else:
        price = base - value
    return max(Decimal(0), price).quantize(CENT, rounding=ROUND_HALF_UP)


def cap(p: Promotion) -> int | None:
    return 1 if p.code_kind == SINGLE_USE_SHARED else p.max_uses


REASONS = {
    "unknown_code": "there is no such promo code",
    "no_active_promotion": "the promotion is no longer available",
    "not_yet_valid": "the promotion has not started yet",
    "expired": "the promotion has ended",
    "not_eligible": "the customer is not eligible for this promotion",
    "already_used": "the customer has already used this code",
}


def _check_terms(
    *,
    discount_type: str,
    discount_value: Decimal,
    periods: int | None,
    code_kind: str,
    max_uses: int | None,
    valid_from: datetime | None,
    valid_to: datetime | None,
) -> None:
    if discount_type not in DISCOUNT_TYPES:
        raise InvalidInput("catalog.promotion.invalid_discount_type", "discountType is percent or absolute.")
    if discount_value <= 0 or (discount_type == PERCENT and discount_value > 100):
        raise InvalidInput(
            "catalog.promotion.invalid_discount_value",
            "discountValue is above 0 (and at most 100 for a percent discount).",
        )
    if periods is not None and not (1 <= periods <= 120):
        raise InvalidInput(
            "catalog.promotion.invalid_periods_total",
            "periods is 1 to 120, or null for a perpetual discount.",
        )
    if code_kind not in CODE_KINDS:
        raise InvalidInput(
            "catalog.promotion.invalid_promo_code_kind", f"codeKind is one of {', '.join(CODE_KINDS)}."
        )
    if max_uses is not None and max_uses < 1:
        raise InvalidInput("catalog.promotion.invalid_max_uses", "maxUses is at least 1, or null for no cap.")
    if code_kind == SINGLE_USE_SHARED and max_uses not in (None, 1):
        raise InvalidInput(
            "catalog.promotion.invalid_max_uses",
            "A single_use_shared code is used once in all: maxUses 1 or null.",
        )
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        raise InvalidInput("catalog.promotion.invalid_window", "validTo must be after validFrom.")


# --------------------------------------------------------------------------- administration


async def get_promotion(session: AsyncSession, code: str, *, for_update: bool = False) -> Promotion:
    stmt = select(Promotion).where(Promotion.code == normalise(code))
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    promo = (await session.exec(stmt)).first()
    if promo is None:
        raise NotFound("catalog.promotion.not_found", f"No promotion {code}.", promo_code=code)
    return promo


async def list_promotions(
    session: AsyncSession, *, state: str | None = None, offset: int = 0, limit: int = 100
) -> tuple[list[Promotion], int]:
    where = [Promotion.state == state] if state else []
    total = (await session.exec(select(func.count()).select_from(Promotion).where(*where))).one()
    rows = await session.exec(
        select(Promotion)
        .where(*where)
        .order_by(col(Promotion.created_at).desc(), col(Promotion.code))
        .offset(offset)
        .limit(limit)
    )
    return list(rows), int(total)


async def eligible_customers(session: AsyncSession, codes: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {c: [] for c in codes}
    if not codes:
        return out
    rows = await session.exec(
        select(PromotionEligibility)
        .where(col(PromotionEligibility.promotion_code).in_(codes))
        .order_by(col(PromotionEligibility.id))
    )
    for row in rows:
        out[row.promotion_code].append(row.customer_id)
    return out


async def _require_customer(session: AsyncSession, customer_id: str) -> None:
    from domains.crm.services import get_customer

    try:
        await get_customer(session, customer_id)
    except NotFound:
        raise PolicyViolation(
            "catalog.promotion.customer_not_found", f"No customer {customer_id}.", customer_id=customer_id
        ) from None


async def create_promotion(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    code: str,
    name: str,
    discount_type: str,
    discount_value: Decimal,
    periods: int | None,
    code_kind: str,
    max_uses: int | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    eligible_customer_ids: list[str] | None = None,
) -> Promotion:
    code = normalise(code)
    _check_terms(
        discount_type=discount_type,
        discount_value=discount_value,
        periods=periods,
        code_kind=code_kind,
        max_uses=max_uses,
        valid_from=valid_from,
        valid_to=valid_to,
    )
    if (await session.exec(select(Promotion.code).where(Promotion.code == code))).first() is not None:
        raise Conflict("catalog.promotion.code_in_use", f"Promo code {code} already exists.", promo_code=code)
    customers = list(dict.fromkeys(eligible_customer_ids or []))
    for customer_id in customers:
        await _require_customer(session, customer_id)
    now = clock.now()
    promo = Promotion(
        code=code,
        name=name,
        discount_type=discount_type,
        discount_value=discount_value,
        periods=periods,
        code_kind=code_kind,
        max_uses=1 if code_kind == SINGLE_USE_SHARED else max_uses,
        valid_from=valid_from,
        valid_to=valid_to,
        targeted=eligible_customer_ids is not None,
        created_by=ctx.actor,
        created_at=now,
        updated_at=now,
    )
    session.add(promo)
    await session.flush()
    for customer_id in customers:
        session.add(
            PromotionEligibility(
                promotion_code=code, customer_id=customer_id, created_by=ctx.actor, created_at=now
            )
        )
    record(
        session,
        ctx,
        "promotion.created",
        AGGREGATE,
        code,
        {**terms_of(promo), "eligibleCustomerIds": customers},
    )
    await session.flush()
    return promo


def terms_of(p: Promotion) -> dict[str, Any]:
    return {
        "code": p.code,
        "discountType": p.discount_type,
        "discountValue": str(p.discount_value),
        "periods": p.periods,
        "codeKind": p.code_kind,
        "maxUses": p.max_uses,
    }


async def _targeted(session: AsyncSession, code: str) -> Promotion:
    promo = await get_promotion(session, code, for_update=True)
    if not promo.targeted:
        raise PolicyViolation(
            "catalog.promotion.not_targeted",
            f"{promo.code} is a public code; only a targeted promotion has an eligibility list.",
            promo_code=promo.code,
        )
    return promo


async def assign(session: AsyncSession, ctx: RequestContext, code: str, customer_id: str) -> Promotion:
    promo = await _targeted(session, code)
    await _require_customer(session, customer_id)
    exists = (
        await session.exec(
            select(PromotionEligibility).where(
                PromotionEligibility.promotion_code == promo.code,
                PromotionEligibility.customer_id == customer_id,
            )
        )
    ).first()
    if exists is None:
        session.add(
            PromotionEligibility(
                promotion_code=promo.code,
                customer_id=customer_id,
                created_by=ctx.actor,
                created_at=clock.now(),
            )
        )
        record(
            session,
            ctx,
            "promotion.assigned",
            AGGREGATE,
            promo.code,
            {"customer_id": customer_id, "code": promo.code},
        )
        await session.flush()
    return promo


async def unassign(session: AsyncSession, ctx: RequestContext, code: str, customer_id: str) -> Promotion:
    promo = await _targeted(session, code)
    row = (
        await session.exec(
            select(PromotionEligibility).where(
                PromotionEligibility.promotion_code == promo.code,
                PromotionEligibility.customer_id == customer_id,
            )
        )
    ).first()
    if row is None:
        raise NotFound(
            "catalog.promotion.not_assigned",
            f"Customer {customer_id} is not on the eligibility list of {promo.code}.",
            promo_code=promo.code,
            customer_id=customer_id,
        )
    await session.delete(row)
    record(
        session,
        ctx,
        "promotion.unassigned",
        AGGREGATE,
        promo.code,
        {"customer_id": customer_id, "code": promo.code},
    )
    await session.flush()
    return promo


async def exhaust(session: AsyncSession, ctx: RequestContext, code: str) -> Promotion:
    """An operator stops a promotion for good: no new claim (claims already made stand)."""
    promo = await get_promotion(session, code, for_update=True)
    if promo.state == EXHAUSTED and promo.state_reason == BY_OPERATOR:
        raise PolicyViolation(
            "catalog.promotion.exhaust.not_active",
            f"{promo.code} is already exhausted.",
            promo_code=promo.code,
        )
    promo.state, promo.state_reason, promo.updated_at = EXHAUSTED, BY_OPERATOR, clock.now()
    session.add(promo)
    record(
        session,
        ctx,
        "promotion.exhausted",
        AGGREGATE,
        promo.code,
        {"code": promo.code, "reason": BY_OPERATOR},
    )
    await session.flush()
    return promo


# --------------------------------------------------------------------------- validation and claims


@dataclass(frozen=True)
class PromoCheck:
    promotion: Promotion | None
    reason: str | None  # None: the code applies

    @property
    def ok(self) -> bool:
        return self.reason is None


async def check_code(
    session: AsyncSession, code: str, customer_id: str, at: datetime, *, lock: bool = False
) -> PromoCheck:
    """Whether `customer_id` may use `code` at `at`; a soft answer (the reason), never an error."""
    try:
        promo = await get_promotion(session, code, for_update=lock)
    except NotFound:
        return PromoCheck(None, "unknown_code")
    if promo.state != ACTIVE:
        return PromoCheck(promo, "no_active_promotion")
    if promo.valid_from is not None and at < promo.valid_from:
        return PromoCheck(promo, "not_yet_valid")
    if promo.valid_to is not None and at >= promo.valid_to:
        return PromoCheck(promo, "expired")
    if promo.targeted:
        listed = (
            await session.exec(
                select(PromotionEligibility.id).where(
                    PromotionEligibility.promotion_code == promo.code,
                    PromotionEligibility.customer_id == customer_id,
                )
            )
        ).first()
        if listed is None:
            return PromoCheck(promo, "not_eligible")
    if promo.code_kind != MULTI_USE:
        used = (
            await session.exec(
                select(PromotionClaim.id).where(
                    PromotionClaim.promotion_code == promo.code,
                    PromotionClaim.customer_id == customer_id,
                    col(PromotionClaim.state).in_(HOLDING),
                )
            )
        ).first()
        if used is not None:
            return PromoCheck(promo, "already_used")
    limit = cap(promo)
    if limit is not None and promo.uses >= limit:
        return PromoCheck(promo, "no_active_promotion")
    return PromoCheck(promo, None)


def rejection_note(code: str, reason: str) -> str:
    return (
        f"Promo code {code} was not applied: {REASONS.get(reason, reason)} [{reason}]. "
        "The order goes ahead at full price."
    )


def reject_on_order(session: AsyncSession, ctx: RequestContext, order: Any, reason: str) -> None:
    """The code does not apply to this order: full price, the reason in its note, an event the
    notifications turn into a message to the customer."""
    order.note = rejection_note(order.promo_code, reason)[:1000]
    order.promo_amount = order.promo_discount_type = order.promo_discount_value = None
    order.promo_periods = None
    session.add(order)
    record(
        session,
        ctx,
        "order.promo_rejected",
        ORDER_AGGREGATE,
        order.id,
        {"customer_id": order.customer_id, "code": order.promo_code, "reason": reason},
    )


@dataclass(frozen=True)
class ClaimOutcome:
    state: str  # claimed | redeemed | revoked | refused | none (the order has no code to claim)
    amount: Decimal | None = None  # the activation price to charge when the claim holds
    reason: str | None = None


async def claim_for_order(session: AsyncSession, ctx: RequestContext, order_id: str) -> ClaimOutcome:
    """Take one use of the order's code, or refuse (the order then goes at full price). Under the
    promotion's row lock: concurrent claims of the last use are serialised and only one wins.
    Asked again for the same order, it answers as the first time."""
    from domains.ordering.services import get_order

    order = await get_order(session, order_id, for_update=True)
    existing = (await session.exec(select(PromotionClaim).where(PromotionClaim.order_id == order_id))).first()
    if existing is not None:
        return ClaimOutcome(existing.state, order.promo_amount, existing.reason)
    if order.promo_code is None or order.promo_amount is None:
        return ClaimOutcome("none", None, None)  # no code, or it was refused when the order was made
    check = await check_code(session, order.promo_code, order.customer_id, clock.now(), lock=True)
    now = clock.now()
    if check.promotion is None:
        reject_on_order(session, ctx, order, check.reason or "unknown_code")
        await session.flush()
        return ClaimOutcome(REFUSED, None, check.reason)
    promo = check.promotion
    claim = PromotionClaim(
        promotion_code=promo.code,
        order_id=order.id,
        customer_id=order.customer_id,
        state=CLAIMED if check.ok else REFUSED,
        discount_type=order.promo_discount_type,
        discount_value=order.promo_discount_value,
        periods_remaining=0,
        reason=check.reason,
        claimed_at=now,
        settled_at=None if check.ok else now,
    )
    session.add(claim)
    if not check.ok:
        reject_on_order(session, ctx, order, check.reason)
        await session.flush()
        return ClaimOutcome(REFUSED, None, check.reason)
    promo.uses += 1
    limit = cap(promo)
    if limit is not None and promo.uses >= limit:
        promo.state, promo.state_reason = EXHAUSTED, CAP_REACHED
    promo.updated_at = now
    session.add(promo)
    record(
        session,
        ctx,
        "promotion.claimed",
        AGGREGATE,
        promo.code,
        {"customer_id": order.customer_id, "code": promo.code, "order_id": order.id, "uses": promo.uses},
    )
    await session.flush()
    return ClaimOutcome(CLAIMED, order.promo_amount, None)


async def _claim_of(session: AsyncSession, order_id: str) -> PromotionClaim | None:
    return (
        await session.exec(
            select(PromotionClaim)
            .where(PromotionClaim.order_id == order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()


async def redeem_for_order(
    session: AsyncSession, ctx: RequestContext, order_id: str, subscription_id: str
) -> PromotionClaim | None:
    """The line is active: the claim is spent, and its remaining periods go with the line."""
    claim = await _claim_of(session, order_id)
    if claim is None or claim.state != CLAIMED:
        return claim
    promo = await get_promotion(session, claim.promotion_code)
    claim.state, claim.subscription_id, claim.settled_at = REDEEMED, subscription_id, clock.now()
    claim.periods_remaining = PERPETUAL if promo.periods is None else promo.periods - 1
    session.add(claim)
    record(
        session,
        ctx,
        "promotion.redeemed",
        AGGREGATE,
        claim.promotion_code,
        {
            "customer_id": claim.customer_id,
            "code": claim.promotion_code,
            "order_id": order_id,
            "subscription_id": subscription_id,
            "periods_remaining": claim.periods_remaining,
        },
    )
    await session.flush()
    return claim


async def revoke_for_order(
    session: AsyncSession, ctx: RequestContext, order_id: str, reason: str
) -> PromotionClaim | None:
    """The order failed: the use goes back to the code (a cap reached by it is lifted)."""
    claim = await _claim_of(session, order_id)
    if claim is None or claim.state not in HOLDING:
        return claim
    promo = await get_promotion(session, claim.promotion_code, for_update=True)
    claim.state, claim.settled_at, claim.reason = REVOKED, clock.now(), reason[:200]
    claim.periods_remaining = 0
    session.add(claim)
    promo.uses = max(0, promo.uses - 1)
    limit = cap(promo)
    if (
        promo.state == EXHAUSTED
        and promo.state_reason == CAP_REACHED
        and (limit is None or promo.uses < limit)
    ):
        promo.state, promo.state_reason = ACTIVE, None
    promo.updated_at = clock.now()
    session.add(promo)
    record(
        session,
        ctx,
        "promotion.revoked",
        AGGREGATE,
        claim.promotion_code,
        {
            "customer_id": claim.customer_id,
            "code": claim.promotion_code,
            "order_id": order_id,
            "reason": reason[:200],
        },
    )
    await session.flush()
    return claim


async def order_claims(session: AsyncSession, code: str) -> list[PromotionClaim]:
    rows = await session.exec(
        select(PromotionClaim)
        .where(PromotionClaim.promotion_code == normalise(code))
        .order_by(col(PromotionClaim.id))
    )
    return list(rows)


# --------------------------------------------------------------------------- the line's discount


async def line_discount(session: AsyncSession, subscription_id: str) -> PromotionClaim | None:
    """The redeemed claim still discounting this line's renewals, if any (locked)."""
    return (
        await session.exec(
            select(PromotionClaim)
            .where(
                PromotionClaim.subscription_id == subscription_id,
                PromotionClaim.state == REDEEMED,
                PromotionClaim.periods_remaining != 0,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()


async def use_period(session: AsyncSession, ctx: RequestContext, claim_id: int, subscription_id: str) -> None:
    """A renewal was charged at the discounted price: one period fewer (a perpetual one stays)."""
    claim = (
        await session.exec(select(PromotionClaim).where(PromotionClaim.id == claim_id).with_for_update())
    ).one()
    if claim.periods_remaining > 0:
        claim.periods_remaining -= 1
        session.add(claim)
    record(
        session,
        ctx,
        "promotion.period_used",
        AGGREGATE,
        claim.promotion_code,
        {
            "customer_id": claim.customer_id,
            "code": claim.promotion_code,
            "subscription_id": subscription_id,
            "periods_remaining": claim.periods_remaining,
        },
    )


async def end_line_discount(
    session: AsyncSession, ctx: RequestContext, subscription_id: str, reason: str
) -> None:
    """A plan change (or a price migration) ends the line's promotion."""
    claim = await line_discount(session, subscription_id)
    if claim is None:
        return
    claim.periods_remaining = 0
    session.add(claim)
    record(
        session,
        ctx,
        "promotion.ended",
        AGGREGATE,
        claim.promotion_code,
        {
            "customer_id": claim.customer_id,
            "code": claim.promotion_code,
            "subscription_id": subscription_id,
            "reason": reason,
        },
    )

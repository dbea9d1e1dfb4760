"""Operator price migrations: moving the lines of a plan to a new price, with notice.

A line keeps the price it was sold at; only an operator's migration changes it, and only from the
first renewal on or after the end of the notice period (the reference's default: 30 days). The
migration is recorded per line here and applied by `lifecycle.renew`, never before.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import BigInteger, Column, DateTime, Index, Numeric, text
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import InvalidInput, PolicyViolation
from domains.audit.services import record
from domains.subscription import rules
from domains.subscription.models import Subscription

PENDING = "pending"
APPLIED = "applied"
SUPERSEDED = "superseded"  # the line changed plan first, or a newer migration replaced it
CANCELLED = "cancelled"  # the line was terminated
DEFAULT_NOTICE_DAYS = 30
MAX_NOTICE_DAYS = 3650


class PriceMigration(SQLModel, table=True):
    __tablename__ = "price_migration"
    __table_args__ = (
        # One migration waits per line at a time.
        Index(
            "uq_price_migration_pending",
            "subscription_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        {"schema": "subscription"},
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    subscription_id: str = Field(foreign_key="subscription.subscription.id", max_length=20)
    offering_id: str = Field(max_length=64)
    from_price_id: str = Field(max_length=64)
    new_price_id: str = Field(max_length=64)
    # The amount the customer was told about, kept even if the catalogue row changes later.
    new_amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    currency: str = Field(max_length=3)
    effective_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    status: str = Field(default=PENDING, max_length=12)
    scheduled_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


async def pending_migration(
    session: AsyncSession, subscription_id: str, *, for_update: bool = False
) -> PriceMigration | None:
    stmt = select(PriceMigration).where(
        PriceMigration.subscription_id == subscription_id, PriceMigration.status == PENDING
    )
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.exec(stmt)).first()


def resolve(migration: PriceMigration, status: str) -> None:
    migration.status = status
    migration.resolved_at = clock.now()


async def schedule_price_migration(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    offering_id: str,
    new_price_id: str,
    notice_days: int = DEFAULT_NOTICE_DAYS,
    effective_from: datetime | None = None,
) -> int:
    """Move every live line of `offering_id` to `new_price_id` from its first renewal on or after
    max(effective_from, now + notice). Returns how many lines have that migration pending.

    Running it again is harmless: a line already waiting for this price keeps its date (the
    notice it was given); a line waiting for another price gets this one instead; a line already
    paying this price is left alone.
    """
    from domains.catalog.models import ProductOfferingPrice
    from domains.catalog.services import get_offering

    if not 0 <= notice_days <= MAX_NOTICE_DAYS:
        raise InvalidInput(
            "subscription.migrate_price.notice_invalid",
            f"The notice is 0 to {MAX_NOTICE_DAYS} days; got {notice_days}.",
        )
    if effective_from is not None and effective_from.tzinfo is None:
        raise InvalidInput(
            "subscription.migrate_price.effective_from_invalid", "effectiveFrom needs a timezone."
        )
    await get_offering(session, offering_id)
    price = await session.get(ProductOfferingPrice, new_price_id)
    if price is None:
        raise PolicyViolation(
            "subscription.migrate_price.unknown_price", f"No price {new_price_id}.", price_id=new_price_id
        )
    if price.offering_id != offering_id:
        raise PolicyViolation(
            "subscription.migrate_price.price_not_on_offering",
            f"Price {new_price_id} belongs to {price.offering_id}, not {offering_id}.",
            price_id=new_price_id,
            offering_id=offering_id,
        )

    now = clock.now()
    effective_at = max(effective_from or now, now + timedelta(days=notice_days))
    lines = await session.exec(
        select(Subscription)
        .where(
            Subscription.offering_id == offering_id,
            col(Subscription.state).in_((rules.ACTIVE, rules.BLOCKED)),
        )
        .order_by(col(Subscription.id))
        .with_for_update()
    )
    subs = list(lines.all())
    waiting_by_line = {
        m.subscription_id: m
        for m in await session.exec(
            select(PriceMigration)
            .where(
                col(PriceMigration.subscription_id).in_([s.id for s in subs]),
                PriceMigration.status == PENDING,
            )
            .with_for_update()
        )
    }
    count = 0
    for sub in subs:
        waiting = waiting_by_line.get(sub.id)
        if waiting is not None and waiting.new_price_id == new_price_id:
            count += 1
            continue
        if waiting is not None:
            resolve(waiting, SUPERSEDED)
            session.add(waiting)
            await session.flush()  # frees the one-pending slot before a new row takes it
        if sub.price_id == new_price_id:
            continue
        session.add(
            PriceMigration(
                subscription_id=sub.id,
                offering_id=offering_id,
                from_price_id=sub.price_id,
                new_price_id=new_price_id,
                new_amount=price.amount,
                currency=price.currency,
                effective_at=effective_at,
                scheduled_at=now,
            )
        )
        record(
            session,
            ctx,
            "subscription.price_migration_scheduled",
            "Subscription",
            sub.id,
            {
                "offeringId": offering_id,
                "fromPriceId": sub.price_id,
                "fromAmount": str(sub.price_amount),
                "newPriceId": new_price_id,
                "newAmount": str(price.amount),
                "effectiveAt": effective_at.isoformat(),
            },
        )
        count += 1
    record(
        session,
        ctx,
        "catalog.price_migration_scheduled",
        "ProductOffering",
        offering_id,
        {"newPriceId": new_price_id, "effectiveAt": effective_at.isoformat(), "lines": count},
    )
    await session.flush()
    return count

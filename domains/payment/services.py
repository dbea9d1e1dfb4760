"""Cards on file: add (tokenized), list, remove, choose the default. Every write is audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from core.clock import clock
from core.context import RequestContext
from core.errors import InvalidInput, NotFound, PolicyViolation
from core.ids import next_id
from domains.audit.services import record
from domains.crm.services import customer_status
from domains.payment import tokenizer
from domains.payment.models import PaymentMethod

MAX_ACTIVE_METHODS = 5


def _check_expiry(exp_month: int, exp_year: int) -> None:
    if not 1 <= exp_month <= 12:
        raise InvalidInput("payment_method.add.expiry_invalid", "The expiry month is 1 to 12.")
    if not 2000 <= exp_year <= 2100:
        raise InvalidInput("payment_method.add.expiry_invalid", "The expiry year has four digits.")
    now = clock.now()
    # A card is good through the last day of its expiry month.
    if (exp_year, exp_month) < (now.year, now.month):
        raise PolicyViolation(
            "payment_method.add.card_not_expired",
            f"The card expired at the end of {exp_month:02d}/{exp_year}.",
        )


async def add_payment_method(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    customer_id: str,
    card_number: str | None = None,
    token: str | None = None,
    exp_month: int,
    exp_year: int,
    name_on_card: str | None = None,
    set_default: bool | None = None,
    last4: str | None = None,
    brand: str | None = None,
) -> PaymentMethod:
    """Tokenize `card_number` (or take a channel's `token`) and keep it on file. The first active
    card becomes the default; `set_default=True` makes a later one the default."""
    if (card_number is None) == (token is None):
        raise InvalidInput("payment_method.add.card_or_token", "Give either a card number or a token.")
    if card_number is not None:
        card = tokenizer.tokenize(card_number)
    else:
        if last4 is not None and not (len(last4) == 4 and last4.isdigit()):
            raise InvalidInput("payment_method.add.last4_invalid", "lastFourDigits is four digits.")
        card = tokenizer.CardToken(
            tokenizer.check_token(token or ""), last4 or "", brand if brand in tokenizer.BRANDS else "unknown"
        )
    _check_expiry(exp_month, exp_year)

    # Locking the customer row serialises concurrent adds, so the limit of five holds.
    status = await customer_status(session, customer_id, for_update=True)
    if status is None:
        raise PolicyViolation("payment_method.add.customer_exists", f"No customer {customer_id}.")
    if status not in ("active", "pending"):
        raise PolicyViolation(
            "payment_method.add.customer_active_or_pending",
            f"Customer {customer_id} is {status}; cards are added to active or pending customers.",
        )
    active = await list_payment_methods(session, customer_id)
    if len(active) >= MAX_ACTIVE_METHODS:
        raise PolicyViolation(
            "payment_method.add.at_most_n_methods",
            f"A customer keeps at most {MAX_ACTIVE_METHODS} cards on file; remove one first.",
            limit=MAX_ACTIVE_METHODS,
        )
    make_default = not active or bool(set_default)
    if make_default:
        await _clear_default(session, active)

    method = PaymentMethod(
        id=await next_id(session, "PM"),
        customer_id=customer_id,
        type="card",
        token=card.token,
        token_provider="mock",
        last4=card.last4 or None,
        brand=card.brand,
        exp_month=exp_month,
        exp_year=exp_year,
        name_on_card=(name_on_card or "").strip() or None,
        is_default=make_default,
        status="active",
        created_at=clock.now(),
    )
    try:
        async with session.begin_nested():
            session.add(method)
            await session.flush()
    except IntegrityError:
        raise PolicyViolation("payment_method.add.token_unique", "That token is already on file.") from None
    record(
        session,
        ctx,
        "payment_method.added",
        "payment_method",
        method.id,
        {"customerId": customer_id, "brand": method.brand, "last4": method.last4, "isDefault": make_default},
    )
    return method


async def _clear_default(session: AsyncSession, methods: list[PaymentMethod]) -> None:
    for m in methods:
        if m.is_default:
            m.is_default = False
            session.add(m)
    await session.flush()  # before a new default is written: the partial unique index checks each row


async def list_payment_methods(
    session: AsyncSession, customer_id: str, *, include_removed: bool = False
) -> list[PaymentMethod]:
    query = select(PaymentMethod).where(PaymentMethod.customer_id == customer_id)
    if not include_removed:
        query = query.where(PaymentMethod.status == "active")
    rows = await session.exec(query.order_by(col(PaymentMethod.is_default).desc(), col(PaymentMethod.id)))
    return list(rows.all())


async def get_payment_method(
    session: AsyncSession, pm_id: str, *, code: str = "payment_method.not_found"
) -> PaymentMethod:
    method = await session.get(PaymentMethod, pm_id)
    if method is None:
        raise NotFound(code, f"No payment method {pm_id}.", payment_method_id=pm_id)
    return method


def is_default_of(customer_id: Any, card: Any = PaymentMethod) -> tuple[Any, ...]:
    """The conditions of a customer's active default card, for a WHERE or a JOIN (charges.py);
    `card`: an alias of PaymentMethod to put them on (the renewal's read, lifecycle.py)."""
    return (
        card.customer_id == customer_id,
        card.status == "active",
        col(card.is_default).is_(True),
    )


async def default_payment_method(session: AsyncSession, customer_id: str) -> PaymentMethod | None:
    """The card the order saga charges: the customer's active default, if any."""
    return (await session.exec(select(PaymentMethod).where(*is_default_of(customer_id)))).first()


def has_default_payment_method(customer_id: str) -> Any:
    """SQL EXISTS: the customer has the card default_payment_method would find (to read with
    other columns in one statement)."""
    return exists().where(*is_default_of(customer_id))


async def _lock_customer_methods(session: AsyncSession, customer_id: str) -> list[PaymentMethod]:
    await customer_status(session, customer_id, for_update=True)
    return await list_payment_methods(session, customer_id)


async def remove_payment_method(session: AsyncSession, ctx: RequestContext, pm_id: str) -> PaymentMethod:
    """Remove a card; when it was the default, the most recently added remaining card takes over."""
    method = await get_payment_method(session, pm_id, code="payment_method.remove.not_found")
    if method.status == "removed":
        raise PolicyViolation("payment_method.remove.already_removed", f"{pm_id} is already removed.")
    active = await _lock_customer_methods(session, method.customer_id)
    await session.refresh(method)
    was_default = method.is_default
    method.status, method.is_default, method.removed_at = "removed", False, clock.now()
    session.add(method)
    await session.flush()
    promoted = None
    if was_default:
        others = sorted((m for m in active if m.id != method.id), key=lambda m: m.created_at, reverse=True)
        if others:
            promoted = others[0]
            promoted.is_default = True
            session.add(promoted)
            await session.flush()
    record(
        session,
        ctx,
        "payment_method.removed",
        "payment_method",
        method.id,
        {"customerId": method.customer_id, "wasDefault": was_default, "newDefault": promoted and promoted.id},
    )
    return method


async def set_default(session: AsyncSession, ctx: RequestContext, pm_id: str) -> PaymentMethod:
    method = await get_payment_method(session, pm_id, code="payment_method.set_default.not_found")
    if method.status != "active":
        raise PolicyViolation("payment_method.set_default.removed", f"{pm_id} is removed.")
    active = await _lock_customer_methods(session, method.customer_id)
    await session.refresh(method)
    if method.is_default:
        return method
    await _clear_default(session, active)
    method.is_default = True
    session.add(method)
    await session.flush()
    record(
        session,
        ctx,
        "payment_method.default_set",
        "payment_method",
        method.id,
        {"customerId": method.customer_id},
    )
    return method


def payment_method_query(
    customer_id: str | None = None, status: str | None = "active"
) -> SelectOfScalar[PaymentMethod]:
    query = select(PaymentMethod)
    if customer_id is not None:
        query = query.where(PaymentMethod.customer_id == customer_id)
    if status is not None:
        query = query.where(PaymentMethod.status == status)
    return query.order_by(col(PaymentMethod.customer_id), col(PaymentMethod.id))


async def active_methods_by_customer(
    session: AsyncSession, customer_ids: list[str]
) -> dict[str, list[PaymentMethod]]:
    """Cards on file for a page of customers, in one query."""
    found: dict[str, list[PaymentMethod]] = {c: [] for c in customer_ids}
    rows = await session.exec(
        select(PaymentMethod)
        .where(col(PaymentMethod.customer_id).in_(customer_ids), PaymentMethod.status == "active")
        .order_by(col(PaymentMethod.is_default).desc(), col(PaymentMethod.id))
    )
    for m in rows.all():
        found[m.customer_id].append(m)
    return found

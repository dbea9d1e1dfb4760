"""Card charges and refunds, exactly once per idempotency key, reconciled with the gateway by that key.

The key (the workflow id plus its step, e.g. `order-ORD-000001/activation`) is a unique column.
A charge takes its key's lock (an advisory lock, to the end of the transaction) before it looks for
the key's row, so a concurrent charge with the same key waits and then returns that row instead of
authorizing the card again; the row is written once, with the gateway's answer. The gateway gets the
same key too, so even a retry after a lost commit cannot take money twice. (A caller that takes
the lock and reads the key in one statement, `charge`'s `known`, may miss a row committed while it
waited: the gateway then answers the key from its record, and that row is returned unchanged.)
A decline is a result, not an error: the row is kept and returned, and the caller decides.

Unknown outcomes. When the gateway does not answer (GatewayError: unavailable, timeout, lost
answer) `charge` raises it and the caller's transaction rolls back; the retry sends the same key
and the gateway answers from its own record of it (the reconciliation by key: one authorisation,
one approved payment). If the process dies between the gateway's answer and the commit, the same.
`refund` reconciles too: a payment still `errored`, or none at all, is first looked up at the gateway
(`find_authorization`), so money the gateway took is given back even when the BSS never recorded it.

Errors, for the activities that call these (activities/base.py maps them for Temporal):
- GatewayError (domains/payment/gateway.py; codes payment.gateway_unavailable,
  payment.gateway_timeout, payment.gateway_response_lost, payment.refund.declined): transient,
  retryable, retry with the same key.
- PolicyViolation payment.charge.method_not_found / method_active / customer_matches_method (no card,
  card removed): will not change on retry, non-retryable.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, Column, DateTime, Index, Numeric, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Field, SQLModel, col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import InvalidInput, NotFound, PolicyViolation
from core.ids import id_sql
from domains.audit.services import AUDIT_COLUMNS, audit_fields, audit_select, record
from domains.payment.gateway import GatewayResult, PaymentGateway, RefundDeclined
from domains.payment.models import PaymentMethod
from domains.payment.services import is_default_of

PURPOSES = ("activation", "renewal", "vas")
STATUSES = ("approved", "declined", "errored", "refunded")
MAX_AMOUNT = Decimal("9999999999.99")


class Payment(SQLModel, table=True):
    """One charge attempt against a card on file (TMF676 Payment)."""

    __tablename__ = "payment"
    __table_args__ = (
        Index("ix_payment_customer", "customer_id", "attempted_at"),
        CheckConstraint("amount > 0", name="ck_payment_amount_positive"),
        CheckConstraint(
            "status IN ('approved', 'declined', 'errored', 'refunded')", name="ck_payment_status"
        ),
        CheckConstraint("purpose IN ('activation', 'renewal', 'vas')", name="ck_payment_purpose"),
        {"schema": "payment"},
    )

    id: str = Field(primary_key=True, max_length=16)  # PAY-000001
    customer_id: str = Field(max_length=16)
    payment_method_id: str = Field(foreign_key="payment.payment_method.id", max_length=16)
    amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    currency: str = Field(default="SGD", max_length=3)
    purpose: str = Field(max_length=20)
    status: str = Field(max_length=20)
    gateway_ref: str | None = Field(default=None, max_length=64)
    decline_code: str | None = Field(default=None, max_length=64)
    decline_reason: str | None = Field(default=None, max_length=200)
    idempotency_key: str = Field(max_length=200, unique=True)
    attempted_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    refunded_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    refund_ref: str | None = Field(default=None, max_length=64)


async def charge(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    customer_id: str,
    amount: Decimal,
    currency: str,
    purpose: str,
    idempotency_key: str,
    gateway: PaymentGateway,
    payment_method_id: str | None = None,
    key_locked: bool = False,
    known: tuple[Payment | None, PaymentMethod | None] | None = None,
) -> Payment:
    """Charge the customer's card (the given method, else the active default) once per key.
    `key_locked`: the caller took the key's lock already in this transaction (`key_lock`), so
    none is taken here. `known`: (the key's payment, the customer's active default card) as the
    caller read them in the statement that took that lock, so they are not read here. That read
    may miss a payment committed under the key while it waited for the lock: the gateway, asked
    again with the key, then answers from its own record, and that payment, found when this one's
    insert conflicts, is returned as it is (as if read here)."""
    out = await authorize(
        session,
        ctx,
        customer_id=customer_id,
        amount=amount,
        currency=currency,
        purpose=purpose,
        idempotency_key=idempotency_key,
        gateway=gateway,
        payment_method_id=payment_method_id,
        key_locked=key_locked,
        known=known,
    )
    return out if isinstance(out, Payment) else await record_payment(session, out)


@dataclass(frozen=True)
class Authorized:
    """The gateway's answer to a charge, not written yet: `payment` as it is to be recorded
    (transient, no id), with its audit event's context."""

    payment: Payment
    result: GatewayResult
    ctx: RequestContext


async def authorize(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    customer_id: str,
    amount: Decimal,
    currency: str,
    purpose: str,
    idempotency_key: str,
    gateway: PaymentGateway,
    payment_method_id: str | None = None,
    key_locked: bool = False,
    known: tuple[Payment | None, PaymentMethod | None] | None = None,
) -> Payment | Authorized:
    """`charge` up to the gateway's answer: the key's payment if it has one (written before),
    else the answer to write, by `record_payment` or by the caller's own statement
    (`PAYMENT_CTE`, then `recorded`). A gateway error is recorded (`errored`) and raised, as by
    `charge`."""
    amount = _check_amount(amount)
    _check_request(currency, purpose, idempotency_key)

    if not key_locked:
        await _lock_key(session, idempotency_key)
    if known is not None and payment_method_id is None:
        existing, default = known
    elif payment_method_id is None:  # the key's payment and the default card, in one statement
        existing, default = (
            await session.execute(_key_and_card(), {"key": idempotency_key, "customer_id": customer_id})
        ).one()
    else:
        existing, default = await payment_for_key(session, idempotency_key), None
    if existing is not None and existing.status != "errored":
        return _same_request(existing, customer_id, amount)
    if existing is not None:
        _same_request(existing, customer_id, amount)
    method = await _method_to_charge(session, customer_id, payment_method_id, default)
    # The key's lock (held to the end of the transaction) keeps a concurrent charge or refund of
    # this key out while the gateway answers; the row is written once, with the answer.
    row = (customer_id, method.id, amount, currency, purpose, idempotency_key)
    try:
        result = await gateway.authorize(method.token, amount, currency, idempotency_key)
    except Exception as exc:
        # Outcome unknown: kept as errored (if the caller commits), and a retry with the same key
        # asks the gateway again, which answers from its own idempotency record.
        reason = (str(exc) or type(exc).__name__)[:200]
        failed = GatewayResult(False, None, "gateway_error", reason)
        await record_payment(session, Authorized(_payment(*row, failed, "errored"), failed, ctx))
        raise
    return Authorized(_payment(*row, result), result, ctx)


async def refund(
    session: AsyncSession, ctx: RequestContext, *, idempotency_key: str, gateway: PaymentGateway
) -> Payment | None:
    """Give back the charge made with `idempotency_key` (a saga's compensation), once.

    Safe to repeat, and safe whatever became of the charge: a declined or refunded payment is
    returned unchanged; a payment still `errored` (outcome unknown) is reconciled with the gateway
    first (authorised there: recorded approved, then refunded; nothing there: closed as declined
    `not_charged`, so a late retry of the charge cannot take money); no payment at all -> None, after
    refunding any authorisation the gateway holds under the key that the BSS never recorded.
    Gateway trouble raises GatewayError (retryable); a refused refund raises RefundDeclined (retryable).
    """
    await _lock_key(session, idempotency_key)
    payment = await payment_for_key(session, idempotency_key, for_update=True)
    if payment is None:
        await _refund_unrecorded(session, ctx, idempotency_key, gateway)
        return None
    if payment.status == "errored":
        found = await gateway.find_authorization(idempotency_key)
        if found is None:
            payment.status, payment.decline_code = "declined", "not_charged"
            payment.decline_reason = "The gateway holds no charge for this key; closed by its refund."
        else:
            _apply(payment, found)
        await _save(session, ctx, payment)
    if payment.status != "approved":
        return payment
    assert payment.gateway_ref is not None
    result = await gateway.refund(payment.gateway_ref, payment.amount, _refund_key(idempotency_key))
    if not result.approved:
        raise RefundDeclined(
            f"The gateway refused to refund {payment.id}: {result.decline_reason or result.decline_code}."
        )
    payment.status = "refunded"
    payment.refunded_at = clock.now()
    payment.refund_ref = result.gateway_ref
    await _save(session, ctx, payment)
    return payment


async def _refund_unrecorded(
    session: AsyncSession, ctx: RequestContext, idempotency_key: str, gateway: PaymentGateway
) -> None:
    """The gateway authorised under this key but the BSS never committed the payment (a crash
    between the answer and the commit): refund it there, and audit it here."""
    found = await gateway.find_authorization(idempotency_key)
    if found is None or not found.approved or found.refunded:
        return
    assert found.gateway_ref is not None and found.amount is not None
    result = await gateway.refund(found.gateway_ref, found.amount, _refund_key(idempotency_key))
    if not result.approved:
        raise RefundDeclined(
            f"The gateway refused to refund {found.gateway_ref}: {result.decline_reason or result.decline_code}."
        )
    record(
        session,
        ctx,
        "payment.refunded_unrecorded",
        "payment",
        found.gateway_ref[:64],
        {
            "idempotencyKey": idempotency_key,
            "gatewayRef": found.gateway_ref,
            "amount": str(found.amount),
            "refundRef": result.gateway_ref,
        },
    )


def _refund_key(idempotency_key: str) -> str:
    return f"{idempotency_key}:refund"


async def _lock_key(session: AsyncSession, idempotency_key: str) -> None:
    """Serialise a charge and a refund of one key for the rest of the transaction: a refund never
    decides while a charge of its key is at the gateway (the charge holds this across its call)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": lock_name(idempotency_key)}
    )


def lock_name(idempotency_key: str) -> str:
    """What the key's advisory lock is taken on (the parameter of `key_lock`)."""
    return f"payment:{idempotency_key}"


def key_lock(name: Any) -> Any:
    """The key's lock as an SQL expression of `name` (a bind parameter given `lock_name(key)`),
    for a caller that takes it within a statement of its own before `charge(key_locked=True)`
    (and may read the key's payment in that statement: `charge`'s `known`)."""
    from sqlalchemy import func

    return func.pg_advisory_xact_lock(func.hashtextextended(name, 0))


async def get_payment(session: AsyncSession, payment_id: str) -> Payment:
    payment = await session.get(Payment, payment_id)
    if payment is None:
        raise NotFound("payment.not_found", f"No payment {payment_id}.", payment_id=payment_id)
    return payment


async def payment_for_key(
    session: AsyncSession, idempotency_key: str, *, for_update: bool = False
) -> Payment | None:
    query = select(Payment).where(Payment.idempotency_key == idempotency_key)
    if for_update:
        query = query.with_for_update()
    return (await session.exec(query.execution_options(populate_existing=True))).first()


async def payments_for_key(session: AsyncSession, key_prefix: str) -> list[Payment]:
    """Payments whose idempotency key starts with `key_prefix` (e.g. every charge of one
    workflow, `subscription-SUB-000001:`), oldest first; an exact key matches its one payment."""
    pattern = key_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await session.exec(
        select(Payment).where(col(Payment.idempotency_key).like(pattern)).order_by(col(Payment.id))
    )
    return list(rows.all())


async def list_payments(
    session: AsyncSession,
    *,
    customer_id: str | None = None,
    status: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[Payment], int]:
    """One page of payments, newest first, and the total that matched."""
    query = select(Payment)
    if customer_id is not None:
        query = query.where(Payment.customer_id == customer_id)
    if status is not None:
        query = query.where(Payment.status == status)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(query.order_by(col(Payment.id).desc()).offset(offset).limit(limit))
    return list(rows.all()), int(total)


def _payment(
    customer_id: str,
    payment_method_id: str,
    amount: Decimal,
    currency: str,
    purpose: str,
    idempotency_key: str,
    result: GatewayResult,
    status: str | None = None,
) -> Payment:
    """The payment to record for the gateway's `result` (transient, no id yet)."""
    return Payment(
        id="",
        customer_id=customer_id,
        payment_method_id=payment_method_id,
        amount=amount,
        currency=currency,
        purpose=purpose,
        status=status or ("approved" if result.approved else "declined"),
        gateway_ref=result.gateway_ref,
        decline_code=None if result.approved else result.decline_code,
        decline_reason=None if result.approved else result.decline_reason,
        idempotency_key=idempotency_key,
        attempted_at=clock.now(),
    )


async def record_payment(session: AsyncSession, authorized: Authorized) -> Payment:
    """Write the payment for the key with the gateway's answer and its audit event: a new key's
    row and event in one statement; else the answer applied to the `errored` row an earlier
    attempt left (and its event)."""
    if session.new or session.dirty or session.deleted:
        await session.flush()  # the caller's writes first, as an ORM insert would have flushed them
    new_id = (await session.execute(_INSERT_PAYMENT, payment_params(authorized))).scalar_one_or_none()
    if new_id is not None:
        return recorded(session, authorized, new_id)
    return await _record_again(session, authorized)


def recorded(session: AsyncSession, authorized: Authorized, payment_id: str) -> Payment:
    """The payment as `PAYMENT_CTE` inserted it with `payment_id`: persistent in the session, as
    if loaded (nothing to flush)."""
    payment = authorized.payment
    payment.id = payment_id
    make_transient_to_detached(payment)
    session.add(payment)
    return payment


async def _record_again(session: AsyncSession, authorized: Authorized) -> Payment:
    """The key's row exists (the insert conflicted): an `errored` row an earlier attempt left
    takes the answer (and its event); any other is returned as it is (`charge`'s `known`)."""
    new = authorized.payment
    existing = await payment_for_key(session, new.idempotency_key, for_update=True)
    assert existing is not None  # the key's row exists: it made the insert conflict
    if existing.status != "errored":  # a charge of the key the caller's read missed (`known`)
        return _same_request(existing, new.customer_id, new.amount)
    existing.payment_method_id = new.payment_method_id
    _apply(existing, authorized.result)
    existing.status = new.status
    await _save(session, authorized.ctx, existing)
    return existing


def payment_params(authorized: Authorized) -> dict[str, Any]:
    """The parameters of `PAYMENT_CTE` and `PAYMENT_EVENT` (all named `pay_…`)."""
    payment = authorized.payment
    event = audit_fields(authorized.ctx, f"payment.{payment.status}", "payment", "", _audit_payload(payment))
    event.pop("aggregate_id")
    return {
        **{f"pay_{c}": getattr(payment, c) for c in _INSERTED},
        **{f"pay_{k}": v for k, v in event.items()},
        "pay_event_id": uuid.uuid4(),
    }


_INSERTED = (
    "customer_id",
    "payment_method_id",
    "amount",
    "currency",
    "purpose",
    "status",
    "gateway_ref",
    "decline_code",
    "decline_reason",
    "idempotency_key",
    "attempted_at",
)
_CASTS = {"amount": "numeric", "attempted_at": "timestamptz"}
# A new key's payment, its id from the sequence (`payment`: that id, or no row when the key has a
# payment already); with PAYMENT_EVENT, the SELECT of its audit row (columns as AUDIT_COLUMNS).
# Parameters: payment_params. For a caller that writes it in a statement of its own.
PAYMENT_CTE = f"""payment AS (
    INSERT INTO payment.payment (id, {", ".join(_INSERTED)})
    VALUES ({id_sql("PAY")}, {", ".join(f"CAST(:pay_{c} AS {_CASTS.get(c, 'text')})" for c in _INSERTED)})
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
)"""
PAYMENT_EVENT = audit_select("payment", "payment.id", ":pay_payload", prefix="pay_")
_INSERT_PAYMENT = text(
    f"""
WITH {PAYMENT_CTE}, audit AS (
    INSERT INTO audit.domain_event ({", ".join(AUDIT_COLUMNS)})
    {PAYMENT_EVENT}
)
SELECT id FROM payment
"""
).bindparams(bindparam("pay_payload", type_=JSONB))


def _key_and_card() -> Any:
    """The payment of :key and the active default card of :customer_id (either may be missing)."""
    global _KEY_AND_CARD
    if _KEY_AND_CARD is None:
        from sqlalchemy import and_, bindparam, literal
        from sqlalchemy import select as core_select

        one = core_select(literal(1).label("one")).subquery()
        _KEY_AND_CARD = (
            core_select(Payment, PaymentMethod)
            .select_from(one)
            .outerjoin(Payment, Payment.idempotency_key == bindparam("key"))
            .outerjoin(PaymentMethod, and_(*is_default_of(bindparam("customer_id"))))
            .limit(1)
            .execution_options(populate_existing=True)
        )
    return _KEY_AND_CARD


# Built once, on first use: SQLAlchemy memoises its cache key on the statement, so a call only
# binds its parameters.
_KEY_AND_CARD: Any = None


async def _method_to_charge(
    session: AsyncSession, customer_id: str, payment_method_id: str | None, default: PaymentMethod | None
) -> PaymentMethod:
    """The card to charge: the given method, else `default` (the customer's active default card)."""
    if payment_method_id is None:
        method = default
        if method is None:
            raise PolicyViolation(
                "payment.charge.method_not_found",
                f"Customer {customer_id} has no active card on file to charge.",
                customer_id=customer_id,
            )
        return method
    method = await session.get(PaymentMethod, payment_method_id)
    if method is None:
        raise PolicyViolation(
            "payment.charge.method_not_found",
            f"No payment method {payment_method_id}.",
            payment_method_id=payment_method_id,
        )
    if method.customer_id != customer_id:
        raise PolicyViolation(
            "payment.charge.customer_matches_method",
            f"Payment method {payment_method_id} does not belong to customer {customer_id}.",
            payment_method_id=payment_method_id,
            customer_id=customer_id,
        )
    if method.status != "active":
        raise PolicyViolation(
            "payment.charge.method_active",
            f"Payment method {payment_method_id} is {method.status}.",
            payment_method_id=payment_method_id,
        )
    return method


def _check_amount(amount: Decimal) -> Decimal:
    amount = Decimal(amount)
    if not amount.is_finite() or amount <= 0:
        raise PolicyViolation(
            "payment.charge.positive_amount",
            f"A charge is for a positive amount; got {amount}.",
            amount=amount,
        )
    if amount != amount.quantize(Decimal("0.01")) or amount > MAX_AMOUNT:
        raise InvalidInput(
            "payment.charge.amount_invalid", f"A charge is in cents, at most {MAX_AMOUNT}; got {amount}."
        )
    return amount.quantize(Decimal("0.01"))


def _check_request(currency: str, purpose: str, idempotency_key: str) -> None:
    if purpose not in PURPOSES:
        raise InvalidInput(
            "payment.charge.purpose_invalid",
            f"purpose must be one of {', '.join(PURPOSES)}; got {purpose!r}.",
        )
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise InvalidInput(
            "payment.charge.currency_invalid", f"currency is an ISO 4217 code; got {currency!r}."
        )
    if not 0 < len(idempotency_key) <= 200:
        raise InvalidInput(
            "payment.charge.idempotency_key_invalid", "An idempotency key has 1 to 200 characters."
        )


def _same_request(payment: Payment, customer_id: str, amount: Decimal) -> Payment:
    """A key names one charge: reusing it for another customer or amount is a caller's bug."""
    if payment.customer_id != customer_id or payment.amount != amount:
        raise PolicyViolation(
            "payment.charge.idempotency_key_reused",
            f"Idempotency key {payment.idempotency_key} was used for {payment.id} "
            f"({payment.customer_id}, {payment.amount}); it cannot charge another customer or amount.",
            payment_id=payment.id,
        )
    return payment


def _apply(payment: Payment, result: GatewayResult) -> None:
    payment.status = "approved" if result.approved else "declined"
    payment.gateway_ref = result.gateway_ref
    payment.decline_code = None if result.approved else result.decline_code
    payment.decline_reason = None if result.approved else result.decline_reason
    payment.attempted_at = clock.now()


async def _save(session: AsyncSession, ctx: RequestContext, payment: Payment) -> None:
    session.add(payment)
    await session.flush()
    record(session, ctx, f"payment.{payment.status}", "payment", payment.id, _audit_payload(payment))


def _audit_payload(payment: Payment) -> dict[str, Any]:
    return {
        "customerId": payment.customer_id,
        "paymentMethodId": payment.payment_method_id,
        "amount": str(payment.amount),
        "currency": payment.currency,
        "purpose": payment.purpose,
        "status": payment.status,
        "gatewayRef": payment.gateway_ref,
        "declineCode": payment.decline_code,
        "idempotencyKey": payment.idempotency_key,
        "refundRef": payment.refund_ref,
    }

"""The mock card acquirer (`BSS_PAYMENT_PROVIDER=mock`): its own ledger in Postgres, its own faults.

It stands for a system outside the BSS, so it keeps its books in its own schema (`cardgw`) and writes
them in its own short transactions, never in the caller's: what the gateway did stays done when the
caller rolls back or its process dies, exactly as at a real acquirer. Its idempotency therefore holds
across worker restarts and across several workers (a unique key and insert-on-conflict), and a test
or the chaos suite counts authorisations from the gateway's side with the query functions at the end.

Rules: the card number 4000000000000002 and tokens containing DECLINE (or FAIL) are declined.
Faults (provisioning fault rules with task type PAYMENT_CHARGE / PAYMENT_REFUND, changed at run time
on POST /bss-api/v1/provisioning/fault-injection and read through the simulators' 1 s cache):
- `unavailable`: raises GatewayUnavailable at once; nothing is recorded.
- `timeout`: hangs for the gateway timeout, then raises GatewayTimeout; nothing is recorded.
- `lost_response`: records the authorisation or refund as usual, then raises GatewayResponseLost.
- `decline`: a new authorisation is declined (`card_declined`, recorded: a replay of the key answers
  the same); a refund is refused (not recorded, so a later retry can succeed).
Unavailable and timeout apply to replays of a key too (the network is down whatever the request).
"""

from __future__ import annotations

import asyncio
import random
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Column, DateTime, Numeric, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from domains.payment.gateway import (
    GatewayResponseLost,
    GatewayResult,
    GatewayTimeout,
    GatewayUnavailable,
    declines,
)

SCHEMA = "cardgw"
CHARGE, REFUND = "PAYMENT_CHARGE", "PAYMENT_REFUND"


class CardAuthorization(SQLModel, table=True):
    """One authorisation the acquirer made (approved or declined), once per merchant key."""

    __tablename__ = "card_authorization"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True, max_length=64)  # pi_…
    idempotency_key: str = Field(max_length=200, unique=True)
    token: str = Field(max_length=120)
    amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    currency: str = Field(max_length=3)
    approved: bool
    decline_code: str | None = Field(default=None, max_length=64)
    decline_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class CardRefund(SQLModel, table=True):
    """A full refund of one approved authorisation, once per merchant key and once per authorisation."""

    __tablename__ = "card_refund"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True, max_length=64)  # re_…
    idempotency_key: str = Field(max_length=200, unique=True)
    authorization_id: str = Field(foreign_key=f"{SCHEMA}.card_authorization.id", max_length=64, unique=True)
    amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class _Fault(Protocol):
    fault_type: str
    probability: float


class _FaultSource(Protocol):
    async def for_task(self, task_type: str) -> list[Any]: ...


class MockGateway:
    """The mock acquirer. `db` is a session factory of its own (activities/registry.py gives it a
    connection of its own per call, so it never waits on the pool its callers hold)."""

    def __init__(
        self,
        db: Any,
        *,
        faults: _FaultSource | None = None,
        timeout: float = 5.0,
        latency: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self._db = db
        self.faults = faults
        self.timeout = timeout
        self.latency = latency
        self.rng = rng or random.Random()
        self._books: Any = None  # the engine of `db` in autocommit (see _autocommit)
        # Calls of this instance that reached the acquirer's books (not replays of a key); the
        # ledger itself (authorizations_for, …) is the count across processes.
        self.authorizations = 0
        self.refunds = 0

    async def authorize(
        self, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult:
        fired = await self._fired(CHARGE)
        await self._network(fired, CHARGE)
        declined = declines(token) or "decline" in fired
        row = {
            "id": f"pi_{secrets.token_hex(12)}",
            "idempotency_key": idempotency_key,
            "token": token,
            "amount": amount,
            "currency": currency,
            "approved": not declined,
            "decline_code": "card_declined" if declined else None,
            "decline_reason": "card_declined_by_issuer" if declined else None,
            "created_at": clock.now(),
        }
        # A new key is one INSERT, committed on its own (no BEGIN and COMMIT round trips); a key
        # seen before conflicts (after its first insert committed) and is answered from its row.
        async with self._autocommit() as conn:
            if (await conn.execute(_AUTHORIZE, row)).first() is not None:
                self.authorizations += 1  # the row as inserted: no need to read it back
                result = GatewayResult(row["approved"], row["id"], row["decline_code"], row["decline_reason"])
            else:
                found = (await conn.execute(_AUTHORIZATION, row)).first()
                assert found is not None
                result = GatewayResult(*found)
        if "lost_response" in fired:
            raise GatewayResponseLost(f"The card gateway's answer to {idempotency_key} was lost.")
        return result

    async def refund(self, gateway_ref: str, amount: Decimal, idempotency_key: str) -> GatewayResult:
        fired = await self._fired(REFUND)
        await self._network(fired, REFUND)
        async with self._db() as s, s.begin():
            done = await _refund(s, idempotency_key)
            if done is None:
                auth = await s.get(CardAuthorization, gateway_ref)
                if auth is None or not auth.approved:
                    return _refused("no_such_charge", f"No approved charge {gateway_ref} to refund.")
                if amount != auth.amount:
                    return _refused("amount_mismatch", f"{gateway_ref} was for {auth.amount}, not {amount}.")
                if "decline" in fired:
                    return _refused("refund_declined", "The acquirer refused the refund.")
                row = CardRefund(
                    id=f"re_{secrets.token_hex(12)}",
                    idempotency_key=idempotency_key,
                    authorization_id=gateway_ref,
                    amount=amount,
                    created_at=clock.now(),
                )
                if await _insert(s, CardRefund, row):
                    self.refunds += 1
                done = await _refund(s, idempotency_key)
                if done is None:  # refunded before under another key
                    return _refused("already_refunded", f"{gateway_ref} was already refunded.")
        if "lost_response" in fired:
            raise GatewayResponseLost(f"The card gateway's answer to refund {idempotency_key} was lost.")
        return GatewayResult(approved=True, gateway_ref=done.id)

    async def find_authorization(self, idempotency_key: str) -> GatewayResult | None:
        fired = await self._fired(CHARGE)
        await self._network(fired, CHARGE)
        async with self._db() as s:
            row = await _authorization(s, idempotency_key)
            if row is None:
                return None
            refunded = (
                await s.exec(select(CardRefund.id).where(CardRefund.authorization_id == row.id))
            ).first() is not None
            result = _result(row)
        return GatewayResult(
            result.approved,
            result.gateway_ref,
            result.decline_code,
            result.decline_reason,
            amount=row.amount,
            refunded=refunded,
        )

    def _autocommit(self) -> Any:
        """A connection of the same pool whose statements each commit on their own."""
        if self._books is None:
            engine = self._db.kw["bind"]
            self._books = engine.execution_options(isolation_level="AUTOCOMMIT")
        return self._books.connect()

    async def _fired(self, task_type: str) -> set[str]:
        if self.faults is None:
            return set()
        return {
            f.fault_type for f in await self.faults.for_task(task_type) if self.rng.random() < f.probability
        }

    async def _network(self, fired: set[str], task_type: str) -> None:
        if "unavailable" in fired:
            raise GatewayUnavailable(f"The card gateway is unavailable (503) for {task_type}.")
        if "timeout" in fired:
            await asyncio.sleep(self.timeout)
            raise GatewayTimeout(f"The card gateway did not answer {task_type} within {self.timeout:g} s.")
        if self.latency > 0:
            await asyncio.sleep(self.latency)


_AUTHORIZE = text(
    f"INSERT INTO {SCHEMA}.card_authorization (id, idempotency_key, token, amount, currency, approved, "
    "decline_code, decline_reason, created_at) VALUES (:id, :idempotency_key, :token, :amount, :currency, "
    ":approved, :decline_code, :decline_reason, :created_at) ON CONFLICT DO NOTHING RETURNING id"
)
_AUTHORIZATION = text(
    f"SELECT approved, id, decline_code, decline_reason FROM {SCHEMA}.card_authorization "
    "WHERE idempotency_key = :idempotency_key"
)


def _refused(code: str, reason: str) -> GatewayResult:
    return GatewayResult(approved=False, decline_code=code, decline_reason=reason)


def _result(row: CardAuthorization) -> GatewayResult:
    return GatewayResult(row.approved, row.id, row.decline_code, row.decline_reason)


async def _insert(session: AsyncSession, table: type[SQLModel], row: SQLModel) -> bool:
    """Insert unless a row with one of its unique keys exists; True when this call inserted it."""
    statement = insert(table).values(**row.model_dump()).on_conflict_do_nothing().returning(table.id)  # type: ignore[attr-defined]
    return (await session.execute(statement)).first() is not None


async def _authorization(session: AsyncSession, key: str) -> CardAuthorization | None:
    query = select(CardAuthorization).where(CardAuthorization.idempotency_key == key)
    return (await session.exec(query.execution_options(populate_existing=True))).first()


async def _refund(session: AsyncSession, key: str) -> CardRefund | None:
    query = select(CardRefund).where(CardRefund.idempotency_key == key)
    return (await session.exec(query.execution_options(populate_existing=True))).first()


# --------------------------------------------------------------------------- the ledger, read


def _prefix(key_prefix: str) -> str:
    return key_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def authorizations_for(session: AsyncSession, key_prefix: str) -> list[CardAuthorization]:
    """Every authorisation (approved or declined) whose key starts with `key_prefix`, oldest first;
    e.g. `order-ORD-000001/` for one order, `subscription-SUB-000001:` for one line's renewals."""
    rows = await session.exec(
        select(CardAuthorization)
        .where(col(CardAuthorization.idempotency_key).like(_prefix(key_prefix)))
        .order_by(col(CardAuthorization.created_at), col(CardAuthorization.id))
    )
    return list(rows.all())


async def live_authorizations_for(session: AsyncSession, key_prefix: str) -> list[CardAuthorization]:
    """The approved authorisations under `key_prefix` that were not refunded: money the gateway holds."""
    refunded = select(CardRefund.authorization_id)
    rows = await session.exec(
        select(CardAuthorization)
        .where(
            col(CardAuthorization.idempotency_key).like(_prefix(key_prefix)),
            col(CardAuthorization.approved).is_(True),
            col(CardAuthorization.id).not_in(refunded),
        )
        .order_by(col(CardAuthorization.created_at), col(CardAuthorization.id))
    )
    return list(rows.all())


async def refunds_for(session: AsyncSession, key_prefix: str) -> list[CardRefund]:
    """Refunds of authorisations whose key starts with `key_prefix`, oldest first."""
    rows = await session.exec(
        select(CardRefund)
        .join(CardAuthorization, col(CardAuthorization.id) == col(CardRefund.authorization_id))
        .where(col(CardAuthorization.idempotency_key).like(_prefix(key_prefix)))
        .order_by(col(CardRefund.created_at), col(CardRefund.id))
    )
    return list(rows.all())

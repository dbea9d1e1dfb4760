"""Operator accounts: create, authenticate (with lockout), list, disable and enable.

Password hashing is CPU work (argon2, tens of milliseconds); it runs in a thread so the event loop
keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.context import RequestContext
from core.errors import Conflict, InvalidInput, NotFound
from core.ids import random_id
from domains.audit.services import record
from domains.staff import rules
from domains.staff.models import Operator


@dataclass(frozen=True)
class Login:
    """The outcome of a sign-in: the operator when `ok`, else why not (never shown to the person:
    every refusal reads the same outside, so an email cannot be probed)."""

    operator: Operator | None
    outcome: str  # ok | unknown | wrong_password | locked | disabled

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


async def _now(session: AsyncSession) -> datetime:
    return (await session.exec(select(func.now()))).one()  # type: ignore[call-overload]


async def create_operator(
    session: AsyncSession,
    ctx: RequestContext,
    email: str,
    role: str,
    name: str | None = None,
    password: str | None = None,
) -> tuple[Operator, str | None]:
    """The new operator, and the generated password when none was given (shown once, never stored)."""
    email = rules.normalise_email(email)
    parsed = rules.parse_role(role)
    generated = None
    if password is None:
        password = generated = rules.new_password()
    rules.check_password(password)
    name = (name or "").strip() or email.split("@", 1)[0]
    if len(name) > 200:
        raise InvalidInput("staff.name.length", "An operator's name is at most 200 characters.")
    if (await session.exec(select(Operator).where(Operator.email == email))).first() is not None:
        raise Conflict("staff.operator.email_taken", f"An operator with email {email} exists already.")
    password_hash = await asyncio.to_thread(rules.hash_password, password)
    row = Operator(
        id=random_id("OP"),
        email=email,
        name=name,
        role=parsed.value,
        password_hash=password_hash,
        created_by=ctx.actor,
    )
    session.add(row)
    record(session, ctx, "operator.created", "operator", row.id, {"email": email, "role": parsed.value})
    await session.flush()
    await session.refresh(row)
    return row, generated


async def authenticate(session: AsyncSession, ctx: RequestContext, email: str, password: str) -> Login:
    """Check a password. Five wrong ones in a row lock the account for 15 minutes; a locked or
    disabled account is refused even with the right password. An unknown email costs one argon2
    verification too. Failures are audited on the account; the caller must commit them."""
    try:
        email = rules.normalise_email(email)
    except InvalidInput:
        email = ""
    if len(password) > rules.MAX_PASSWORD:
        password = password[: rules.MAX_PASSWORD + 1]  # still wrong; never hashed at full length
    op = None
    if email:
        op = (await session.exec(select(Operator).where(Operator.email == email).with_for_update())).first()
    if op is None:
        await asyncio.to_thread(rules.verify_password, rules.decoy_hash(), password)
        return Login(None, "unknown")
    now = await _now(session)
    refused = (
        "disabled" if op.disabled_at is not None else "locked" if rules.locked(op.locked_until, now) else None
    )
    if refused:
        await asyncio.to_thread(rules.verify_password, rules.decoy_hash(), password)
        record(
            session, ctx, "operator.login_refused", "operator", op.id, {"email": op.email, "reason": refused}
        )
        return Login(None, refused)
    good = len(password) <= rules.MAX_PASSWORD and await asyncio.to_thread(
        rules.verify_password, op.password_hash, password
    )
    if not good:
        op.failed_attempts += 1
        payload = {"email": op.email, "attempts": op.failed_attempts}
        record(session, ctx, "operator.login_failed", "operator", op.id, payload)
        if op.failed_attempts >= rules.MAX_FAILURES:
            op.locked_until = now + rules.LOCKOUT
            op.failed_attempts = 0
            record(
                session,
                ctx,
                "operator.locked",
                "operator",
                op.id,
                {"email": op.email, "until": op.locked_until.isoformat()},
            )
        session.add(op)
        await session.flush()
        return Login(None, "wrong_password")
    if rules.hasher().check_needs_rehash(op.password_hash):
        op.password_hash = await asyncio.to_thread(rules.hash_password, password)
    op.failed_attempts = 0
    op.locked_until = None
    op.last_login_at = now
    session.add(op)
    record(session, ctx, "operator.logged_in", "operator", op.id, {"email": op.email})
    await session.flush()
    await session.refresh(op)
    return Login(op, "ok")


async def get_operator(session: AsyncSession, operator_id: str) -> Operator:
    op = await session.get(Operator, operator_id)
    if op is None:
        raise NotFound("staff.operator.not_found", f"No operator {operator_id}.")
    return op


async def find(session: AsyncSession, ref: str) -> Operator:
    """By id (OP-…) or by email."""
    if "@" not in ref:
        return await get_operator(session, ref)
    try:
        email = rules.normalise_email(ref)
    except InvalidInput:
        email = ""
    op = (await session.exec(select(Operator).where(Operator.email == email))).first()
    if op is None:
        raise NotFound("staff.operator.not_found", f"No operator has email {ref}.")
    return op


async def list_operators(session: AsyncSession) -> list[Operator]:
    return list(await session.exec(select(Operator).order_by(col(Operator.created_at), col(Operator.email))))


async def disable_operator(session: AsyncSession, ctx: RequestContext, ref: str) -> Operator:
    """Disabled operators cannot sign in and their open sessions stop working; disabling twice
    changes nothing."""
    op = await find(session, ref)
    if op.disabled_at is None:
        op.disabled_at = await _now(session)
        session.add(op)
        record(session, ctx, "operator.disabled", "operator", op.id, {"email": op.email})
        await session.flush()
        await session.refresh(op)
    return op


async def enable_operator(session: AsyncSession, ctx: RequestContext, ref: str) -> Operator:
    """Enable a disabled operator, or lift a lockout."""
    op = await find(session, ref)
    if op.disabled_at is not None or op.locked_until is not None or op.failed_attempts:
        op.disabled_at = None
        op.locked_until = None
        op.failed_attempts = 0
        session.add(op)
        record(session, ctx, "operator.enabled", "operator", op.id, {"email": op.email})
        await session.flush()
        await session.refresh(op)
    return op


async def signed_out(session: AsyncSession, ctx: RequestContext, operator_id: str) -> None:
    op = await get_operator(session, operator_id)
    record(session, ctx, "operator.logged_out", "operator", op.id, {"email": op.email})

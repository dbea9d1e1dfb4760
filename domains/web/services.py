"""Sessions, one-time login codes and rate counters of the web doors (schema `web`).

Pure storage and rules over an AsyncSession; the doors (portals/web) decide when to call them.
Times are passed in: sessions live on the wall clock (moving a test stack's business clock must not
log everyone out), login codes and rate windows on the business clock (ops/login.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domains.web.models import ACTIVE, BURNED, SUPERSEDED, USED, LoginCode, RateEvent, WebSession

SESSION_IDLE = timedelta(hours=2)
SESSION_MAX = timedelta(hours=12)
CODE_TTL = timedelta(minutes=10)
CODE_MAX_TRIES = 5
CODE_KEEP = timedelta(days=1)


def token_id(token: str) -> str:
    """The row id of a cookie token: its SHA-256, so the table never holds a usable cookie."""
    return hashlib.sha256(token.encode()).hexdigest()


# ---- sessions ---------------------------------------------------------------------------------


async def new_session(
    s: AsyncSession,
    portal: str,
    now: datetime,
    *,
    subject: str | None = None,
    email: str | None = None,
    ip: str | None = None,
    data: dict | None = None,
) -> tuple[str, WebSession]:
    """A new session and the token for its cookie (shown once, never stored)."""
    token = secrets.token_urlsafe(32)
    row = WebSession(
        id=token_id(token),
        portal=portal,
        subject=subject,
        email=email,
        csrf_token=secrets.token_urlsafe(32),
        data=dict(data or {}),
        ip=ip,
        created_at=now,
        last_seen_at=now,
        authenticated_at=now if subject else None,
        expires_at=now + SESSION_MAX,
    )
    s.add(row)
    await s.flush()
    return token, row


async def load_session(s: AsyncSession, portal: str, token: str, now: datetime) -> WebSession | None:
    """The live session of this cookie token on this portal, touched; None when unknown or expired
    (an expired one is deleted)."""
    if not token or len(token) > 200:
        return None
    row = await s.get(WebSession, token_id(token))
    if row is None or row.portal != portal:
        return None
    if row.expires_at <= now or row.last_seen_at + SESSION_IDLE <= now:
        await s.delete(row)
        return None
    if now - row.last_seen_at > timedelta(minutes=1):  # one write a minute at most per session
        row.last_seen_at = now
        s.add(row)
    return row


async def end_session(s: AsyncSession, session_id: str) -> None:
    await s.exec(delete(WebSession).where(col(WebSession.id) == session_id))  # type: ignore[call-overload]


async def end_sessions_of(s: AsyncSession, portal: str, subject: str) -> int:
    """Every session of one person on one portal (an operator disabled, a customer closed)."""
    result = await s.exec(  # type: ignore[call-overload]
        delete(WebSession).where(col(WebSession.portal) == portal, col(WebSession.subject) == subject)
    )
    return result.rowcount or 0


async def prune_sessions(s: AsyncSession, now: datetime) -> int:
    result = await s.exec(  # type: ignore[call-overload]
        delete(WebSession).where(
            (col(WebSession.expires_at) <= now) | (col(WebSession.last_seen_at) <= now - SESSION_IDLE)
        )
    )
    return result.rowcount or 0


# ---- rate counters ----------------------------------------------------------------------------


async def count_recent(s: AsyncSession, bucket: str, key: str, since: datetime) -> int:
    found = await s.exec(
        select(func.count())
        .select_from(RateEvent)
        .where(RateEvent.bucket == bucket, RateEvent.key == key, col(RateEvent.at) > since)
    )
    return int(found.one())


async def count_event(s: AsyncSession, bucket: str, key: str, now: datetime, keep: timedelta) -> None:
    """Count one attempt; rows of this key older than `keep` go at the same time."""
    await s.exec(  # type: ignore[call-overload]
        delete(RateEvent).where(
            col(RateEvent.bucket) == bucket, col(RateEvent.key) == key, col(RateEvent.at) <= now - keep
        )
    )
    s.add(RateEvent(bucket=bucket, key=key, at=now))


# ---- login codes ------------------------------------------------------------------------------


def code_hash(secret: bytes, portal: str, email: str, code: str) -> str:
    """HMAC-SHA256 over portal, address and code: the same code for two addresses hashes apart,
    and a copy of the table without the secret cannot be searched through a million codes."""
    message = f"{portal}\x00{email.lower()}\x00{code}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


async def issue_code(
    s: AsyncSession,
    secret: bytes,
    portal: str,
    email: str,
    now: datetime,
    *,
    subject: str | None,
    ip: str | None,
) -> tuple[str, LoginCode]:
    """A new code for this address; any code still active for it stops working."""
    email = email.lower()
    # Codes are worth keeping a day at most (what was asked, from where); older ones go here.
    await s.exec(delete(LoginCode).where(col(LoginCode.created_at) < now - CODE_KEEP))  # type: ignore[call-overload]
    await s.exec(  # type: ignore[call-overload]
        update(LoginCode)
        .where(col(LoginCode.portal) == portal, col(LoginCode.email) == email, col(LoginCode.state) == ACTIVE)
        .values(state=SUPERSEDED)
    )
    code = new_code()
    row = LoginCode(
        portal=portal,
        email=email,
        subject=subject,
        code_hash=code_hash(secret, portal, email, code),
        ip=ip,
        created_at=now,
        expires_at=now + CODE_TTL,
    )
    s.add(row)
    await s.flush()
    return code, row


@dataclass(frozen=True)
class CodeCheck:
    ok: bool
    reason: str  # ok | wrong | burned | expired | none
    subject: str | None = None
    tries_left: int = 0


async def check_code(
    s: AsyncSession, secret: bytes, portal: str, email: str, code: str, now: datetime
) -> CodeCheck:
    """Check a code typed for this address against its active code (locked for the check). A right
    code is used up; a wrong one counts, and the CODE_MAX_TRIES-th wrong one burns it."""
    email = email.lower()
    row = (
        await s.exec(
            select(LoginCode)
            .where(LoginCode.portal == portal, LoginCode.email == email, LoginCode.state == ACTIVE)
            .order_by(col(LoginCode.id).desc())
            .limit(1)
            .with_for_update()
        )
    ).first()
    if row is None:
        return CodeCheck(False, "none")
    if row.expires_at <= now:
        return CodeCheck(False, "expired")
    typed = code.strip()
    if (
        len(typed) == 6
        and typed.isdigit()
        and hmac.compare_digest(row.code_hash, code_hash(secret, portal, email, typed))
    ):
        row.state = USED
        row.used_at = now
        s.add(row)
        return CodeCheck(True, "ok", subject=row.subject)
    row.attempts += 1
    if row.attempts >= CODE_MAX_TRIES:
        row.state = BURNED
    s.add(row)
    if row.state == BURNED:
        return CodeCheck(False, "burned")
    return CodeCheck(False, "wrong", tries_left=CODE_MAX_TRIES - row.attempts)

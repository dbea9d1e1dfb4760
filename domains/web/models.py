"""The web doors' own state (schema `web`): browser sessions, one-time login codes, rate counters.

- `session`: one row per browser session of a portal. The cookie holds a random token; the row is
  keyed by its SHA-256, so a read of this table gives no live cookie. `subject` is who signed in
  (a CUST- id on the self-serve portal, an operator id on the cockpit), NULL before login. Each
  session carries its own CSRF token, which every form sends back.
- `login_code`: a 6-digit code sent by email, stored only as an HMAC-SHA256 under the server secret
  (BSS_PORTAL_SECRET); it expires, and too many wrong tries burn it.
- `rate_event`: one row per counted attempt (a code asked for, a wrong code) for the per-email and
  per-address limits; old rows are pruned as new ones come in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, Index, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

SCHEMA = {"schema": "web"}

ACTIVE, USED, BURNED, SUPERSEDED = "active", "used", "burned", "superseded"
CODE_STATES = (ACTIVE, USED, BURNED, SUPERSEDED)


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class WebSession(SQLModel, table=True):
    __tablename__ = "session"
    __table_args__ = (Index("ix_web_session_subject", "portal", "subject"), SCHEMA)

    id: str = Field(primary_key=True, max_length=64)  # sha256 hex of the cookie's token
    portal: str = Field(max_length=20)  # selfserve | cockpit
    subject: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=254)
    csrf_token: str = Field(max_length=64)
    data: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    )
    ip: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts()
    last_seen_at: datetime = _ts()
    authenticated_at: datetime | None = _ts(nullable=True)
    expires_at: datetime = _ts()


class LoginCode(SQLModel, table=True):
    __tablename__ = "login_code"
    __table_args__ = (
        CheckConstraint(f"state IN ({', '.join(repr(s) for s in CODE_STATES)})", name="ck_login_code_state"),
        Index("ix_web_login_code_email", "portal", "email", "state"),
        SCHEMA,
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    portal: str = Field(max_length=20)
    email: str = Field(max_length=254)  # lower-case
    subject: str | None = Field(default=None, max_length=64)  # the customer it logs in, if any
    code_hash: str = Field(max_length=64)  # HMAC-SHA256 hex over (email, code)
    state: str = Field(default=ACTIVE, max_length=12)
    attempts: int = 0
    ip: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    used_at: datetime | None = _ts(nullable=True)


class RateEvent(SQLModel, table=True):
    __tablename__ = "rate_event"
    __table_args__ = (Index("ix_web_rate_event_key", "bucket", "key", "at"), SCHEMA)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    bucket: str = Field(max_length=30)  # code_email | code_ip | verify_ip | ...
    key: str = Field(max_length=254)
    at: datetime = _ts()

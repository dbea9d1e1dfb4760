from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, func
from sqlmodel import Field, SQLModel


class ApiToken(SQLModel, table=True):
    """An API token: only its SHA-256 is kept; the token itself is shown once, when created.

    A name is never reused, even after revocation, so an identity in the audit log always means
    one token.
    """

    __tablename__ = "api_token"
    __table_args__ = {"schema": "access"}

    name: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=20)
    token_sha256: str = Field(max_length=64, unique=True)
    # Wall-clock times (the database's), not business time: a security record must not move with
    # a test clock.
    created_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )
    created_by: str = Field(max_length=200)
    last_used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, func
from sqlmodel import Field, SQLModel


class Operator(SQLModel, table=True):
    """A person who signs in to the operator cockpit: an email, a role and an argon2 password hash.

    Operators are never deleted, only disabled, so the name in an audit row always means one person.
    Times are the database's wall clock, not business time: a lockout must not move with a test clock.
    """

    __tablename__ = "operator"
    __table_args__ = {"schema": "staff"}

    id: str = Field(primary_key=True, max_length=16)
    email: str = Field(max_length=254, unique=True)  # stored lower-case
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    password_hash: str = Field(max_length=512)
    failed_attempts: int = Field(default=0)
    locked_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    disabled_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )
    created_by: str = Field(max_length=200)
    last_login_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))

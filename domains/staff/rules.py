"""Operator roles, emails, passwords and the lockout rule (pure; no database here)."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import InvalidInput


class StaffRole(StrEnum):
    CSR = "csr"  # customer care: search, 360, order queue, lines
    SUPERVISOR = "supervisor"  # a csr who may also resolve or retry stuck work
    ADMIN = "admin"  # everything, operator accounts and the catalogue included


STAFF_ROLES = tuple(r.value for r in StaffRole)
RANK = {StaffRole.CSR: 0, StaffRole.SUPERVISOR: 1, StaffRole.ADMIN: 2}
MAX_FAILURES = 5  # wrong passwords in a row before the account locks
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 10
MAX_PASSWORD = 256  # longer inputs are refused before hashing (no hashing-cost attack)
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def parse_role(value: str) -> StaffRole:
    try:
        return StaffRole(value.strip().lower())
    except ValueError:
        raise InvalidInput(
            "staff.role.unknown", f"Unknown operator role {value!r}; use one of {', '.join(STAFF_ROLES)}."
        ) from None


def at_least(role: str, needed: StaffRole) -> bool:
    return RANK[StaffRole(role)] >= RANK[needed]


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not EMAIL.match(email):
        raise InvalidInput("staff.email.invalid", "An operator's email looks like name@example.com.")
    return email


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            "staff.password.length", f"A password is {MIN_PASSWORD}-{MAX_PASSWORD} characters long."
        )
    return password


def new_password() -> str:
    """A generated password: 96 random bits, 16 characters, shown once."""
    return secrets.token_urlsafe(12)


@cache
def hasher() -> PasswordHasher:
    # argon2id with the library's defaults (RFC 9106 low-memory profile).
    return PasswordHasher()


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def decoy_hash() -> str:
    """Verified against when the email is unknown, so a miss costs what a wrong password costs."""
    return hash_password(secrets.token_urlsafe(16))


def locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and locked_until > now

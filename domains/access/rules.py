"""Roles of API tokens, and what a token looks like.

Tokens are 256 random bits, so a plain SHA-256 of the token is enough to store: nobody can search
that space from the hash, and a fast hash lets every request find its token by an indexed lookup.
A slow password hash (bcrypt, argon2) is for secrets people choose, which these are not.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from enum import StrEnum

from core.errors import InvalidInput


class Role(StrEnum):
    ADMIN = "admin"  # everything
    OPERATOR = "operator"  # customers, orders, lines, tickets, top-ups, reads
    CHANNEL = "channel"  # a portal or an agent: acts for the actor it names in X-BSS-Actor
    NETWORK = "network"  # usage ingestion and device events
    READONLY = "readonly"  # GET only


ROLES = tuple(r.value for r in Role)
TOKEN_PREFIX = "bss_"
# Longer than any token we make or accept from the environment; longer headers are refused unread.
MAX_TOKEN_LENGTH = 512
NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
# Identities the platform itself uses in the audit log; a token must not pass for them.
RESERVED_NAMES = frozenset({"default", "system", "worker", "anonymous", "admin"})


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise InvalidInput(
            "access.role.unknown", f"Unknown role {value!r}; use one of {', '.join(ROLES)}."
        ) from None


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InvalidInput(
            "access.token.name_invalid",
            "A token name is 2-64 characters: lower-case letters, digits, '.', '_', '@' or '-'.",
        )
    if name in RESERVED_NAMES:
        raise InvalidInput("access.token.name_reserved", f"The name {name!r} is reserved; choose another.")
    return name


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

"""Bearer tokens: each names an identity (written into the audit log) and a role (api/permissions.py).

Where tokens come from:
- the development token of `bss up` (<data dir>/api-token, or BSS_API_TOKEN): identity `default`,
  role `admin`;
- `BSS_<NAME>_API_TOKEN` (at least 32 characters): identity `<name>` (BSS_PORTAL_API_TOKEN -> `portal`),
  role `admin` unless `BSS_<NAME>_API_ROLE` names another (e.g. BSS_PORTAL_API_ROLE=channel): whoever
  sets the server's environment already holds every key, so the default grants no more than that;
- `bss admin token create --name NAME --role ROLE`: kept in Postgres (access.api_token) as a SHA-256
  (domains/access/rules.py says why that is enough), looked up on use. A lookup is remembered for
  CACHE_SECONDS at most, and a revocation through this process forgets it at once, so a revoked
  token is refused at once here and within CACHE_SECONDS by any other API process.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass

from core.db import SessionFactory
from core.settings import Settings
from domains.access.rules import MAX_TOKEN_LENGTH, TOKEN_PREFIX, Role, digest, parse_role

log = logging.getLogger("bss.api.auth")

MIN_TOKEN_LENGTH = 32
CACHE_SECONDS = 2.0
CACHE_SIZE = 4096
# Last-used times are written at most this often per token: a write per request would cost more
# than the answer is worth.
TOUCH_SECONDS = 60.0
# A token is printable ASCII without spaces (RFC 6750's token68 and a little more, for env tokens).
TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    source: str  # development | environment | database


def load_tokens(settings: Settings) -> dict[str, Principal]:
    """The tokens configured outside the database, by SHA-256."""
    tokens: dict[str, Principal] = {}
    dev = settings.api_token
    if not dev and settings.token_file.exists():
        dev = settings.token_file.read_text().strip()
    if dev:
        tokens[digest(dev)] = Principal("default", Role.ADMIN, "development")
    for key, value in os.environ.items():
        if key.startswith("BSS_") and key.endswith("_API_TOKEN") and key != "BSS_API_TOKEN" and value:
            if len(value) < MIN_TOKEN_LENGTH:
                raise ValueError(f"{key} is shorter than {MIN_TOKEN_LENGTH} characters; use a longer token.")
            if len(value) > MAX_TOKEN_LENGTH or not TOKEN_CHARS.fullmatch(value):
                raise ValueError(
                    f"{key} must be printable ASCII without spaces, at most {MAX_TOKEN_LENGTH} long."
                )
            stem = key[: -len("_API_TOKEN")]
            role_text = os.environ.get(f"{stem}_API_ROLE", Role.ADMIN.value)
            try:
                role = Role(role_text.strip().lower())
            except ValueError:
                raise ValueError(
                    f"{stem}_API_ROLE={role_text!r} is not a role; use one of {list(Role)}."
                ) from None
            tokens[digest(value)] = Principal(stem[len("BSS_") :].lower(), role, "environment")
    return tokens


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None for anything else, whatever
    its length, characters or encoding."""
    if not header or len(header) > MAX_TOKEN_LENGTH + 16:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not TOKEN_CHARS.fullmatch(value):
        return None
    return value


class TokenRegistry:
    """Finds the principal of a presented token: configured tokens first, then the database."""

    def __init__(self, settings: Settings, db: SessionFactory | None) -> None:
        self.static = load_tokens(settings)
        self.db = db
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._touched: dict[str, float] = {}

    @property
    def configured_names(self) -> set[str]:
        return {p.name for p in self.static.values()}

    async def identify(self, header: str | None) -> Principal | None:
        token = bearer(header)
        if token is None:
            return None
        key = digest(token)
        found = self.static.get(key)
        if found is not None:
            return found
        if self.db is None or not token.startswith(TOKEN_PREFIX):
            return None
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        principal = await self._lookup(key, now)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = (now + CACHE_SECONDS, principal)
        return principal

    async def _lookup(self, key: str, now: float) -> Principal | None:
        from domains.access import services

        assert self.db is not None
        async with self.db() as s:
            row = await services.find(s, key)
            if row is None or row.revoked_at is not None:
                return None
            principal = Principal(row.name, parse_role(row.role), "database")
            if self._touched.get(row.name, 0.0) + TOUCH_SECONDS <= now:
                try:
                    await services.touch(s, row.name)
                    await s.commit()
                    self._touched[row.name] = now
                except Exception:  # the last-used time is a courtesy; never refuse a request for it
                    log.warning("could not record the last use of token %s", row.name, exc_info=True)
        return principal

    def forget(self, name: str) -> None:
        """After a revocation: this process asks the database again on the token's next use."""
        self._cache = {k: v for k, v in self._cache.items() if v[1] is None or v[1].name != name}

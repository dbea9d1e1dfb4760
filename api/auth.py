"""Bearer tokens, each mapped to a service identity that lands in the audit log.

The development token of `bss up` (in <data dir>/api-token) is identity `default`;
`BSS_<NAME>_API_TOKEN` adds a token for identity `<name>` (e.g. BSS_PORTAL_API_TOKEN -> portal).
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from core.settings import Settings

MIN_TOKEN_LENGTH = 32


def ensure_dev_token(path: Path) -> str:
    """Generate the development token once; later starts reuse it."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def load_tokens(settings: Settings) -> dict[str, str]:
    tokens: dict[str, str] = {}
    if settings.api_token:
        tokens[settings.api_token] = "default"
    elif settings.token_file.exists():
        tokens[settings.token_file.read_text().strip()] = "default"
    for key, value in os.environ.items():
        if key.startswith("BSS_") and key.endswith("_API_TOKEN") and key != "BSS_API_TOKEN" and value:
            if len(value) < MIN_TOKEN_LENGTH:
                raise ValueError(f"{key} is shorter than {MIN_TOKEN_LENGTH} characters; use a longer token.")
            tokens[value] = key[len("BSS_") : -len("_API_TOKEN")].lower()
    return tokens


def identify(tokens: dict[str, str], header: str | None) -> str | None:
    if not header or not header.lower().startswith("bearer "):
        return None
    presented = header[7:].strip()
    for token, identity in tokens.items():
        if hmac.compare_digest(token, presented):
            return identity
    return None

"""Signed KYC attestations and the keyed hash of document numbers (no I/O but the key files).

A KYC provider that verified a person's identity document signs what it attests with its Ed25519
key; the BSS holds only the provider's public key (BSS_KYC_PUBLIC_KEY, PEM or the raw 32 bytes in
base64) and stores an attestation only once its signature verifies. What is signed is
`attestation_message(fields)`: a fixed prefix and the canonical JSON (sorted keys, no spaces,
UTF-8) of the attested fields, the customer id included, so an attestation cannot be replayed for
another customer:

    bss-kyc-attestation/v1\\n{"customerId":"CUST-…","documentCountry":"SG","documentNumber":"S1234567D",…}

The signature travels in the request as base64 (`signature`). Without a configured key, the
prebaked development provider's key is used: generated into <BSS_DATA_DIR>/kyc-dev-provider.pem on
first use, and `bss customer kyc` signs with it on the same machine.

The document number itself is never stored: only HMAC-SHA256(server secret, `NUMBER|COUNTRY`), the
number normalised. Equal documents still collide (one identity per customer), but without the
secret (BSS_KYC_HMAC_SECRET, or <BSS_DATA_DIR>/kyc-hmac-secret generated for development) nobody
can test a guessed number against the table, as one could against a plain or unsalted hash of a
number space as small as identity numbers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.errors import PolicyViolation

PREFIX = b"bss-kyc-attestation/v1\n"
# The fields a signature covers (those present); `attestation` is the provider's own payload.
SIGNED_FIELDS = (
    "customerId",
    "documentType",
    "documentNumber",
    "documentCountry",
    "verifiedBy",
    "dateOfBirth",
    "nationality",
    "reference",
    "attestation",
)
DEV_KEY_FILE = "kyc-dev-provider.pem"
HMAC_SECRET_FILE = "kyc-hmac-secret"


def attestation_message(fields: dict[str, Any]) -> bytes:
    body = {k: fields[k] for k in SIGNED_FIELDS if fields.get(k) is not None}
    return PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(private_key: Ed25519PrivateKey, fields: dict[str, Any]) -> str:
    return base64.b64encode(private_key.sign(attestation_message(fields))).decode()


def verify(public_key: Ed25519PublicKey, fields: dict[str, Any], signature: str | None) -> None:
    """Raises a 422 unless `signature` is the provider's over these fields."""
    if not signature:
        raise PolicyViolation(
            "kyc.attestation.uncorroborated", "The attestation is not signed by the KYC provider."
        )
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, attestation_message(fields))
    except (InvalidSignature, binascii.Error, ValueError):
        raise PolicyViolation(
            "kyc.attestation.signature_invalid",
            "The attestation's signature does not verify with the KYC provider's key; nothing was stored.",
        ) from None


def load_public_key(value: str) -> Ed25519PublicKey:
    """PEM (SubjectPublicKeyInfo) or the raw 32-byte key in base64."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("BSS_KYC_PUBLIC_KEY is not an Ed25519 key")
        return key
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _create_secret_file(path: Path, content: bytes) -> None:
    """Write a new secret file readable by its owner only; a concurrent creator's file wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as f:
        f.write(content)


def dev_provider_key(data_dir: Path) -> Ed25519PrivateKey:
    """The prebaked development provider's signing key, generated on first use."""
    path = Path(data_dir) / DEV_KEY_FILE
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _create_secret_file(path, pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def dev_hmac_secret(data_dir: Path) -> bytes:
    path = Path(data_dir) / HMAC_SECRET_FILE
    if not path.exists():
        _create_secret_file(path, secrets.token_hex(32).encode())
    return path.read_bytes().strip()


def document_hash(normalized_number: str, country: str, secret: bytes) -> str:
    """HMAC-SHA256(secret, `NUMBER|COUNTRY`) in hex (64 characters)."""
    if not secret:
        raise ValueError("the KYC HMAC secret is empty")
    message = f"{normalized_number}|{country.strip().upper()}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()

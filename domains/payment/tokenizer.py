"""The development tokenizer: a card number goes in, a token comes out, the number is forgotten.

Stands in for a PSP's vault. The card number `4000000000000002` becomes a token containing
`DECLINE`, which the mock gateway declines (CONTRACT.md), so a decline can be rehearsed end to end.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from core.errors import InvalidInput

DECLINING_CARD = "4000000000000002"
BRANDS = ("visa", "mastercard", "amex", "unknown")


@dataclass(frozen=True)
class CardToken:
    token: str
    last4: str
    brand: str

    def __repr__(self) -> str:  # keep it printable anywhere: there is nothing secret in it
        return f"CardToken({self.token!r}, last4={self.last4!r}, brand={self.brand!r})"


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def detect_brand(digits: str) -> str:
    """Brand from the BIN: 4 visa; 51–55 and 2221–2720 mastercard; 34, 37 amex."""
    if digits.startswith("4"):
        return "visa"
    if 51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720:
        return "mastercard"
    if digits[:2] in ("34", "37"):
        return "amex"
    return "unknown"


def clean_card_number(card_number: str) -> str:
    """Digits only; refuses (without echoing the number) anything that cannot be a card."""
    digits = re.sub(r"[\s-]", "", card_number or "")
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise InvalidInput("payment_method.add.card_number_invalid", "A card number has 12 to 19 digits.")
    if not luhn_valid(digits):
        raise InvalidInput(
            "payment_method.add.card_number_invalid", "That card number is not valid (check digit)."
        )
    return digits


def tokenize(card_number: str) -> CardToken:
    digits = clean_card_number(card_number)
    prefix = "tok_DECLINE_" if digits == DECLINING_CARD else "tok_"
    return CardToken(token=prefix + uuid.uuid4().hex, last4=digits[-4:], brand=detect_brand(digits))


_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{6,120}$")


def check_token(token: str) -> str:
    """A token handed in by a channel (tokenizedCard): opaque, but never a card number in disguise."""
    token = (token or "").strip()
    if not _TOKEN.match(token):
        raise InvalidInput(
            "payment_method.add.token_invalid", "A token is 6 to 120 letters, digits, '_' or '-'."
        )
    if token.isdigit():
        raise InvalidInput(
            "payment_method.add.token_invalid",
            "That looks like a card number, not a token; send it as a bankCard.",
        )
    return token

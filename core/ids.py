"""Business identifiers (CONTRACT.md): sequences for orders and lines, random hex for people."""

from __future__ import annotations

import secrets

from sqlmodel.ext.asyncio.session import AsyncSession

from core.db import next_sequence

# prefix -> (schema, sequence); the sequences are created by migration 0000.
SEQUENCED = {
    "ORD": ("ordering", "product_order_seq"),
    "OI": ("ordering", "order_item_seq"),
    "SO": ("service_ordering", "service_order_seq"),
    "SVC": ("service_ordering", "service_seq"),
    "PTK": ("service_ordering", "provisioning_task_seq"),
    "SUB": ("subscription", "subscription_seq"),
    "PM": ("payment", "payment_method_seq"),
    "PAY": ("payment", "payment_seq"),
    "UE": ("usage", "usage_event_seq"),
}


async def next_id(session: AsyncSession, prefix: str) -> str:
    schema, seq = SEQUENCED[prefix]
    return f"{prefix}-{await next_sequence(session, schema, seq):06d}"


def random_id(prefix: str) -> str:
    """CUST-, CASE-, TKT-, PORT-, PTY-, CM-: not guessable, 8 hex digits."""
    return f"{prefix}-{secrets.token_hex(4)}"

"""Business identifiers (CONTRACT.md): sequences for orders and lines, random hex for people."""

from __future__ import annotations

import secrets

from sqlmodel.ext.asyncio.session import AsyncSession

from core.db import next_sequences

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
    (one,) = await next_ids(session, prefix)
    return one


async def next_ids(session: AsyncSession, *prefixes: str) -> list[str]:
    """One id per prefix, in order, from one round trip (`next_ids(s, "SO", "SVC", "SVC")`)."""
    values = await next_sequences(session, [SEQUENCED[p] for p in prefixes])
    return [f"{p}-{v:06d}" for p, v in zip(prefixes, values, strict=True)]


def id_sql(prefix: str) -> str:
    """The next id as an SQL scalar (`PAY-000001`, wider past 999999 as next_id), for an INSERT
    that takes its id from the sequence in the same statement (no round trip of its own)."""
    schema, seq = SEQUENCED[prefix]
    return (
        f"(SELECT '{prefix}-' || CASE WHEN v < 1000000 THEN lpad(v::text, 6, '0') ELSE v::text END "
        f"FROM nextval('{schema}.{seq}') AS v)"
    )


def random_id(prefix: str) -> str:
    """CUST-, CASE-, TKT-, PORT-, PTY-, CM-: not guessable, 8 hex digits."""
    return f"{prefix}-{secrets.token_hex(4)}"

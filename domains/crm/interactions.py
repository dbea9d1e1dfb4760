"""Interactions (TMF683 partyInteraction): the customer's file of contacts and changes.

Every CRM write calls `log` in its own transaction, so the file never misses a write that
committed and never shows one that did not.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.ids import random_id
from domains.crm import rules
from domains.crm.models import Interaction


def log(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    customer_id: str | None,
    reason: str,
    summary: str,
    body: str = "",
    agent_id: str | None = None,
    case_id: str | None = None,
    ticket_id: str | None = None,
) -> Interaction:
    interaction = Interaction(
        id=random_id("INT"),
        customer_id=customer_id,
        channel=ctx.channel[:40],
        direction="inbound" if ctx.channel in rules.INBOUND_CHANNELS else "outbound",
        reason=reason[:60],
        summary=summary[:500],
        body=body[:4000],
        actor=ctx.actor[:200],
        agent_id=agent_id,
        related_case_id=case_id,
        related_ticket_id=ticket_id,
        occurred_at=clock.now(),
    )
    session.add(interaction)
    return interaction


async def list_interactions(
    session: AsyncSession,
    *,
    customer_id: str | None = None,
    case_id: str | None = None,
    ticket_id: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[Interaction], int]:
    """Newest first, with the total count."""
    from sqlalchemy import func

    query = select(Interaction)
    if customer_id is not None:
        query = query.where(Interaction.customer_id == customer_id)
    if case_id is not None:
        query = query.where(Interaction.related_case_id == case_id)
    if ticket_id is not None:
        query = query.where(Interaction.related_ticket_id == ticket_id)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(
        query.order_by(col(Interaction.occurred_at).desc(), col(Interaction.id)).offset(offset).limit(limit)
    )
    return list(rows.all()), total


async def get_interaction(session: AsyncSession, interaction_id: str) -> Interaction:
    from core.errors import NotFound

    found = await session.get(Interaction, interaction_id)
    if found is None:
        raise NotFound("interaction.not_found", f"No interaction {interaction_id}.")
    return found

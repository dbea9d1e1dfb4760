"""The agent's conversations in Postgres (schema `agent`, domains/agent/models.py).

A session belongs to the person who opened it: every read and write names the actor, and another
actor's session is answered exactly like one that does not exist (404 `agent.session.not_found`).
At most one proposal per session is pending: a new one supersedes (expires) the previous.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from core.clock import clock
from core.db import transaction
from core.errors import InvalidInput, NotFound, PolicyViolation
from core.ids import random_id
from domains.agent.models import PROFILES, Conversation, Message, Proposal
from ops.runtime import Runtime

SESSION_ID = re.compile(r"^SESS-[0-9a-f]{8}$")
PROPOSAL_ID = re.compile(r"^PROP-[0-9a-f]{8}$")
# A proposal not confirmed within this (business) time expires: what it describes may be stale.
PROPOSAL_TTL = timedelta(minutes=30)
TITLE_MAX = 120
CONTENT_MAX = 20_000


def _not_found(session_id: str) -> NotFound:
    return NotFound(
        "agent.session.not_found", f"No conversation {session_id[:20]}.", session_id=session_id[:20]
    )


async def new_session(
    rt: Runtime, *, actor: str, profile: str, customer_id: str | None = None, title: str = ""
) -> str:
    """A new conversation of `actor`; a customer profile is bound to `customer_id` for good."""
    if profile not in PROFILES:
        raise InvalidInput("agent.session.profile_invalid", f"A profile is one of {', '.join(PROFILES)}.")
    if not actor or not actor.strip():
        raise InvalidInput("agent.session.actor_required", "A conversation belongs to someone.")
    if profile == "customer" and not customer_id:
        raise InvalidInput("agent.session.customer_required", "A customer conversation names its customer.")
    now = clock.now()
    session_id = random_id("SESS")
    async with transaction(rt.db) as s:
        s.add(
            Conversation(
                id=session_id,
                actor=actor.strip()[:254],
                profile=profile,
                customer_id=customer_id,
                title=title.strip()[:TITLE_MAX],
                created_at=now,
                updated_at=now,
            )
        )
    return session_id


async def list_sessions(rt: Runtime, actor: str, *, limit: int = 50) -> list[Conversation]:
    """The actor's conversations, the latest used first."""
    async with rt.db() as s:
        rows = await s.exec(
            select(Conversation)
            .where(Conversation.actor == actor)
            .order_by(col(Conversation.updated_at).desc(), col(Conversation.id))
            .limit(max(1, min(limit, 200)))
        )
        return list(rows.all())


async def _owned(s: Any, session_id: str, actor: str, *, for_update: bool = False) -> Conversation:
    if not isinstance(session_id, str) or not SESSION_ID.match(session_id):
        raise _not_found(str(session_id))
    stmt = select(Conversation).where(Conversation.id == session_id)
    if for_update:
        stmt = stmt.with_for_update()
    conv = (await s.exec(stmt)).first()
    if conv is None or conv.actor != actor:
        raise _not_found(session_id)
    return conv


async def get_session(rt: Runtime, session_id: str, actor: str) -> Conversation:
    async with rt.db() as s:
        return await _owned(s, session_id, actor)


async def set_focus(rt: Runtime, session_id: str, actor: str, customer_id: str | None) -> Conversation:
    """Pin a customer on an operator's conversation (/focus CUST-…), or unpin with None. A customer
    conversation is bound to its customer for good."""
    from domains.crm.services import get_customer

    async with transaction(rt.db) as s:
        conv = await _owned(s, session_id, actor, for_update=True)
        if conv.profile != "operator":
            raise PolicyViolation(
                "agent.focus.customer_profile", "A customer conversation stays on its own customer."
            )
        if customer_id:
            customer_id = (await get_customer(s, customer_id.strip()[:20])).id  # NotFound for an unknown id
        conv.customer_id = customer_id or None
        conv.updated_at = clock.now()
        s.add(conv)
    return conv


async def history(rt: Runtime, session_id: str, actor: str) -> list[Message]:
    """Every message of the conversation, in order."""
    async with rt.db() as s:
        await _owned(s, session_id, actor)
        rows = await s.exec(select(Message).where(Message.session_id == session_id).order_by(col(Message.id)))
        return list(rows.all())


async def pending_proposal(rt: Runtime, session_id: str, actor: str) -> Proposal | None:
    async with rt.db() as s:
        await _owned(s, session_id, actor)
        return await _pending(s, session_id)


async def proposals(rt: Runtime, session_id: str, actor: str) -> list[Proposal]:
    async with rt.db() as s:
        await _owned(s, session_id, actor)
        rows = await s.exec(
            select(Proposal).where(Proposal.session_id == session_id).order_by(col(Proposal.created_at))
        )
        return list(rows.all())


async def _pending(s: Any, session_id: str) -> Proposal | None:
    rows = await s.exec(
        select(Proposal)
        .where(Proposal.session_id == session_id, Proposal.state == "pending")
        .order_by(col(Proposal.created_at).desc())
    )
    return rows.first()


# ------------------------------------------------------------------ writes used by agent/loop.py


async def add_messages(
    rt: Runtime, session_id: str, messages: list[dict[str, Any]], *, tokens: int = 0
) -> None:
    """Append messages ({role, content, tool_calls?, tool_call_id?, name?}); the first user text
    becomes the title of an untitled conversation."""
    now = clock.now()
    async with transaction(rt.db) as s:
        conv = await s.get(Conversation, session_id, with_for_update=True)
        if conv is None:
            raise _not_found(session_id)
        for m in messages:
            s.add(
                Message(
                    session_id=session_id,
                    role=m["role"],
                    content=(m.get("content") or "")[:CONTENT_MAX],
                    tool_calls=m.get("tool_calls") or [],
                    tool_call_id=m.get("tool_call_id"),
                    name=m.get("name"),
                    created_at=now,
                )
            )
            if not conv.title and m["role"] == "user" and not (m.get("content") or "").startswith("/"):
                conv.title = " ".join((m.get("content") or "").split())[:TITLE_MAX]
        conv.updated_at = now
        conv.tokens_used = (conv.tokens_used or 0) + max(0, tokens)
        s.add(conv)


async def add_proposal(
    rt: Runtime,
    s: Any,
    *,
    session_id: str,
    tool: str,
    args: dict[str, Any],
    summary: str,
    role: str,
) -> Proposal:
    """In the caller's transaction: store the proposal and expire any earlier pending one."""
    await s.execute(
        update(Proposal)
        .where(Proposal.session_id == session_id, Proposal.state == "pending")
        .values(state="expired", decided_at=clock.now())
    )
    proposal = Proposal(
        id=random_id("PROP"),
        session_id=session_id,
        tool=tool,
        args=args,
        summary=summary,
        state="pending",
        role=role,
        created_at=clock.now(),
    )
    s.add(proposal)
    return proposal


async def take_pending(rt: Runtime, session_id: str, actor: str, state: str) -> tuple[Proposal | None, bool]:
    """Move the session's pending proposal to `state` (confirmed or cancelled), once: two /confirm
    at the same moment find it pending only once. Returns (proposal, expired): a proposal older than
    PROPOSAL_TTL is expired instead."""
    async with transaction(rt.db) as s:
        await _owned(s, session_id, actor, for_update=True)
        proposal = await _pending(s, session_id)
        if proposal is None:
            return None, False
        now = clock.now()
        expired = state == "confirmed" and now - proposal.created_at > PROPOSAL_TTL
        proposal.state = "expired" if expired else state
        proposal.decided_at = now
        proposal.decided_by = actor
        s.add(proposal)
    return proposal, expired


async def finish_proposal(rt: Runtime, proposal_id: str, *, failed: bool, result: dict[str, Any]) -> Proposal:
    async with transaction(rt.db) as s:
        proposal = await s.get(Proposal, proposal_id, with_for_update=True)
        if proposal is None:
            raise NotFound("agent.proposal.not_found", f"No proposal {proposal_id}.")
        if failed:
            proposal.state = "failed"
        proposal.result = result
        s.add(proposal)
    return proposal


def proposal_dict(p: Proposal) -> dict[str, Any]:
    return {
        "id": p.id,
        "tool": p.tool,
        "args": p.args,
        "summary": p.summary,
        "state": p.state,
        "result": p.result,
    }


def session_dict(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "profile": c.profile,
        "customer_id": c.customer_id,
        "title": c.title,
        "created_at": c.created_at.isoformat() if c.created_at else None,
        "updated_at": c.updated_at.isoformat() if c.updated_at else None,
    }

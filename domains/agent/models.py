"""The LLM agent's conversations (schema `agent`; agent/store.py reads and writes them).

- `conversation`: one chat session (`SESS-xxxxxxxx`), owned by the person behind it (an operator's
  email or name, or a CUST- id for the customer chat): another actor never sees it. The profile is
  `operator` or `customer`; `customer_id` is the customer a customer profile is bound to, or the
  customer an operator pinned with /focus.
- `message`: what was said, in order: the person's text, the model's answers with their tool
  calls, and each tool's result (role `tool`), so a session can be resumed with its context.
- `proposal`: an action the model asked for (`PROP-xxxxxxxx`): the tool, its arguments and the
  summary of exactly what will happen. Only the person's /confirm carries it out (agent/loop.py);
  `result` is what the operation returned, or the error that refused it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

SCHEMA = {"schema": "agent"}
PROFILES = ("operator", "customer")
ROLES = ("user", "assistant", "tool")
PROPOSAL_STATES = ("pending", "confirmed", "cancelled", "expired", "failed")


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def _json(default: Any) -> Any:
    return Field(
        default_factory=lambda: default.copy(),
        sa_column=Column(
            JSONB, nullable=False, server_default=text(f"'{'[]' if default == [] else '{}'}'::jsonb")
        ),
    )


def _in(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    return CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})", name=name)


class Conversation(SQLModel, table=True):
    __tablename__ = "conversation"
    __table_args__ = (
        _in("profile", PROFILES, "ck_conversation_profile"),
        Index("ix_agent_conversation_actor", "actor", "updated_at"),
        SCHEMA,
    )

    id: str = Field(primary_key=True, max_length=16)  # SESS-xxxxxxxx
    actor: str = Field(max_length=254)
    profile: str = Field(max_length=10)
    customer_id: str | None = Field(default=None, max_length=20)
    title: str = Field(default="", max_length=120)
    # What the model reported using, all turns together (the customer chat's cost cap reads it).
    tokens_used: int = Field(default=0)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        _in("role", ROLES, "ck_message_role"),
        Index("ix_agent_message_session", "session_id", "id"),
        SCHEMA,
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    session_id: str = Field(
        sa_column=Column(String(16), ForeignKey("agent.conversation.id", ondelete="CASCADE"), nullable=False)
    )
    role: str = Field(max_length=10)
    content: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # An assistant message's tool calls: [{"id", "name", "args"}].
    tool_calls: list[dict[str, Any]] = _json([])
    tool_call_id: str | None = Field(default=None, max_length=120)  # a tool message answers this call
    name: str | None = Field(default=None, max_length=80)  # the tool, for a tool message
    created_at: datetime = _ts()


class Proposal(SQLModel, table=True):
    __tablename__ = "proposal"
    __table_args__ = (
        _in("state", PROPOSAL_STATES, "ck_proposal_state"),
        Index("ix_agent_proposal_session", "session_id", "state"),
        SCHEMA,
    )

    id: str = Field(primary_key=True, max_length=16)  # PROP-xxxxxxxx
    session_id: str = Field(
        sa_column=Column(String(16), ForeignKey("agent.conversation.id", ondelete="CASCADE"), nullable=False)
    )
    tool: str = Field(max_length=80)
    args: dict[str, Any] = _json({})
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    state: str = Field(default="pending", max_length=10)
    role: str = Field(default="admin", max_length=20)  # the proposer's role when it was made
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    decided_by: str | None = Field(default=None, max_length=254)
    created_at: datetime = _ts()
    decided_at: datetime | None = _ts(nullable=True)

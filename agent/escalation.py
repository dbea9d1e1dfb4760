"""Escalation from the customer chat to a case a person owns (docs/handbook/escalation.md).

Five matters are never settled in a chat: fraud, a billing dispute, a regulator complaint, identity
recovery and bereavement. Escalating opens a case for the chat's own customer (never another: the
customer id comes from the conversation, not from the model) whose description names the category,
the conversation and the SHA-256 of its transcript, so what was said can later be proven unchanged
from the stored messages (`transcript_sha256` recomputes it).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from core.context import RequestContext

# category -> (label, case category, case priority), as the handbook's table says.
CATEGORIES: dict[str, tuple[str, str, str]] = {
    "fraud": ("Fraud", "account", "critical"),
    "billing_dispute": ("Billing dispute", "billing", "high"),
    "regulator_complaint": ("Regulator complaint", "complaint", "critical"),
    "identity_recovery": ("Identity recovery", "account", "high"),
    "bereavement": ("Bereavement", "account", "high"),
}
SUMMARY_MAX = 1000


@dataclass(frozen=True)
class Escalation:
    case_id: str
    category: str
    transcript_sha256: str
    opened: bool  # False: this conversation had already escalated this category (the same case)

    def as_result(self) -> dict[str, Any]:
        label = CATEGORIES[self.category][0]
        return {
            "case_id": self.case_id,
            "category": self.category,
            "transcript_sha256": self.transcript_sha256,
            "message": f"Case {self.case_id} ({label}) is open; a person from our team will follow up.",
        }


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def transcript_sha256(messages: list[Any]) -> str:
    """SHA-256 over the conversation's messages in order (role, content, tool calls, tool name), as
    canonical JSON: the same stored messages always give the same hash."""
    rows = [
        {
            "role": _get(m, "role"),
            "content": _get(m, "content") or "",
            "tool_calls": _get(m, "tool_calls") or [],
            "name": _get(m, "name"),
        }
        for m in messages
    ]
    canonical = json.dumps(rows, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def case_subject(category: str) -> str:
    return f"Chat escalation: {CATEGORIES[category][0]}"


async def escalate(
    rt: Any,
    ctx: RequestContext,
    *,
    session_id: str,
    customer_id: str,
    category: str,
    summary: str = "",
) -> Escalation:
    """Open (once per conversation and category) the case for this conversation's customer."""
    from agent import store
    from core.errors import InvalidInput
    from ops import crm

    if category not in CATEGORIES:
        raise InvalidInput(
            "agent.escalate.invalid_category",
            f"Category must be one of {', '.join(CATEGORIES)}; got {category!r}.",
        )
    messages = await store.history(rt, session_id, ctx.actor)
    digest = transcript_sha256(messages)
    marker = f"Conversation: {session_id}"
    label, case_category, priority = CATEGORIES[category]
    cases, _total = await crm.list_cases(rt, customer_id=customer_id, limit=200)
    for case in cases:
        if (
            case.subject == case_subject(category)
            and marker in (case.description or "")
            and case.state not in ("resolved", "closed", "cancelled")
        ):
            return Escalation(case.id, category, _hash_in(case.description) or digest, opened=False)
    description = "\n".join(
        [
            f"Escalated from the customer chat. Category: {category} ({label}).",
            marker,
            f"Transcript SHA-256: {digest} ({len(messages)} messages)",
            "",
            "Summary (as the chat put it): " + (summary.strip()[:SUMMARY_MAX] or "—"),
        ]
    )
    detail, _ = await crm.open_case(
        rt,
        ctx,
        customer_id=customer_id,
        subject=case_subject(category),
        description=description,
        priority=priority,
        category=case_category,
    )
    return Escalation(detail.case.id, category, digest, opened=True)


def _hash_in(description: str | None) -> str | None:
    for line in (description or "").splitlines():
        if line.startswith("Transcript SHA-256: "):
            return line.split()[2]
    return None


# ---- the customer chat's tool -------------------------------------------------------------------

_SESSION_IN_KEY = re.compile(r"^agent-(SESS-[0-9a-f]{8})-")
DESCRIPTION = (
    "Hand the matter to a person: open a case for this customer, with a hash of this conversation. "
    "Use it when the customer reports fraud (charges, a line or an eSIM they do not recognise, "
    "someone else using their account), disputes a charge (billing_dispute), mentions a regulator, "
    "an ombudsman or legal action (regulator_complaint), has lost access to their account or "
    "identity (identity_recovery), or tells you the account holder has died (bereavement). Do not "
    "try to settle these in the chat; tell the customer the case id it answers."
)


def escalation_tool(rt: Any, ctx: RequestContext, customer_id: str) -> Any:
    """The `escalate_to_case` tool of the customer profile, bound to `customer_id` like the others:
    the model chooses only the category and a summary. The conversation comes from the key
    agent.tools.call_tool gives every run (`agent-<SESS id>-<digest>`)."""
    from typing import Literal

    from pydantic import Field

    from agent.tools import Args, Tool
    from core.errors import InvalidInput

    class EscalateArgs(Args):
        category: Literal[
            "fraud", "billing_dispute", "regulator_complaint", "identity_recovery", "bereavement"
        ] = Field(description="Which of the five matters this is.")
        summary: str = Field("", max_length=SUMMARY_MAX, description="What happened, in a few sentences.")

    async def run(a: Any, key: str | None) -> Any:
        found = _SESSION_IN_KEY.match(key or "")
        if found is None:
            raise InvalidInput("agent.escalate.no_conversation", "Escalation needs the conversation.")
        done = await escalate(
            rt,
            ctx,
            session_id=found.group(1),
            customer_id=customer_id,
            category=a.category,
            summary=a.summary,
        )
        return done.as_result()

    return Tool(
        "escalate_to_case", DESCRIPTION, EscalateArgs, "write", run, ops=("agent.escalation.escalate",)
    )


async def seal(rt: Any, ctx: RequestContext, *, case_id: str, session_id: str) -> str:
    """After the turn that escalated: a case note with the SHA-256 of the whole conversation as
    stored now (the customer's message and the answer included; the description's hash covers
    what was stored when the case was opened)."""
    from agent import store
    from ops import crm

    messages = await store.history(rt, session_id, ctx.actor)
    digest = transcript_sha256(messages)
    await crm.note_case(
        rt,
        ctx,
        case_id,
        f"Transcript SHA-256 after the chat turn: {digest} ({len(messages)} messages, {session_id}).",
    )
    return digest

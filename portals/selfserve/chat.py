"""The customer chat (/chat): the signed-in customer talks to the agent's customer profile, whose
tools are bound to this customer (agent.tools.customer_tools, plus escalate_to_case from
agent/escalation.py); the customer id comes from the web session only, never from the page.

- Caps, refused politely before the model is asked: at most BSS_CHAT_TURNS_PER_HOUR messages an hour
  (web rate counter `chat_turn`) and BSS_CHAT_TOKENS_PER_DAY tokens over the conversations used in
  the last 24 hours (what the endpoint reported, agent.conversation.tokens_used).
- What the assistant proposes (a top-up, a plan change, ending a line) is confirmed like the
  portal's own pages: the confirm page spells it out, then a fresh step-up code, then
  agent.loop.confirm. The chat is no way around step-up.
- "Talk to a person" opens the escalation case (fraud, billing dispute, regulator complaint,
  identity recovery, bereavement) with the transcript's SHA-256 without any model.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from agent import loop, store
from agent.escalation import CATEGORIES, escalate, seal
from agent.llm import llm_configured
from core.clock import clock
from core.db import transaction
from core.errors import Conflict, InvalidInput
from portals.selfserve.common import (
    Action,
    act,
    context_for,
    customer_of,
    flash,
    pop_flash,
    runtime,
    show_confirm,
    to,
)
from portals.web import chat
from portals.web.app import form_data, render

router = APIRouter()

RATE_BUCKET = "chat_turn"
# What the step-up email says the code is for (portals/selfserve/common.py PURPOSES).
PURPOSE_OF_TOOL = {
    "top_up": "topup",
    "renew": "renew",
    "change_plan": "plan",
    "cancel_plan_change": "plan",
    "terminate_line": "terminate",
}


async def over_limit(rt: Any, customer_id: str) -> str | None:
    """Why this customer may not send another message now, in words for them; None when they may."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from domains.agent.models import Conversation
    from domains.web import services as web

    turns, tokens = rt.settings.chat_turns_per_hour, rt.settings.chat_tokens_per_day
    now = clock.now()
    async with rt.db() as s:
        sent = await web.count_recent(s, RATE_BUCKET, customer_id, now - timedelta(hours=1))
        used = (
            await s.exec(
                select(func.coalesce(func.sum(Conversation.tokens_used), 0)).where(
                    Conversation.actor == customer_id, col(Conversation.updated_at) > now - timedelta(days=1)
                )
            )
        ).one()
    if sent >= turns:
        return (
            f"You have sent {turns} messages in the last hour, the most the assistant takes. Please try "
            "again a little later, or choose “Talk to a person” below."
        )
    if int(used or 0) >= tokens:
        return (
            "The assistant has done all it can for you today. Please come back tomorrow, or choose "
            "“Talk to a person” below and our team will follow up."
        )
    return None


async def count_turn(rt: Any, customer_id: str) -> None:
    from domains.web import services as web

    async with transaction(rt.db) as s:
        await web.count_event(s, RATE_BUCKET, customer_id, clock.now(), timedelta(days=1))


async def current(rt: Any, customer_id: str) -> Any:
    """The customer's latest chat conversation, if any."""
    for conv in await store.list_sessions(rt, customer_id):
        if conv.profile == "customer" and conv.customer_id == customer_id:
            return conv
    return None


async def _log(rt: Any, customer_id: str, conv: Any, notice: str | None = None) -> dict[str, Any]:
    messages = await store.history(rt, conv.id, customer_id) if conv else []
    pending = await store.pending_proposal(rt, conv.id, customer_id) if conv else None
    return {
        "bubbles": chat.bubbles(messages, show_tools=False),
        "pending": pending,
        "action_base": "/chat",
        "review_first": True,
        "session_id": conv.id if conv else "",
        "notice": notice,
    }


async def _page(
    request: Request, customer_id: str, notice: str | None = None, status_code: int = 200
) -> Response:
    rt = runtime(request)
    conv = await current(rt, customer_id)
    context = {
        "llm": llm_configured(rt.settings),
        "categories": CATEGORIES,
        **await _log(rt, customer_id, conv, notice),
        **await pop_flash(request),
    }
    return render(request, "chat.html", context, status_code)


async def _after(
    request: Request, customer_id: str, notice: str | None = None, status_code: int = 200
) -> Response:
    if chat.wants_fragment(request):  # htmx swaps only a 2xx answer
        rt = runtime(request)
        return render(
            request, "chat_log.html", await _log(rt, customer_id, await current(rt, customer_id), notice)
        )
    if notice:
        return await _page(request, customer_id, notice, status_code)
    return to("/chat")


@router.get("/chat")
async def chat_page(request: Request) -> Response:
    return await _page(request, customer_of(request))


@router.post("/chat/new")
async def chat_new(request: Request) -> Response:
    customer_id = customer_of(request)
    await store.new_session(runtime(request), actor=customer_id, profile="customer", customer_id=customer_id)
    return to("/chat")


@router.post("/chat/send")
async def chat_send(request: Request) -> Response:
    customer_id = customer_of(request)
    rt = runtime(request)
    text = chat.message_text(await form_data(request))
    if llm_configured(rt.settings):
        refused = await over_limit(rt, customer_id)
        if refused is not None:
            return await _after(request, customer_id, refused, 429)
        await count_turn(rt, customer_id)
    conv = await current(rt, customer_id)
    result = await loop.run_turn(
        rt,
        session_id=conv.id if conv else None,
        text=text,
        actor=customer_id,
        profile="customer",
        customer_id=customer_id,
    )
    for call in result.tool_calls:
        case_id = (
            (call.get("result") or {}).get("case_id") if call.get("name") == "escalate_to_case" else None
        )
        if case_id:
            await seal(rt, context_for(request, customer_id), case_id=case_id, session_id=result.session_id)
    return await _after(request, customer_id)


async def _pending_action(request: Request, customer_id: str, proposal_id: str) -> tuple[Any, Any, Action]:
    rt = runtime(request)
    conv = await current(rt, customer_id)
    pending = await store.pending_proposal(rt, conv.id, customer_id) if conv else None
    if pending is None or (proposal_id and pending.id != proposal_id):
        raise Conflict(
            "chat.proposal.gone",
            "That proposal is no longer waiting; ask the assistant again if you still want it.",
        )
    action = Action(
        purpose=PURPOSE_OF_TOOL.get(pending.tool, "plan"),
        title="Confirm what the assistant proposed",
        effects=[line for line in pending.summary.splitlines() if line.strip()],
        post_url="/chat/confirm",
        back_url="/chat",
        button="Confirm",
        fields={"proposal": pending.id},
        done="Confirmed; the assistant's answer is below.",
        danger=pending.tool == "terminate_line",
        tick="I understand this line ends for good." if pending.tool == "terminate_line" else None,
    )
    return conv, pending, action


@router.get("/chat/confirm")
async def chat_review(request: Request, proposal: str = "") -> Response:
    customer_id = customer_of(request)
    _, _, action = await _pending_action(request, customer_id, proposal[:20])
    return await show_confirm(request, customer_id, action)


@router.post("/chat/confirm")
async def chat_confirm(request: Request) -> Response:
    customer_id = customer_of(request)
    form = await form_data(request)
    conv, pending, action = await _pending_action(request, customer_id, (form.get("proposal") or "")[:20])

    async def do() -> Any:
        return await loop.confirm(runtime(request), session_id=conv.id, actor=customer_id)

    return await act(request, customer_id, action, form, do)


@router.post("/chat/cancel")
async def chat_cancel(request: Request) -> Response:
    customer_id = customer_of(request)
    rt = runtime(request)
    conv = await current(rt, customer_id)
    if conv is not None:
        await loop.cancel(rt, session_id=conv.id, actor=customer_id)
    return await _after(request, customer_id)


@router.post("/chat/escalate")
async def chat_escalate(request: Request) -> Response:
    """Talk to a person: the case for this conversation, without the model."""
    customer_id = customer_of(request)
    rt = runtime(request)
    category = (await form_data(request)).get("category") or ""
    if category not in CATEGORIES:
        raise InvalidInput("chat.escalate.category", "Choose what it is about.")
    conv = await current(rt, customer_id)
    session_id = (
        conv.id
        if conv
        else await store.new_session(rt, actor=customer_id, profile="customer", customer_id=customer_id)
    )
    done = await escalate(
        rt,
        context_for(request, customer_id),
        session_id=session_id,
        customer_id=customer_id,
        category=category,
    )
    await flash(request, done.as_result()["message"])
    return to("/chat")

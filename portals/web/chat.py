"""What the two doors' chats share (portals/cockpit/chat.py, portals/selfserve/chat.py): the
conversation as a list of bubbles for the template `chat_log.html`, the server-sent-event framing,
and the one-time "turn ticket" that lets an EventSource (a GET) run a turn a CSRF-checked POST
asked for.

The page works without JavaScript (the form posts, the turn runs, the page reloads) and with htmx
alone (the form swaps in the new log); /static/chat.js streams the answer over SSE when it can.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from core.errors import InvalidInput, NotFound
from portals.web import sessions

TEXT_MAX = 2000
TURN_KEY = "chat_turn"


@dataclass(frozen=True)
class Bubble:
    who: str  # you | agent | tool
    text: str


def bubbles(messages: list[Any], *, show_tools: bool) -> list[Bubble]:
    """The stored messages as a person reads them: what they said, what the agent answered, and
    (for an operator) which tools it used; tool results stay out of the page."""
    out: list[Bubble] = []
    for m in messages:
        if m.role == "user":
            out.append(Bubble("you", m.content))
        elif m.role == "assistant":
            if show_tools:
                for call in m.tool_calls or []:
                    args = ", ".join(f"{k}={v}" for k, v in (call.get("args") or {}).items())
                    out.append(Bubble("tool", f"{call.get('name')}({args})"))
            if m.content:
                out.append(Bubble("agent", m.content))
    return out


def wants_fragment(request: Request) -> bool:
    """htmx or chat.js asked: answer the log fragment instead of redirecting."""
    return bool(request.headers.get("hx-request") or request.headers.get("x-chat-stream"))


def message_text(form: dict[str, str]) -> str:
    text = (form.get("text") or "").strip()
    if not text:
        raise InvalidInput("chat.message.empty", "Type a message first.")
    if len(text) > TEXT_MAX:
        raise InvalidInput("chat.message.too_long", f"A message is at most {TEXT_MAX} characters.")
    return text


async def issue_turn(request: Request, session_id: str, text: str) -> str:
    """Keep the message in the web session under a one-time id; the stream URL carries the id."""
    turn_id = secrets.token_urlsafe(16)
    await sessions.update_data(request, **{TURN_KEY: {"id": turn_id, "session": session_id, "text": text}})
    return turn_id


async def take_turn(request: Request, session_id: str, turn_id: str) -> str:
    """The message of a ticket issue_turn gave, once; anything else is a 404."""
    session = sessions.web_state(request).session
    held = (session.data.get(TURN_KEY) if session else None) or {}
    if not turn_id or held.get("id") != turn_id or held.get("session") != session_id:
        raise NotFound("chat.turn.not_found", "There is no such message waiting.")
    await sessions.update_data(request, **{TURN_KEY: None})
    return str(held.get("text") or "")


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def sse_of(event: dict[str, Any]) -> str | None:
    """One event of agent.loop.stream_turn as SSE, with only what the page shows."""
    kind = event.get("type")
    if kind == "token":
        return sse("token", {"text": event.get("text", "")})
    if kind == "tool":
        return sse("tool", {"name": event.get("name")})
    if kind == "proposal":
        return sse(
            "proposal", {"id": event.get("id"), "summary": event.get("summary"), "state": event.get("state")}
        )
    if kind == "done":
        return sse("done", {"session_id": event.get("session_id"), "answer": event.get("answer")})
    return None


STREAM_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}

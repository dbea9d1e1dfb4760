"""The cockpit's chat panel (/chat): the operator's conversations with the agent, the same store as
the REPL (agent/store.py; owner = the operator's email, profile operator; a customer pinned with
focus), answers streamed over server-sent events (agent.loop.stream_turn) with an htmx and a plain
form fallback, and a proposal's confirm / cancel buttons: CSRF-checked POSTs calling
agent.loop.confirm / cancel. Nothing the model says confirms anything.

A turn is asked for by a POST (CSRF) and streamed by a GET: the POST keeps the text in the web
session under a one-time id (portals/web/chat.py) that the EventSource URL carries.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from agent import loop, store
from agent.llm import NOT_CONFIGURED, llm_configured
from agent.tools import ROLE_RANK
from core.errors import DomainError, Forbidden, InvalidInput
from portals.cockpit.base import page, runtime_of, signed_in
from portals.web import chat
from portals.web.app import form_data, render

router = APIRouter()


def rt(request: Request) -> Any:
    return runtime_of(request)


async def log_context(request: Request, actor: str, session_id: str, notice: str | None = None) -> dict:
    messages = await store.history(rt(request), session_id, actor)
    return {
        "bubbles": chat.bubbles(messages, show_tools=True),
        "pending": await store.pending_proposal(rt(request), session_id, actor),
        "action_base": f"/chat/{session_id}",
        "session_id": session_id,
        "notice": notice,
    }


async def answer(request: Request, actor: str, session_id: str, notice: str | None = None) -> Response:
    """After a write: the log fragment for htmx / chat.js, else back to the page (PRG)."""
    if chat.wants_fragment(request):
        return render(request, "chat_log.html", await log_context(request, actor, session_id, notice))
    return RedirectResponse(f"/chat/{session_id}", status_code=303)


@router.get("/chat")
async def chat_home(request: Request) -> Response:
    op = await signed_in(request)
    mine = [c for c in await store.list_sessions(rt(request), op.email) if c.profile == "operator"]
    return page(
        request,
        "chat.html",
        {"sessions": mine, "current": None, "llm": llm_configured(request.app.state.settings)},
    )


@router.post("/chat/new")
async def chat_new(request: Request) -> Response:
    op = await signed_in(request)
    form = await form_data(request)
    customer = (form.get("customer") or "").strip()[:20] or None
    session_id = await store.new_session(rt(request), actor=op.email, profile="operator")
    if customer:
        await store.set_focus(rt(request), session_id, op.email, customer)
    return RedirectResponse(f"/chat/{session_id}", status_code=303)


@router.get("/chat/{session_id}")
async def chat_page(request: Request, session_id: str) -> Response:
    op = await signed_in(request)
    conv = await store.get_session(rt(request), session_id, op.email)  # another's: 404
    mine = [c for c in await store.list_sessions(rt(request), op.email) if c.profile == "operator"]
    settings = request.app.state.settings
    return page(
        request,
        "chat.html",
        {
            "sessions": mine,
            "current": conv,
            "llm": llm_configured(settings),
            "not_configured": NOT_CONFIGURED,
            **await log_context(request, op.email, conv.id),
        },
    )


@router.get("/chat/{session_id}/log")
async def chat_log(request: Request, session_id: str) -> Response:
    op = await signed_in(request)
    return render(request, "chat_log.html", await log_context(request, op.email, session_id))


@router.post("/chat/{session_id}/focus")
async def chat_focus(request: Request, session_id: str) -> Response:
    op = await signed_in(request)
    form = await form_data(request)
    customer = (form.get("customer") or "").strip()[:20] or None
    await store.set_focus(rt(request), session_id, op.email, customer)
    return RedirectResponse(f"/chat/{session_id}", status_code=303)


@router.post("/chat/{session_id}/send")
async def chat_send(request: Request, session_id: str) -> Response:
    op = await signed_in(request)
    conv = await store.get_session(rt(request), session_id, op.email)
    text = chat.message_text(await form_data(request))
    if request.headers.get("x-chat-stream") and llm_configured(request.app.state.settings):
        turn_id = await chat.issue_turn(request, conv.id, text)
        return JSONResponse(
            {"stream": f"/chat/{conv.id}/stream/{turn_id}", "log": f"/chat/{conv.id}/log"},
            headers=chat.STREAM_HEADERS,
        )
    await loop.run_turn(
        rt(request),
        session_id=conv.id,
        text=text,
        actor=op.email,
        profile="operator",
        customer_id=conv.customer_id,
        role=op.role,
    )
    return await answer(request, op.email, conv.id)


@router.get("/chat/{session_id}/stream/{turn_id}")
async def chat_stream(request: Request, session_id: str, turn_id: str) -> Response:
    op = await signed_in(request)
    conv = await store.get_session(rt(request), session_id, op.email)
    text = await chat.take_turn(request, conv.id, turn_id)
    runtime = rt(request)

    async def events():
        try:
            async for event in loop.stream_turn(
                runtime,
                session_id=conv.id,
                text=text,
                actor=op.email,
                profile="operator",
                customer_id=conv.customer_id,
                role=op.role,
            ):
                framed = chat.sse_of(event)
                if framed:
                    yield framed
        except DomainError as exc:
            yield chat.sse("failed", {"message": exc.message})

    return StreamingResponse(events(), media_type="text/event-stream", headers=chat.STREAM_HEADERS)


async def decide(request: Request, session_id: str, what: str) -> Response:
    op = await signed_in(request)
    form = await form_data(request)
    pending = await store.pending_proposal(rt(request), session_id, op.email)
    if pending is None:
        return await answer(request, op.email, session_id, f"Nothing to {what}: no proposal is pending.")
    if form.get("proposal") and form["proposal"] != pending.id:
        raise InvalidInput(
            "chat.proposal.changed",
            f"The pending proposal is now {pending.id}, not the one you saw; look at it again first.",
        )
    if what == "confirm" and ROLE_RANK.get(str(pending.role), 9) > ROLE_RANK.get(str(op.role), -1):
        raise Forbidden(
            "chat.proposal.role",
            f"This was proposed for the {pending.role} role; you are {op.role} now. Ask a {pending.role}.",
        )
    act = loop.confirm if what == "confirm" else loop.cancel
    result = await act(rt(request), session_id=session_id, actor=op.email)
    return await answer(request, op.email, session_id, result.answer)


@router.post("/chat/{session_id}/confirm")
async def chat_confirm(request: Request, session_id: str) -> Response:
    return await decide(request, session_id, "confirm")


@router.post("/chat/{session_id}/cancel")
async def chat_cancel(request: Request, session_id: str) -> Response:
    return await decide(request, session_id, "cancel")

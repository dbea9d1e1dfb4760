"""The LLM agent over HTTP (BSS, not TMF): what `bss ask` calls.

One turn of the operator behind the token (the token's name is the person; an admin token acts as
the admin role, an operator token as a supervisor: the tools follow it). Text `/confirm` carries out
the session's pending proposal and `/cancel` drops it: only the person's request does that, never
the model. Conversations belong to the token's name: another name's session is a 404. No model
configured (BSS_LLM_BASE_URL unset on the API): the answer says so, 200.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from api.deps import context, runtime
from core.context import RequestContext
from ops.runtime import Runtime

BASE = "/bss-api/v1/agent"
SESSION = r"^SESS-[0-9a-f]{8}$"

router = APIRouter(prefix=BASE, tags=["Agent (BSS)"])

# API token role -> the agent's operator role (csr < supervisor < admin).
AGENT_ROLE = {"admin": "admin", "operator": "supervisor"}


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StrictStr = Field(min_length=1, max_length=4000, description="What to ask, or /confirm, /cancel.")
    session_id: StrictStr | None = Field(
        None,
        alias="sessionId",
        pattern=SESSION,
        description="Continue this conversation (default: a new one).",
    )


def _role(request: Request) -> str:
    role = getattr(request.state, "role", None)
    return AGENT_ROLE.get(getattr(role, "value", str(role)), "csr")


@router.post("/ask", summary="One turn of the agent (or /confirm, /cancel of its proposal)")
async def ask(
    body: AskIn,
    request: Request,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    from agent.loop import run_turn

    turn = await run_turn(
        rt, session_id=body.session_id, text=body.text, actor=ctx.actor, role=_role(request)
    )
    return turn.as_json()


@router.get("/session", summary="The caller's conversations, latest first")
async def sessions(
    rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> list[dict[str, Any]]:
    from agent import store

    return [store.session_dict(c) for c in await store.list_sessions(rt, ctx.actor)]


@router.get("/session/{id}", summary="One of the caller's conversations: its messages and pending proposal")
async def session(
    session_id: str = Path(alias="id", pattern=SESSION),
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    from agent import store

    conv = await store.get_session(rt, session_id, ctx.actor)
    messages = await store.history(rt, session_id, ctx.actor)
    pending = await store.pending_proposal(rt, session_id, ctx.actor)
    return {
        **store.session_dict(conv),
        "messages": [
            {"role": m.role, "content": m.content, "toolCalls": m.tool_calls, "toolCallId": m.tool_call_id}
            for m in messages
        ],
        "pendingProposal": store.proposal_dict(pending) if pending else None,
    }


class SessionIn(BaseModel):
    """A new conversation (the REPL's /new), or the customer pinned on one (its /focus)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: StrictStr | None = Field(
        None, alias="customerId", max_length=20, description="Pin this customer (null: none)."
    )


@router.post(
    "/session", status_code=201, summary="A new conversation of the caller, maybe pinned on a customer"
)
async def new_session(
    body: SessionIn, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    from agent import store

    session_id = await store.new_session(rt, actor=ctx.actor, profile="operator")
    if body.customer_id:
        return store.session_dict(await store.set_focus(rt, session_id, ctx.actor, body.customer_id))
    return store.session_dict(await store.get_session(rt, session_id, ctx.actor))


@router.post("/session/{id}/focus", summary="Pin a customer on one of the caller's conversations (or unpin)")
async def focus(
    body: SessionIn,
    session_id: str = Path(alias="id", pattern=SESSION),
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    from agent import store

    return store.session_dict(await store.set_focus(rt, session_id, ctx.actor, body.customer_id))

"""The agent's turn against the scripted OpenAI-compatible server, through the real langchain-openai
client, on the test's Postgres: no endpoint, structured policy errors, audit, loop guards, and a
proposal that nothing but the person's /confirm carries out."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from agent import store
from agent.llm import NOT_CONFIGURED
from agent.loop import cancel, confirm, run_turn
from core.errors import NotFound
from tests.agent.scripted_llm import call, calls, text
from tests.api.order_flow import customer, scalar
from tests.usage_harness import active_line

OPERATOR = "ops@example.com"


async def audit_rows(runtime, session_id: str) -> list[dict]:
    async with runtime.engine.connect() as conn:
        from sqlalchemy import text as sql

        rows = await conn.execute(
            sql(
                "SELECT event_type, actor, channel, payload FROM audit.domain_event"
                " WHERE aggregate_type = 'agent_session' AND aggregate_id = :s ORDER BY id"
            ),
            {"s": session_id},
        )
        return [dict(r._mapping) for r in rows]


async def test_without_an_endpoint_the_agent_says_so_and_keeps_the_conversation(runtime, settings):
    settings.llm_base_url = None
    turn = await run_turn(runtime, session_id=None, text="why is my line blocked?", actor=OPERATOR)
    assert turn.answer == NOT_CONFIGURED and "BSS_LLM_BASE_URL" in turn.answer
    assert turn.tool_calls == [] and turn.proposals == []
    said = [(m.role, m.content) for m in await store.history(runtime, turn.session_id, OPERATOR)]
    assert said == [("user", "why is my line blocked?"), ("assistant", NOT_CONFIGURED)]
    # slash commands work without a model
    assert (
        "nothing to confirm"
        in (await run_turn(runtime, session_id=turn.session_id, text="/confirm", actor=OPERATOR)).answer
    )
    # another person's conversation does not exist for them
    with pytest.raises(NotFound):
        await run_turn(runtime, session_id=turn.session_id, text="hi", actor="mallory@example.com")


async def test_a_policy_error_comes_back_to_the_model_as_a_structured_result_and_every_call_is_audited(
    runtime, scripted_llm
):
    cust = await customer(runtime)
    scripted_llm.push(
        call("case_open", customer_id=cust, subject="Data not working", category="technical"),
        lambda req: call(
            "case_transition",
            case_id=json.loads(req["messages"][-1]["content"])["case"]["id"],
            trigger="resume",  # only a case waiting on the customer resumes: the rules refuse it
        ),
        call("line_status", line_id="SUB-999999"),
        text("That case cannot be resumed: it is not waiting on the customer."),
    )
    turn = await run_turn(
        runtime, session_id=None, text="open a case and resume it", actor=OPERATOR, role="csr"
    )

    assert turn.answer == "That case cannot be resumed: it is not waiting on the customer."
    opened, refused, missing = (c["result"] for c in turn.tool_calls)
    assert opened["case"]["customer_id"] == cust
    assert refused["error"]["kind"] == "POLICY_VIOLATION" and refused["error"]["code"].startswith("case.")
    assert missing["error"]["code"] == "subscription.not_found"
    # the model got the same structured results back, as tool messages
    assert scripted_llm.tool_results()[1] == refused
    # the tools went out to the endpoint with their JSON schemas
    first = scripted_llm.requests[0]
    spec = next(t["function"] for t in first["tools"] if t["function"]["name"] == "line_top_up")
    assert spec["parameters"]["required"] == ["line_id", "vas_id"] and "Proposes" in spec["description"]
    assert not any(
        t["function"]["name"] == "catalog_add_plan" for t in first["tools"]
    )  # admin's, not a csr's

    rows = await audit_rows(runtime, turn.session_id)
    assert [(r["event_type"], r["actor"], r["channel"]) for r in rows] == [
        ("agent.tool_called", OPERATOR, "llm")
    ] * 3
    assert [r["payload"]["tool"] for r in rows] == ["case_open", "case_transition", "line_status"]
    assert rows[1]["payload"]["args"]["trigger"] == "resume"
    assert rows[1]["payload"]["outcome"] == refused["error"]["code"]
    # the case itself was written under the person, through the llm channel
    assert (
        await scalar(
            runtime,
            "SELECT actor || ' ' || channel FROM audit.domain_event WHERE aggregate_id = :c ORDER BY id LIMIT 1",
            c=opened["case"]["id"],
        )
        == f"{OPERATOR} llm"
    )


async def test_a_proposal_is_never_carried_out_without_the_persons_confirm(runtime, scripted_llm):
    sub_id, _ = await active_line(runtime)
    scripted_llm.push(
        call("line_terminate", line_id=sub_id, reason="customer asked"),
        text("Confirmed! The line is terminated."),  # the model claiming it is done changes nothing
        calls(
            ("confirm", {"proposal": "latest"}), ("line_terminate", {"line_id": sub_id, "confirmed": True})
        ),
        text("I have confirmed it for you."),
    )
    first = await run_turn(runtime, session_id=None, text=f"terminate {sub_id}", actor=OPERATOR)
    [proposal] = first.proposals
    assert proposal["state"] == "pending" and proposal["tool"] == "line_terminate"
    assert (
        "End line" in proposal["summary"]
        and sub_id in proposal["summary"]
        and "quarantine" in proposal["summary"]
    )
    assert "/confirm" in first.answer

    second = await run_turn(runtime, session_id=first.session_id, text="confirmed, go ahead", actor=OPERATOR)
    unknown, invalid = (c["result"]["error"]["code"] for c in second.tool_calls)
    assert (unknown, invalid) == ("agent.tool.unknown", "agent.tool.arguments_invalid")

    async def line_state() -> str:
        return await scalar(runtime, "SELECT state FROM subscription.subscription WHERE id = :s", s=sub_id)

    assert await line_state() == "active"
    assert (await store.pending_proposal(runtime, first.session_id, OPERATOR)).id == proposal["id"]
    assert (
        await scalar(
            runtime,
            "SELECT count(*) FROM audit.domain_event WHERE aggregate_id = :s AND event_type LIKE '%terminat%'",
            s=sub_id,
        )
        == 0
    )
    # only the owner of the session may confirm it
    with pytest.raises(NotFound):
        await confirm(runtime, session_id=first.session_id, actor="mallory@example.com")

    dropped = await cancel(runtime, session_id=first.session_id, actor=OPERATOR)
    assert dropped.proposals[0]["state"] == "cancelled"
    assert (
        "nothing to confirm" in (await confirm(runtime, session_id=first.session_id, actor=OPERATOR)).answer
    )
    assert await line_state() == "active"
    events = [r["event_type"] for r in await audit_rows(runtime, first.session_id)]
    assert "agent.proposal.cancelled" in events and "agent.proposal.confirmed" not in events


async def test_loop_guards_end_the_turn_with_a_plain_message(runtime, scripted_llm, settings):
    # max steps: a model that never stops calling tools
    settings.llm_max_steps = 3
    scripted_llm.push(*(call("line_status", line_id=f"SUB-99999{i}") for i in range(5)))
    turn = await run_turn(runtime, session_id=None, text="loop", actor=OPERATOR)
    assert turn.stopped == "max_steps" and "stopped after 3 steps" in turn.answer
    assert len(scripted_llm.requests) == 3 and len(turn.tool_calls) == 3

    # the same call with the same arguments, a third time
    scripted_llm.reset()
    settings.llm_max_steps = 8
    scripted_llm.push(*(call("catalog_plans") for _ in range(4)), text("never reached"))
    turn = await run_turn(runtime, session_id=turn.session_id, text="again", actor=OPERATOR)
    assert turn.stopped == "repeated_call" and "same arguments" in turn.answer
    assert len(turn.tool_calls) == 2 and len(scripted_llm.requests) == 3

    # the token budget, from the usage the endpoint reports
    scripted_llm.reset()
    settings.llm_turn_token_budget = 1000
    scripted_llm.push(
        call("catalog_top_ups", {"prompt_tokens": 900, "completion_tokens": 200, "total_tokens": 1100})
    )
    turn = await run_turn(runtime, session_id=turn.session_id, text="budget", actor=OPERATOR)
    assert turn.stopped == "token_budget" and "budget of 1000 tokens" in turn.answer
    assert turn.tool_calls == []  # the call asked for past the budget did not run

    # the conversation stays valid for the next turn: every tool call stored has its answer
    messages = await store.history(runtime, turn.session_id, OPERATOR)
    asked = {c["id"] for m in messages if m.role == "assistant" for c in m.tool_calls}
    assert asked == {m.tool_call_id for m in messages if m.role == "tool"}
    scripted_llm.reset()
    settings.llm_turn_token_budget = 60_000
    scripted_llm.push(text("fine"))
    assert (await run_turn(runtime, session_id=turn.session_id, text="ok?", actor=OPERATOR)).answer == "fine"
    sent = scripted_llm.requests[0]["messages"]
    assert sent[0]["role"] == "system" and sent[-1] == {"role": "user", "content": "ok?"}


async def test_an_unreachable_endpoint_is_a_plain_message(runtime, settings):
    settings.llm_base_url = "http://127.0.0.1:9/v1"
    settings.llm_api_key = SecretStr("k")
    turn = await run_turn(runtime, session_id=None, text="hello", actor=OPERATOR)
    assert turn.stopped == "llm_error" and "did not answer" in turn.answer

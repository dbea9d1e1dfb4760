"""Eval: a line blocked because its data ran out is diagnosed and topped up by the agent, and the
top-up happens only after the person's /confirm — through the line's real workflow (`saga`: the
Temporal dev server), charged once, audited under the person with channel llm. The turn is
streamed (the SSE surfaces' path) through the real langchain-openai client."""

from __future__ import annotations

from agent import store
from agent.loop import run_turn, stream_turn
from domains.subscription.history import EXHAUSTED
from tests.agent.scripted_llm import call, text
from tests.api.order_flow import scalar
from tests.api.subscription_flow import balance, burn_data, line, live_line, payments

OPERATOR = "csr@example.com"


async def test_a_blocked_line_is_diagnosed_and_topped_up_only_after_confirm(saga, api, runtime, scripted_llm):
    sub_id, cust = await live_line(saga, api)
    msisdn = (await line(api, sub_id))["msisdn"]
    assert (await burn_data(api, msisdn, 5120)).status_code == 201  # every MB of PLAN_S: rating blocks it
    assert (await line(api, sub_id))["state"] == "blocked"

    scripted_llm.push(
        call("customer_search", query=msisdn),
        call("line_status", line_id=sub_id),
        call("catalog_top_ups"),
        call("line_top_up", line_id=sub_id, vas_id="VAS_DATA_1GB"),
        text("The line is blocked because its data ran out. I propose a 1 GB top-up; type /confirm."),
    )
    events = [
        e
        async for e in stream_turn(
            runtime, session_id=None, text=f"why is {msisdn} not working?", actor=OPERATOR, role="csr"
        )
    ]
    kinds = [e["type"] for e in events]
    assert kinds.count("tool") == 4 and kinds.count("proposal") == 1 and kinds[-1] == "done"
    assert "token" in kinds  # the answer was streamed
    done = events[-1]
    found, status, _, proposed = (c["result"] for c in done["tool_calls"])
    assert found[0]["customer"]["id"] == cust
    assert (status["state"], status["stateReason"]) == ("blocked", EXHAUSTED)
    [proposal] = done["proposals"]
    assert proposal["state"] == "pending" and proposed["proposal"]["id"] == proposal["id"]
    # exactly what will happen: the price, the card, the line
    assert (
        "Charge SGD" in proposal["summary"]
        and "•••• 4242" in proposal["summary"]
        and sub_id in proposal["summary"]
    )

    # proposed, not done: still blocked, nothing charged, nothing bought
    assert (await line(api, sub_id))["state"] == "blocked"
    assert await payments(runtime, cust, "vas") == 0

    confirmed = await run_turn(runtime, session_id=done["session_id"], text="/confirm", actor=OPERATOR)
    assert confirmed.proposals[0]["state"] == "confirmed" and "Done" in confirmed.answer
    back = await line(api, sub_id)
    assert (back["state"], balance(back)["remaining"]) == ("active", 1024)
    assert await payments(runtime, cust, "vas") == 1
    # through the line's workflow, under the person's name, channel llm
    assert (
        await scalar(
            runtime,
            "SELECT actor || ' ' || channel FROM audit.domain_event"
            " WHERE event_type = 'subscription.vas_purchased' AND aggregate_id = :s",
            s=sub_id,
        )
        == f"{OPERATOR} llm"
    )
    # a second /confirm finds nothing: charged once
    again = await run_turn(runtime, session_id=done["session_id"], text="/confirm", actor=OPERATOR)
    assert "nothing to confirm" in again.answer
    assert await payments(runtime, cust, "vas") == 1
    assert (await store.pending_proposal(runtime, done["session_id"], OPERATOR)) is None

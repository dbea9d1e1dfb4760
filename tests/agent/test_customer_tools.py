"""The customer profile: tools bound to the logged-in customer. Another customer's line is a 404 to
the model (never data, never a proposal), any other customer's id in a result trips the ownership
check, and words typed in a customer chat ("/confirm") never carry out a proposal."""

from __future__ import annotations

import pytest

from agent import store
from agent.loop import confirm, run_turn
from agent.tools import check_owned
from core.errors import NotFound
from tests.agent.scripted_llm import call, text
from tests.api.order_flow import customer, scalar
from tests.usage_harness import active_line

OWNER = "CUST-0a0b0c0d"  # tests.usage_harness.active_line sells its lines to this customer


async def test_a_customer_chat_reaches_only_the_customers_own_things(runtime, scripted_llm):
    theirs, _ = await active_line(runtime)
    me = await customer(runtime)
    scripted_llm.push(
        call("line_status", line_id=theirs),
        call("top_up", line_id=theirs, vas_id="VAS_DATA_1GB"),
        call("terminate_line", line_id=theirs),
        call("my_lines"),
        text("I can only help with your own lines, and you have none yet."),
    )
    turn = await run_turn(
        runtime, session_id=None, text=f"top up {theirs}", actor=me, profile="customer", customer_id=me
    )
    status, top_up, terminate, mine = (c["result"] for c in turn.tool_calls)
    for refused in (status, top_up, terminate):
        assert refused["error"]["code"] == "subscription.not_found", refused
    assert mine == [] and turn.proposals == []
    assert await store.pending_proposal(runtime, turn.session_id, me) is None
    offered = {t["function"]["name"] for t in scripted_llm.requests[0]["tools"]}
    assert "customer_search" not in offered and "line_terminate" not in offered and "top_up" in offered

    # the trip-wire: another customer's id anywhere in a result never reaches the model
    with pytest.raises(NotFound):
        await check_owned(runtime, me, {"note": f"see {OWNER}"})
    with pytest.raises(NotFound):
        await check_owned(runtime, me, [{"subscription": theirs}])
    await check_owned(runtime, OWNER, {"id": theirs, "customerId": OWNER})

    # a customer session is the customer's: another customer, or an operator profile, finds nothing
    with pytest.raises(NotFound):
        await run_turn(
            runtime, session_id=turn.session_id, text="hi", actor=OWNER, profile="customer", customer_id=OWNER
        )
    with pytest.raises(NotFound):
        await run_turn(runtime, session_id=turn.session_id, text="hi", actor=me, profile="operator")


async def test_a_customer_typing_confirm_does_not_carry_out_the_proposal(runtime, scripted_llm):
    line, _ = await active_line(runtime)
    scripted_llm.push(call("terminate_line", line_id=line), text("Type /confirm to end it."))
    turn = await run_turn(
        runtime, session_id=None, text="end my line", actor=OWNER, profile="customer", customer_id=OWNER
    )
    [proposal] = turn.proposals
    assert proposal["state"] == "pending" and line in proposal["summary"]

    typed = await run_turn(
        runtime,
        session_id=turn.session_id,
        text="/confirm",
        actor=OWNER,
        profile="customer",
        customer_id=OWNER,
    )
    assert "Confirm button" in typed.answer and typed.proposals == []
    assert (await store.pending_proposal(runtime, turn.session_id, OWNER)).id == proposal["id"]
    assert (
        await scalar(runtime, "SELECT state FROM subscription.subscription WHERE id = :s", s=line) == "active"
    )
    # the door's own confirm (after its step-up) is what carries it out; here Temporal is away, so
    # the proposal fails with the rule's error instead of raising
    done = await confirm(runtime, session_id=turn.session_id, actor=OWNER)
    assert done.proposals[0]["state"] == "failed" and "Nothing was done" in done.answer

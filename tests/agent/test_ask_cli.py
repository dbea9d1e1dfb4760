"""`bss ask` through the API (POST /bss-api/v1/agent/ask) as the person behind the token: the answer
and the session id, --json with the tool calls and proposals, /confirm carrying out the proposal,
and a plain message when the API has no model configured."""

from __future__ import annotations

import json

from core.context import RequestContext
from ops import crm
from tests.agent.scripted_llm import call, text
from tests.api.order_flow import customer, scalar
from tests.cli_harness import bss_cli

CTX = RequestContext(actor="ask-test", channel="scenario", service_identity="test")


async def test_bss_ask_proposes_and_confirm_carries_it_out(runtime, settings, scripted_llm):
    cust = await customer(runtime)
    detail, _ = await crm.open_case(
        runtime, CTX, customer_id=cust, subject="Roaming question", category="information"
    )
    case_id = detail.case.id
    scripted_llm.push(
        call("case_get", case_id=case_id),
        call("case_close", case_id=case_id, resolution_code="answered"),
        text("The case was answered; I propose to close it."),
    )
    with bss_cli(settings, actor="ops-bob") as bss:
        r = bss("ask", "--json", "close", case_id)
        assert r.exit_code == 0, r.output
        turn = json.loads(r.stdout)
        assert set(turn) >= {"session_id", "answer", "tool_calls", "proposals"}
        assert [c["name"] for c in turn["tool_calls"]] == ["case_get", "case_close"]
        [proposal] = turn["proposals"]
        assert proposal["state"] == "pending" and case_id in proposal["summary"]
        assert await scalar(runtime, "SELECT state FROM crm.support_case WHERE id = :c", c=case_id) == "open"

        shown = bss("ask", "--session", turn["session_id"], "/confirm")
        assert shown.exit_code == 0, shown.output
        assert "Done" in shown.stdout and turn["session_id"] in shown.stdout
        assert (
            await scalar(runtime, "SELECT state FROM crm.support_case WHERE id = :c", c=case_id) == "closed"
        )
        assert (
            await scalar(
                runtime,
                "SELECT actor || ' ' || channel FROM audit.domain_event"
                " WHERE aggregate_id = :c AND event_type LIKE 'case.closed%'",
                c=case_id,
            )
            == "ops-bob llm"
        )

        # another token's name does not see the session
        refused = bss("ask", "--session", "SESS-00000000", "hello")
        assert refused.exit_code == 1 and "No conversation" in refused.stderr

        settings.llm_base_url = None  # the API's own settings: now without a model
        r = bss("ask", "hello")
        assert (
            r.exit_code == 0 and "No language model is configured" in r.stdout and "session SESS-" in r.stdout
        )

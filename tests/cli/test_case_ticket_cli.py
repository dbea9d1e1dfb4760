"""`bss case`, `bss ticket` and the `bss customer show` 360 against the real API app in process."""

from __future__ import annotations

import asyncio
import json

from tests.cli_harness import bss_cli


def _json(result) -> dict | list:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_case_with_a_ticket_from_open_to_closed_and_the_customer_360(settings):
    with bss_cli(settings, actor="csr-ann") as bss:
        cust = _json(
            bss("customer", "create", "--name", "Ada Lovelace", "--email", "ada@example.com", "--json")
        )["id"]
        case = _json(
            bss(
                "case",
                "open",
                "--customer",
                cust,
                "--subject",
                "Charged twice",
                "--category",
                "billing",
                "--json",
            )
        )
        cid = case["id"]
        ticket = _json(
            bss(
                "ticket",
                "open",
                "--case",
                cid,
                "--type",
                "billing_dispute",
                "--subject",
                "Double charge",
                "--json",
            )
        )
        tid = ticket["id"]
        assert (ticket["state"], ticket["priority"]) == ("open", "normal")

        refused = bss("ticket", "ack", tid)
        assert refused.exit_code == 1 and "ticket.ack.requires_agent" in refused.stderr
        assert "Carol Ng" in bss("case", "agents").stdout
        assert bss("ticket", "assign", tid, "--agent", "AGT-002").exit_code == 0
        assert _json(bss("ticket", "ack", tid, "--json"))["state"] == "acknowledged"
        resolved = _json(bss("ticket", "resolve", tid, "--note", "refunded the second charge", "--json"))
        assert (resolved["state"], resolved["resolutionNotes"]) == ("resolved", "refunded the second charge")
        refused = bss("ticket", "cancel", tid)
        assert refused.exit_code == 1 and "ticket.cancel.not_if_resolved_or_closed" in refused.stderr
        assert bss("ticket", "close", tid).exit_code == 0

        assert bss("case", "note", cid, "customer satisfied").exit_code == 0
        closed = bss("case", "close", cid, "--resolution", "refunded")
        assert closed.exit_code == 0, closed.output
        shown = bss("case", "show", cid)
        for text in (cid, "closed (refunded)", tid, "customer satisfied", "Charged twice"):
            assert text in shown.stdout
        listed = _json(bss("ticket", "list", "--customer", cust, "--state", "all", "--json"))
        assert [(t["id"], t["state"]) for t in listed] == [(tid, "closed")]
        assert _json(bss("ticket", "list", "--customer", cust, "--json")) == []  # none open

        full = _json(bss("customer", "show", cust, "--json"))
        assert {
            "customer",
            "paymentMethods",
            "lines",
            "orders",
            "cases",
            "tickets",
            "payments",
            "interactions",
        } <= (full.keys())
        assert [c["id"] for c in full["cases"]] == [cid] and [t["id"] for t in full["tickets"]] == [tid]
        assert full["interactions"][0]["reason"] == "case.closed"
        people = bss("customer", "show", cust)
        assert people.exit_code == 0, people.output
        for text in (
            "Ada Lovelace",
            "Cases",
            cid,
            "Tickets",
            tid,
            "Interactions",
            f"Case {cid}: resolved → closed",
        ):
            assert text in people.stdout


def test_resolving_a_ticket_a_workflow_waits_on_goes_through_the_workflow(settings, runtime):
    """Without Temporal the decision cannot reach the workflow: the ticket is not resolved behind
    its back (the workflow resolves it once it carried on)."""
    from core.context import RequestContext
    from core.db import transaction
    from domains.crm import tickets

    async def waiting_ticket() -> str:
        async with transaction(runtime.db) as s:
            t = await tickets.open_ticket(
                s,
                RequestContext(actor="workflow:subscription-SUB-000001"),
                ticket_type="payment_exception",
                subject="renewal refused",
                description="",
                waiting_workflow_id="subscription-SUB-000001",
                waiting_topic="renewal",
            )
            return t.id

    tid = asyncio.run(waiting_ticket())
    with bss_cli(settings) as bss:
        result = bss("ticket", "resolve", tid, "--note", "charged by hand")
        assert result.exit_code == 1 and "temporal.unavailable" in result.stderr
        assert _json(bss("ticket", "show", tid, "--json"))["state"] == "open"
        waiting = _json(bss("ticket", "list", "--waiting", "--json"))
        assert [t["id"] for t in waiting] == [tid]

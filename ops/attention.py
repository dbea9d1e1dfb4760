"""Operator decisions for workflows waiting on a ticket (workflows/attention.py): list those
tickets, and `retry` or `resolve` one, which signals the waiting workflow."""

from __future__ import annotations

from core.context import RequestContext
from core.db import transaction
from core.errors import InvalidInput, PolicyViolation
from ops.runtime import Runtime


async def waiting_tickets(rt: Runtime, *, state: str | None = "open"):
    from domains.crm import tickets

    async with rt.db() as s:
        return await tickets.list_tickets(s, state=state, waiting=True)


async def get_ticket(rt: Runtime, ticket_id: str):
    from domains.crm import tickets

    async with rt.db() as s:
        return await tickets.get_ticket(s, ticket_id)


async def decide(rt: Runtime, ctx: RequestContext, ticket_id: str, action: str, note: str = ""):
    """Tell the workflow behind an open ticket to retry its step, or that it was resolved by hand.

    The workflow resolves the ticket itself once it has acted, under the operator's name; until
    then the ticket stays open, so a decision sent twice is harmless (the second finds nothing
    left to decide, or is ignored by the workflow)."""
    from domains.audit.services import record
    from domains.crm import rules, tickets
    from workflows.attention import DECISIONS, SIGNAL, OperatorDecision

    if action not in DECISIONS:
        raise InvalidInput("ticket.decision.invalid", f"A decision is one of {', '.join(DECISIONS)}.")
    if action == "resolve" and not note.strip():
        raise PolicyViolation(
            "ticket.resolve.requires_resolution_notes", "Say what was done by hand: a note is required."
        )
    async with transaction(rt.db) as s:
        ticket = await tickets.get_ticket(s, ticket_id)
        if ticket.waiting_workflow_id is None:
            raise PolicyViolation(
                "ticket.decision.no_waiting_workflow",
                f"No workflow waits on {ticket_id}; resolve it in the ticket's own flow.",
            )
        if ticket.state not in rules.OPEN_TICKET_STATES:
            raise PolicyViolation(
                "ticket.transition.valid_from_state", f"Ticket {ticket_id} is already {ticket.state}."
            )
        record(
            s,
            ctx,
            f"ticket.decision.{action}",
            "ticket",
            ticket_id,
            {"workflowId": ticket.waiting_workflow_id, "topic": ticket.waiting_topic, "note": note.strip()},
        )
    client = await rt.temporal()
    await client.get_workflow_handle(ticket.waiting_workflow_id).signal(
        SIGNAL, OperatorDecision(ticket.waiting_topic or "", action, note.strip(), ctx)
    )
    return ticket

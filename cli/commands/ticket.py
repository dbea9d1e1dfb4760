"""`bss ticket`: trouble tickets (TMF621) — list, show, open, assign, move along the lifecycle.

A ticket a workflow waits on (a renewal the gateway keeps refusing, a refund that will not go
through, a stuck provisioning task) is resolved through that workflow: `bss ticket resolve` tells
the workflow (it resolves the ticket once it carried on), and `bss ticket retry` tells it to try its
step again. Every other ticket is moved directly: ack (needs an agent), start, resolve (needs
notes), close, cancel.
"""

from __future__ import annotations

from typing import Any

import typer

from cli.commands.order import BSS, styled
from cli.output import JsonOpt, card, emit, group, ok, table

app = group()

TICKETS = f"{BSS}/ticket"  # the tickets workflows wait on (retry / resolve through the workflow)
TT = "/tmf-api/troubleTicket/v4/troubleTicket"
TicketArg = typer.Argument(..., metavar="TKT")


def party(t: dict[str, Any], role: str) -> str | None:
    return next((p["id"] for p in t.get("relatedParty", []) if p.get("role") == role), None)


def entity(t: dict[str, Any], role: str) -> str | None:
    return next((e["id"] for e in t.get("relatedEntity", []) if e.get("role") == role), None)


def short_time(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ")


def _render_list(rows: list[dict[str, Any]]) -> None:
    if not rows:
        ok("No tickets.")
        return
    table(
        "Trouble tickets",
        ("Ticket", "State", "Priority", "Type", "Subject", "Customer", "Case", "Assignee", "Due"),
        [
            (
                t["id"],
                styled(t["state"]),
                t["priority"],
                t["ticketType"],
                t["name"],
                party(t, "customer"),
                entity(t, "case"),
                party(t, "assignee"),
                short_time(t.get("expectedResolutionDate")),
            )
            for t in rows
        ],
    )


def _render_waiting(rows: list[dict[str, Any]]) -> None:
    if not rows:
        ok("No workflow is waiting on an operator.")
        return
    table(
        "Tickets waited on by workflows",
        ("Ticket", "State", "Type", "Subject", "Workflow", "Opened"),
        [
            (
                t["id"],
                styled(t["state"]),
                t["ticketType"],
                t["subject"],
                t["waitingWorkflowId"],
                t["openedAt"],
            )
            for t in rows
        ],
    )


def _render_one(t: dict[str, Any]) -> None:
    notes = "\n".join(
        f"{short_time(n.get('date'))} {n.get('author', '')}: {n['text']}" for n in t.get("note", [])
    )
    history = " → ".join(s["status"] for s in t.get("statusChange", []))
    fields = [
        ("State", f"{styled(t['state'])} (TMF {t['status']})"),
        (
            "Priority",
            t["priority"] + (f" (escalated {t['escalations']}×)" if t.get("escalations") else ""),
        ),
        ("Type", t["ticketType"]),
        ("Subject", t["name"]),
        ("Description", t.get("description")),
        ("Customer", party(t, "customer")),
        ("Case", entity(t, "case")),
        ("Order", entity(t, "order")),
        ("Line", entity(t, "subscription") or entity(t, "service")),
        ("Assignee", party(t, "assignee") or "—"),
        ("Due", short_time(t.get("expectedResolutionDate")) or "—"),
        ("Waiting workflow", t.get("waitingWorkflowId")),
        ("Resolution", t.get("resolutionNotes")),
        ("History", history),
        ("Notes", notes or "—"),
    ]
    card(f"Ticket {t['id']}", [(k, v) for k, v in fields if v not in (None, "")])


@app.command("list")
def list_(
    state: str = typer.Option("open", "--state", help="open (any open state), a state, or all."),
    customer: str | None = typer.Option(None, "--customer", help="CUST-…"),
    case: str | None = typer.Option(None, "--case", help="CASE-…"),
    agent: str | None = typer.Option(None, "--agent", help="AGT-…"),
    waiting: bool = typer.Option(False, "--waiting", help="Only tickets a workflow waits on."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    as_json: bool = JsonOpt,
) -> None:
    """Trouble tickets, newest first (open ones unless --state says otherwise)."""
    from cli.client import api

    if waiting:
        emit(api().get(TICKETS, state=state), as_json, _render_waiting)
        return
    params = {"state": None if state == "all" else state, "relatedParty.id": customer, "caseId": case}
    emit(api().get(TT, assignee=agent, limit=limit, **params), as_json, _render_list)


@app.command("show")
def show(ticket_id: str = TicketArg, as_json: bool = JsonOpt) -> None:
    """One ticket, with its notes, state history and the workflow that waits on it."""
    from cli.client import api

    emit(api().get(f"{TT}/{ticket_id}"), as_json, _render_one)


@app.command("open")
def open_(
    customer: str | None = typer.Option(None, "--customer", help="CUST-… (or give --case)."),
    case: str | None = typer.Option(None, "--case", help="CASE-…: the ticket joins the case."),
    ticket_type: str = typer.Option(
        "information_request", "--type", help="service_outage, billing_dispute, …"
    ),
    subject: str = typer.Option(..., "--subject"),
    description: str = typer.Option("", "--description"),
    priority: str = typer.Option("normal", "--priority", help="low, normal, high or urgent."),
    agent: str | None = typer.Option(None, "--agent", help="Assign it at once (AGT-…)."),
    as_json: bool = JsonOpt,
) -> None:
    """Open a ticket for a customer or inside a case; its SLA timer starts."""
    from cli.client import api

    body: dict[str, Any] = {
        "name": subject,
        "description": description or subject,
        "ticketType": ticket_type,
        "severity": "Minor",
        "priority": priority,
        "relatedParty": [],
        "relatedEntity": [],
    }
    if customer:
        body["relatedParty"].append({"id": customer, "role": "customer", "@referredType": "Customer"})
    if agent:
        body["relatedParty"].append({"id": agent, "role": "assignee", "@referredType": "Agent"})
    if case:
        body["relatedEntity"].append({"id": case, "role": "case", "@referredType": "Case"})
    emit(api().post(TT, body), as_json, _render_one)


def _patch(ticket_id: str, body: dict[str, Any], as_json: bool, message: str) -> None:
    from cli.client import api

    emit(api().patch(f"{TT}/{ticket_id}", body), as_json, lambda t: ok(message.format(**t)))


@app.command("assign")
def assign(
    ticket_id: str = TicketArg,
    agent: str = typer.Option(..., "--agent", help="AGT-… (see `bss case agents`)."),
    as_json: bool = JsonOpt,
) -> None:
    """Give the ticket to an active agent."""
    body = {"relatedParty": [{"id": agent, "role": "assignee", "@referredType": "Agent"}]}
    _patch(ticket_id, body, as_json, f"{{id}} is assigned to {agent}.")


@app.command("ack")
def ack(
    ticket_id: str = TicketArg,
    agent: str | None = typer.Option(None, "--agent", help="Assign and acknowledge in one step."),
    as_json: bool = JsonOpt,
) -> None:
    """Acknowledge an open ticket (it needs an agent)."""
    body: dict[str, Any] = {"status": "acknowledged"}
    if agent:
        body["relatedParty"] = [{"id": agent, "role": "assignee", "@referredType": "Agent"}]
    _patch(ticket_id, body, as_json, "{id} is {state}.")


@app.command("start")
def start(ticket_id: str = TicketArg, as_json: bool = JsonOpt) -> None:
    """Start work on an acknowledged ticket (or resume a pending one)."""
    _patch(ticket_id, {"status": "inProgress"}, as_json, "{id} is {state}.")


@app.command("note")
def note(
    ticket_id: str = TicketArg, text: str = typer.Argument(..., metavar="TEXT"), as_json: bool = JsonOpt
) -> None:
    """Add a note to a ticket."""
    _patch(ticket_id, {"note": [{"text": text}]}, as_json, "Note added to {id}.")


@app.command("resolve")
def resolve(
    ticket_id: str = TicketArg,
    note: str = typer.Option(..., "--note", "--notes", help="What was done; kept on the ticket."),
    as_json: bool = JsonOpt,
) -> None:
    """Resolve a ticket. One a workflow waits on is resolved through that workflow (it carries on
    without the step, then resolves the ticket)."""
    from cli.client import api

    ticket = api().get(f"{TT}/{ticket_id}")
    if ticket.get("waitingWorkflowId") and ticket["state"] not in ("resolved", "closed", "cancelled"):
        result = api().post(f"{TICKETS}/{ticket_id}/resolve", {"note": note})
        emit(result, as_json, lambda t: ok(f"{t['waitingWorkflowId']} carries on; {ticket_id} is resolved."))
        return
    _patch(ticket_id, {"status": "resolved", "resolutionNotes": note}, as_json, "{id} is {state}.")


@app.command("retry")
def retry(ticket_id: str = TicketArg, as_json: bool = JsonOpt) -> None:
    """Tell the waiting workflow to try its step again (e.g. after the gateway is back)."""
    from cli.client import api

    result = api().post(f"{TICKETS}/{ticket_id}/retry")
    emit(
        result,
        as_json,
        lambda t: ok(f"{t['waitingWorkflowId']} will retry; it closes {ticket_id} when done."),
    )


@app.command("close")
def close(ticket_id: str = TicketArg, as_json: bool = JsonOpt) -> None:
    """Close a resolved ticket."""
    _patch(ticket_id, {"status": "closed"}, as_json, "{id} is {state}.")


@app.command("cancel")
def cancel(
    ticket_id: str = TicketArg,
    reason: str | None = typer.Option(None, "--reason"),
    as_json: bool = JsonOpt,
) -> None:
    """Cancel a ticket that is not resolved yet."""
    body: dict[str, Any] = {"status": "cancelled"}
    if reason:
        body["statusChangeReason"] = reason
    _patch(ticket_id, body, as_json, "{id} is {state}.")

"""`bss ticket`: the tickets a workflow opened when it met something it could not handle (a renewal
the gateway keeps refusing, a refund that will not go through), and the operator's two levers."""

from __future__ import annotations

from typing import Any

import typer

from cli.commands.order import BSS, styled
from cli.output import JsonOpt, card, emit, group, ok, table

app = group()

TICKETS = f"{BSS}/ticket"


def _render_list(rows: list[dict[str, Any]]) -> None:
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
    card(
        f"Ticket {t['id']}",
        [
            ("State", styled(t["state"])),
            ("Type", t["ticketType"]),
            ("Subject", t["subject"]),
            ("Description", t["description"]),
            ("Customer", t.get("customerId")),
            ("Order", t.get("relatedOrderId")),
            ("Line", t.get("relatedSubscriptionId")),
            ("Waiting workflow", t.get("waitingWorkflowId")),
            ("Resolution", t.get("resolutionNotes")),
        ],
    )


@app.command("list")
def list_(
    state: str = typer.Option("open", "--state", help="open, resolved, closed, cancelled or all."),
    as_json: bool = JsonOpt,
) -> None:
    """Tickets a workflow waits on (open ones unless --state says otherwise)."""
    from cli.client import api

    emit(api().get(TICKETS, state=state), as_json, _render_list)


@app.command("show")
def show(ticket_id: str = typer.Argument(..., metavar="TKT"), as_json: bool = JsonOpt) -> None:
    """One ticket, with the workflow that waits on it."""
    from cli.client import api

    emit(api().get(f"{TICKETS}/{ticket_id}"), as_json, _render_one)


@app.command("retry")
def retry(ticket_id: str = typer.Argument(..., metavar="TKT"), as_json: bool = JsonOpt) -> None:
    """Tell the waiting workflow to try its step again (e.g. after the gateway is back)."""
    from cli.client import api

    result = api().post(f"{TICKETS}/{ticket_id}/retry")
    emit(
        result,
        as_json,
        lambda t: ok(f"{t['waitingWorkflowId']} will retry; it closes {ticket_id} when done."),
    )


@app.command("resolve")
def resolve(
    ticket_id: str = typer.Argument(..., metavar="TKT"),
    note: str = typer.Option(..., "--note", help="What was done by hand; kept on the ticket."),
    as_json: bool = JsonOpt,
) -> None:
    """The step was done by hand: record how, and let the workflow carry on without it."""
    from cli.client import api

    result = api().post(f"{TICKETS}/{ticket_id}/resolve", {"note": note})
    emit(result, as_json, lambda t: ok(f"{t['waitingWorkflowId']} carries on; {ticket_id} is resolved."))

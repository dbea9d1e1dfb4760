"""`bss case`: a customer's matter, grouping its trouble tickets — open, list, show, note, close."""

from __future__ import annotations

from typing import Any

import typer

from cli.commands.order import BSS, styled
from cli.output import JsonOpt, card, emit, group, ok, table

app = group()

CASES = f"{BSS}/case"
CaseArg = typer.Argument(..., metavar="CASE")


def _time(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ")


def _render_list(rows: list[dict[str, Any]]) -> None:
    if not rows:
        ok("No cases.")
        return
    table(
        "Cases",
        ("Case", "State", "Priority", "Category", "Subject", "Customer", "Opened"),
        [
            (
                c["id"],
                styled(c["state"]),
                c["priority"],
                c["category"],
                c["subject"],
                c["customerId"],
                _time(c["openedAt"]),
            )
            for c in rows
        ],
    )


def _render_one(c: dict[str, Any]) -> None:
    tickets = "\n".join(
        f"{t['id']}  {t['state']:<12} {t['priority']:<7} {t['subject']}"
        + (f"  → {t['assignee']}" if t.get("assignee") else "")
        for t in c.get("tickets", [])
    )
    notes = "\n".join(f"{_time(n['createdAt'])} {n['author']}: {n['text']}" for n in c.get("notes", []))
    card(
        f"Case {c['id']} · {c['subject']}",
        [
            ("State", styled(c["state"]) + (f" ({c['resolutionCode']})" if c.get("resolutionCode") else "")),
            ("Customer", c["customerId"]),
            ("Priority", c["priority"]),
            ("Category", c["category"]),
            ("Description", c.get("description") or "—"),
            ("Opened", f"{_time(c['openedAt'])} by {c['openedBy']}"),
            ("Closed", _time(c.get("closedAt")) or "—"),
            ("Tickets", tickets or "none — add one with `bss ticket open --case …`"),
            ("Notes", notes or "—"),
        ],
    )


@app.command("open")
def open_(
    customer: str = typer.Option(..., "--customer", help="CUST-…"),
    subject: str = typer.Option(..., "--subject"),
    description: str = typer.Option("", "--description"),
    priority: str = typer.Option("normal", "--priority", help="low, normal, medium, high or critical."),
    category: str = typer.Option("other", "--category", help="account, billing, technical, information, …"),
    as_json: bool = JsonOpt,
) -> None:
    """Open a case for an active customer."""
    from cli.client import api

    body = {
        "customerId": customer,
        "subject": subject,
        "description": description,
        "priority": priority,
        "category": category,
    }
    emit(api().post(CASES, body), as_json, _render_one)


@app.command("list")
def list_(
    customer: str | None = typer.Option(None, "--customer", help="CUST-…"),
    state: str | None = typer.Option(None, "--state", help="open (any open state) or a state."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    as_json: bool = JsonOpt,
) -> None:
    """Cases, newest first."""
    from cli.client import api

    emit(api().get(CASES, customerId=customer, state=state, limit=limit), as_json, _render_list)


@app.command("show")
def show(case_id: str = CaseArg, as_json: bool = JsonOpt) -> None:
    """One case, with its tickets and notes."""
    from cli.client import api

    emit(api().get(f"{CASES}/{case_id}"), as_json, _render_one)


@app.command("note")
def note(
    case_id: str = CaseArg, text: str = typer.Argument(..., metavar="TEXT"), as_json: bool = JsonOpt
) -> None:
    """Add an internal note."""
    from cli.client import api

    emit(
        api().post(f"{CASES}/{case_id}/note", {"text": text}),
        as_json,
        lambda c: ok(f"Note added to {c['id']}."),
    )


@app.command("take")
def take(case_id: str = CaseArg, as_json: bool = JsonOpt) -> None:
    """Start work on an open case."""
    from cli.client import api

    result = api().post(f"{CASES}/{case_id}/transition", {"trigger": "take"})
    emit(result, as_json, lambda c: ok(f"{c['id']} is {c['state']}."))


@app.command("close")
def close(
    case_id: str = CaseArg,
    resolution: str = typer.Option(..., "--resolution", help="Resolution code, e.g. fixed, duplicate."),
    note: str | None = typer.Option(None, "--note"),
    cancel: bool = typer.Option(False, "--cancel", help="Cancel instead: its open tickets are cancelled."),
    as_json: bool = JsonOpt,
) -> None:
    """Resolve and close a case (every ticket of it must be resolved, closed or cancelled)."""
    from cli.client import api

    if cancel:
        result = api().post(
            f"{CASES}/{case_id}/transition", {"trigger": "cancel", "note": note or resolution}
        )
    else:
        body: dict[str, Any] = {"resolutionCode": resolution}
        if note:
            body["note"] = note
        result = api().post(f"{CASES}/{case_id}/close", body)
    emit(result, as_json, lambda c: ok(f"{c['id']} is {c['state']}."))


@app.command("agents")
def agents(as_json: bool = JsonOpt) -> None:
    """The agents tickets can be assigned to."""
    from cli.client import api

    emit(
        api().get(f"{BSS}/agent"),
        as_json,
        lambda rows: table(
            "Agents",
            ("Agent", "Name", "Role", "Status"),
            [(a["id"], a["name"], a["role"], a["status"]) for a in rows],
        ),
    )

"""`bss mail`: what was sent to customers and operators (the outbox, TMF681), newest first."""

from __future__ import annotations

from typing import Any

import typer

from cli.output import JsonOpt, card, console, emit, group, table

app = group()

MESSAGES = "/tmf-api/communicationManagement/v4/communicationMessage"
STATES = ("initial", "inProgress", "completed", "failed", "cancelled")


def _when(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else ""


def _chars(m: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c["value"] for c in m.get("characteristic", [])}


def _to(m: dict[str, Any]) -> str:
    r = (m.get("receiver") or [{}])[0]
    return r.get("email") or r.get("id") or ""


def _render_list(items: list[dict[str, Any]]) -> None:
    if not items:
        console().print("No messages.")
        return
    table(
        "Messages",
        ["Id", "Queued", "To", "Template", "Subject", "State", "Tries"],
        (
            (
                m["id"],
                _when(m.get("scheduledSendTime")),
                _to(m),
                _chars(m).get("template"),
                m.get("subject"),
                m.get("state"),
                m.get("tryTimes"),
            )
            for m in items
        ),
    )


def _render_one(m: dict[str, Any]) -> None:
    c = _chars(m)
    fields: list[tuple[str, Any]] = [
        ("From", m.get("sender", {}).get("email")),
        ("To", _to(m)),
        ("Customer", (m.get("receiver") or [{}])[0].get("party", {}).get("id")),
        ("Subject", m.get("subject")),
        ("Template", c.get("template")),
        ("State", f"{m.get('state')} after {m.get('tryTimes')} attempt(s)"),
        ("Queued", _when(m.get("scheduledSendTime"))),
        ("Sent", _when(m.get("sendTimeComplete"))),
        ("File", c.get("mailboxFile")),
    ]
    if c.get("lastError"):
        fields.append(("Last error", c["lastError"]))
    card(f"Message {m['id']}", [f for f in fields if f[1]])
    console().print(m.get("content") or "", markup=False, highlight=False)


@app.command("list")
def list_messages(
    to: str | None = typer.Option(None, "--to", help="Only messages to this email address."),
    customer: str | None = typer.Option(None, "--customer", help="Only messages to this customer (CUST-…)."),
    state: str | None = typer.Option(None, "--state", help=f"One of {', '.join(STATES)}."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    as_json: bool = JsonOpt,
) -> None:
    """Messages sent or waiting to be sent, newest first."""
    from cli.client import api

    params = {"receiver.email": to, "receiver.id": customer, "state": state, "limit": limit}
    emit(api().get(MESSAGES, **params), as_json, _render_list)


@app.command("show")
def show(message_id: str = typer.Argument(..., metavar="MSG"), as_json: bool = JsonOpt) -> None:
    """One message: headers, delivery state and the text."""
    from cli.client import api

    emit(api().get(f"{MESSAGES}/{message_id}"), as_json, _render_one)

"""`bss audit`: the audit log (every write, with actor, channel and service identity), newest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from cli.output import JsonOpt, console, emit, group, table

app = group()

EVENTS = "/tmf-api/event/v4/topic/audit/event"
_RELATIVE = re.compile(r"^(\d+)\s*(m|min|h|d)$")
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days"}


def since_value(text: str) -> str:
    """`2h`, `30m`, `7d` (before now) or an ISO date / date-time (UTC when no zone is given)."""
    m = _RELATIVE.match(text.strip())
    if m:
        return (datetime.now(UTC) - timedelta(**{_UNITS[m[2]]: int(m[1])})).isoformat()
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            "use 30m, 2h, 7d or an ISO date such as 2026-12-01T09:00:00Z", param_hint="--since"
        ) from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def _chars(e: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c["value"] for c in e.get("analyticCharacteristic", [])}


def _summary(payload: dict[str, Any], width: int = 70) -> str:
    text = ", ".join(f"{k}={v}" for k, v in payload.items() if v not in (None, "", [], {}))
    return text if len(text) <= width else text[: width - 1] + "…"


def _render(items: list[dict[str, Any]]) -> None:
    if not items:
        console().print("No audit events.")
        return
    table(
        "Audit events",
        ["At", "Event", "About", "Actor", "Channel", "Details"],
        (
            (
                (e.get("eventTime") or "")[:19].replace("T", " "),
                e["eventType"],
                f"{e['source'].get('name')} {e['source']['id']}",
                _chars(e).get("actor"),
                _chars(e).get("channel"),
                _summary(e.get("event") or {}),
            )
            for e in items
        ),
    )


@app.command("list")
def list_events(
    customer: str | None = typer.Option(
        None, "--customer", help="Events about this customer, their orders and lines."
    ),
    order: str | None = typer.Option(None, "--order", help="Events about this order (ORD-…)."),
    subscription: str | None = typer.Option(None, "--subscription", help="Events about this line (SUB-…)."),
    event_type: str | None = typer.Option(
        None, "--type", help="An event type; a trailing * matches a prefix (order.*)."
    ),
    since: str | None = typer.Option(None, "--since", help="30m, 2h, 7d or an ISO date-time."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    as_json: bool = JsonOpt,
) -> None:
    """Audit events, newest first."""
    from cli.client import api

    params = {
        "customerId": customer,
        "orderId": order,
        "subscriptionId": subscription,
        "eventType": event_type,
        "since": since_value(since) if since else None,
        "limit": limit,
    }
    emit(api().get(EVENTS, **params), as_json, _render)

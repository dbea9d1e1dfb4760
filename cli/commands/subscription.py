"""`bss subscription`: a line's card with its balance bars, a customer's lines, and the line's
actions: top-up, renew now, plan change (and its cancellation), termination."""

from __future__ import annotations

from typing import Any

import typer

from cli.output import JsonOpt, bar, card, console, emit, group, ok, table

app = group()

BSS = "/bss-api/v1/subscription"
LABEL = {"data": "Data", "voice": "Voice", "sms": "SMS", "data_roaming": "Roaming data"}
STATE_STYLE = {"active": "green", "blocked": "bold red", "terminated": "dim", "pending": "yellow"}

Sub = typer.Argument(..., metavar="SUB", help="The line, e.g. SUB-000001.")


def amount(allowance_type: str, value: int) -> str:
    """5120 data -> '5 GB', 300 -> '300 MB', voice 100 -> '100 min', -1 -> '∞'."""
    if value < 0:
        return "∞"
    if allowance_type in ("data", "data_roaming"):
        if value >= 1024:
            return f"{value / 1024:.1f}".removesuffix(".0") + " GB"
        return f"{value} MB"
    if allowance_type == "voice":
        return f"{value} min"
    return f"{value} SMS"


def balance_line(b: dict[str, Any]) -> str:
    kind, total = b["allowanceType"], b["total"]
    if total < 0:
        return bar(0, -1)
    if total == 0:  # PLAN_S carries a roaming bucket of 0 until a roaming top-up
        return "not included (a top-up adds it)"
    return f"{bar(b['consumed'], total)}  {amount(kind, b['remaining'])} of {amount(kind, total)} left"


def _day(value: str | None) -> str | None:
    return value[:16].replace("T", " ") if value else None


def _state(line: dict[str, Any]) -> str:
    from rich.markup import escape

    state = line.get("state") or "?"
    return f"[{STATE_STYLE.get(state, 'cyan')}]{escape(state)}[/]"


def _render_card(line: dict[str, Any]) -> None:
    from rich.markup import escape

    fields: list[tuple[str, Any]] = [("State", _state(line))]
    if line.get("stateReason"):
        fields.append(("Reason", escape(line["stateReason"])))
    price = line.get("price") or {}
    fields += [
        ("Customer", line.get("customerId")),
        ("MSISDN", line.get("msisdn")),
        ("eSIM", line.get("iccid")),
        (
            "Plan",
            f"{line.get('offeringId')} at {price.get('currency', '')} {price.get('amount', '')}".strip(),
        ),
        ("Period ends", _day(line.get("currentPeriodEnd"))),
    ]
    change = line.get("pendingChange")
    fields.append(
        ("Pending change", f"→ {change['offeringId']} at {_day(change['effectiveAt'])}" if change else "none")
    )
    migration = line.get("pendingPriceMigration")
    if migration:
        when = _day(migration["effectiveAt"])
        fields.append(("Price change", f"{migration['currency']} {migration['amount']} from {when} on"))
    for p in line.get("dayPasses") or []:
        fields.append(("Day pass", f"{p['vasOfferingId']} until {_day(p['expiresAt'])}"))
    if line.get("terminatedAt"):
        fields.append(("Terminated", _day(line["terminatedAt"])))
    for b in line.get("balances") or []:
        fields.append((LABEL.get(b["allowanceType"], b["allowanceType"]), balance_line(b)))
    card(f"Subscription {line['id']}", fields)


def _render_list(lines: list[dict[str, Any]]) -> None:
    if not lines:
        console().print("No lines.")
        return
    rows = []
    for line in lines:
        data = next((b for b in line.get("balances") or [] if b["allowanceType"] == "data"), None)
        rows.append(
            (
                line["id"],
                _state(line),
                line.get("msisdn"),
                line.get("offeringId"),
                _day(line.get("currentPeriodEnd")),
                (line.get("pendingChange") or {}).get("offeringId") or "",
                amount("data", data["remaining"]) if data else "",
            )
        )
    table(
        "Lines", ("Subscription", "State", "MSISDN", "Plan", "Period ends", "Changes to", "Data left"), rows
    )


@app.command("show")
def show(sub_id: str = Sub, as_json: bool = JsonOpt) -> None:
    """A line: state, number, plan, period, pending change and one balance bar per allowance."""
    from cli.client import api

    emit(api().get(f"{BSS}/{sub_id}"), as_json, _render_card)


@app.command("list")
def list_lines(
    customer: str = typer.Option(..., "--customer", help="The customer, e.g. CUST-1a2b3c4d."),
    as_json: bool = JsonOpt,
) -> None:
    """A customer's lines with their state and data left."""
    from cli.client import api

    emit(api().get(BSS, customerId=customer, limit=100), as_json, _render_list)


def _done(message: str) -> Any:
    def render(line: dict[str, Any]) -> None:
        ok(message)
        _render_card(line)

    return render


@app.command("vas")
def vas(
    sub_id: str = Sub,
    vas_id: str = typer.Argument(
        ..., metavar="VAS_ID", help="The top-up, e.g. VAS_DATA_1GB (bss catalog vas)."
    ),
    key: str | None = typer.Option(
        None, "--idempotency-key", help="Send the same key again and it is charged once."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Buy a top-up for a line, charged to the card on file."""
    from cli.client import api

    headers = {"Idempotency-Key": key} if key else None
    line = api().post(f"{BSS}/{sub_id}/vas", {"vasOfferingId": vas_id}, headers=headers)
    emit(line, as_json, _done(f"{vas_id} added to {sub_id}."))


@app.command("renew")
def renew(
    sub_id: str = Sub,
    key: str | None = typer.Option(
        None, "--idempotency-key", help="Send the same key again and it is charged once."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Renew now: charge the next period once and start it (reactivates a blocked line)."""
    from cli.client import api

    headers = {"Idempotency-Key": key} if key else None
    line = api().post(f"{BSS}/{sub_id}/renew", headers=headers)
    emit(line, as_json, _done(f"{sub_id} renewed until {_day(line.get('currentPeriodEnd'))}."))


@app.command("terminate")
def terminate(
    sub_id: str = Sub,
    reason: str | None = typer.Option(None, "--reason", help="Recorded on the line and in the audit log."),
    yes: bool = typer.Option(False, "--yes", help="Confirm: the line ends and its number is released."),
    as_json: bool = JsonOpt,
) -> None:
    """End a line: its number goes to a 90-day quarantine, its eSIM back to the pool. Needs --yes."""
    from cli.client import api
    from cli.output import fail

    if not yes:
        fail(f"Terminating {sub_id} cannot be undone; add --yes to confirm.", code=2)
    body = {"reason": reason} if reason else None
    line = api().post(f"{BSS}/{sub_id}/terminate", body)
    emit(line, as_json, _done(f"{sub_id} terminated; {line.get('msisdn')} is in quarantine."))


@app.command("plan-change")
def plan_change(
    sub_id: str = Sub,
    offering: str = typer.Argument(..., metavar="PLAN", help="The plan to move to, e.g. PLAN_M."),
    as_json: bool = JsonOpt,
) -> None:
    """Move a line to another plan at its next renewal."""
    from cli.client import api

    line = api().post(f"{BSS}/{sub_id}/plan-change", {"offeringId": offering})
    when = _day((line.get("pendingChange") or {}).get("effectiveAt"))
    emit(line, as_json, _done(f"{sub_id} moves to {offering} at its renewal on {when}."))


@app.command("cancel-plan-change")
def cancel_plan_change(sub_id: str = Sub, as_json: bool = JsonOpt) -> None:
    """Drop a line's pending plan change (none pending is not an error)."""
    from cli.client import api

    line = api().delete(f"{BSS}/{sub_id}/plan-change")
    emit(line, as_json, _done(f"{sub_id} stays on {line.get('offeringId')}."))

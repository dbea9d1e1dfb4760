"""`bss usage`: inject a usage event as a switch would (mediated and rated at once), and read a
line's usage history (TMF635)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from cli.output import JsonOpt, bar, card, emit, group, table

app = group()

USAGE = "/tmf-api/usageManagement/v4/usage"
BUCKET = "/tmf-api/prepayBalanceManagement/v4/bucket"
# The unit a bare number means, per type: `--quantity 5` is 5 MB, 5 min or 5 SMS.
BARE_UNIT = {"data": "MB", "voice": "min", "sms": "count"}


class UsageType(StrEnum):
    data = "data"
    voice = "voice"
    sms = "sms"


def characteristics(usage: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c["value"] for c in usage.get("usageCharacteristic", [])}


def _when(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else ""


def _render_rated(data: dict[str, Any]) -> None:
    usage, bucket = data["usage"], data["bucket"]
    c = characteristics(usage)
    fields: list[tuple[str, Any]] = [
        ("Line", f"{c.get('subscriptionId')} ({c.get('msisdn')})"),
        ("Usage", usage.get("description")),
        ("Charged to", c.get("allowanceType")),
        ("Rated", f"{c.get('ratedQuantity') or 0:,} {c.get('ratedUnit')}"),
        ("At", _when(usage.get("usageDate"))),
    ]
    if c.get("inBundleQuantity") != c.get("ratedQuantity"):
        fields.append(
            ("Past the allowance", f"{c['ratedQuantity'] - c['inBundleQuantity']:,} {c.get('ratedUnit')}")
        )
    if bucket is not None:
        total, used = bucket["totalValue"]["amount"], bucket["consumedValue"]["amount"]
        fields.append((bucket["name"], f"{bar(used, total)}  {bucket['remainingValueName']} left"))
    title = f"Usage {usage['id']} {usage['status']}" + ("" if data["created"] else " (already rated)")
    card(title, fields)
    if bucket is not None and bucket["status"] != "active":
        from cli.output import console

        console().print("[yellow]The line is blocked: further usage is refused until a top-up.[/]")


@app.command("simulate")
def simulate(
    msisdn: str = typer.Option(..., "--msisdn", help="The line's number, e.g. 90000001."),
    usage_type: UsageType = typer.Option(UsageType.data, "--type", help="data, voice or sms."),
    quantity: str = typer.Option(
        ..., "--quantity", help="500MB, 1GB, 3min, 90sec, 5 (a bare number: MB / min / SMS)."
    ),
    roaming: bool = typer.Option(
        False, "--roaming", help="Data used abroad: charged to the roaming allowance."
    ),
    event_id: str | None = typer.Option(None, "--id", help="Your event id; sending it again counts once."),
    as_json: bool = JsonOpt,
) -> None:
    """Send one usage event for a line and show what it was charged to and what is left."""
    from cli.client import api
    from core.errors import InvalidInput
    from domains.usage.rules import parse_quantity

    try:
        amount, unit = parse_quantity(quantity)
    except InvalidInput as exc:
        raise typer.BadParameter(exc.message, param_hint="--quantity") from None
    body: dict[str, Any] = {
        "usageType": usage_type.value,
        "usageCharacteristic": [
            {"name": "msisdn", "value": msisdn},
            {"name": "quantity", "value": str(amount)},
            {"name": "unit", "value": unit or BARE_UNIT[usage_type.value]},
            {"name": "roaming", "value": roaming},
        ],
    }
    if event_id:
        body["id"] = event_id
    client = api()
    # A resent id answers the original event; say so rather than show it as new.
    created = not event_id or not _exists(client, event_id)
    usage = client.post(USAGE, body)
    c = characteristics(usage)
    bucket = client.get(f"{BUCKET}/{c['subscriptionId']}.{c['allowanceType']}")
    emit({"usage": usage, "bucket": bucket, "created": created}, as_json, _render_rated)


def _exists(client: Any, event_id: str) -> bool:
    from cli.client import CliError

    try:
        client.get(f"{USAGE}/{event_id}")
    except CliError:
        return False
    return True


def _render_history(items: list[dict[str, Any]]) -> None:
    rows = []
    for u in items:
        c = characteristics(u)
        rows.append(
            (
                _when(u.get("usageDate")),
                u["id"],
                u["usageType"],
                f"{c.get('quantity')} {c.get('unit')}",
                c.get("allowanceType"),
                "yes" if c.get("roaming") else "",
                "" if c.get("inBundleQuantity") == c.get("ratedQuantity") else "past allowance",
            )
        )
    table(
        "Usage",
        ("When", "Event", "Type", "Quantity", "Charged to", "Roaming", "Note"),
        rows,
        caption=f"{len(rows)} shown, newest first",
    )


@app.command("history")
def history(
    subscription: str | None = typer.Option(None, "--subscription", help="Subscription id, e.g. SUB-000001."),
    msisdn: str | None = typer.Option(None, "--msisdn", help="The line's number."),
    usage_type: UsageType | None = typer.Option(None, "--type", help="Only data, voice or sms."),
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="How many to show (1–1000)."),
    as_json: bool = JsonOpt,
) -> None:
    """A line's rated usage, newest first."""
    from cli.client import api

    if not subscription and not msisdn:
        raise typer.BadParameter("say which line: --subscription or --msisdn")
    items = api().get(
        USAGE,
        subscriptionId=subscription,
        msisdn=msisdn,
        usageType=usage_type and usage_type.value,
        limit=limit,
    )
    emit(items, as_json, _render_history)

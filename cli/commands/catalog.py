"""`bss catalog`: the plans on sale with their winning price and allowances, and the VAS top-ups."""

from __future__ import annotations

from typing import Any

import typer

from cli.output import JsonOpt, card, emit, group, table

app = group()

TMF = "/tmf-api/productCatalogManagement/v4"
VAS = "/bss-api/v1/catalog/vas"
COLUMNS = ("data", "voice", "sms", "data_roaming")


def quantity(allowance_type: str, amount: int, unit: str = "") -> str:
    """5120 MB -> '5 GB', -1 -> 'unlimited', 100 voice -> '100 min'."""
    if amount < 0:
        return "unlimited"
    if amount == 0:
        return "—"
    if allowance_type in ("data", "data_roaming") or unit == "mb":
        if amount >= 1024:
            gb = amount / 1024
            return f"{gb:g} GB" if gb == int(gb) else f"{gb:.1f} GB"
        return f"{amount} MB"
    if allowance_type == "voice":
        return f"{amount} min"
    return f"{amount} SMS"


def _bundle(offering: dict[str, Any]) -> dict[str, str]:
    given = {
        a["allowanceType"]: quantity(a["allowanceType"], a["quantity"], a["unit"])
        for a in offering["bundledAllowance"]
    }
    return {kind: given.get(kind, "—") for kind in COLUMNS}


def _price(offering: dict[str, Any]) -> str:
    price = offering.get("activePrice")
    return f"{price['currency']} {price['amount']}" if price else "not on sale"


def _render_list(offerings: list[dict[str, Any]]) -> None:
    rows = []
    # cheapest first, as a customer reads a price list; plans not on sale at the end
    for o in sorted(
        offerings, key=lambda o: (o["activePrice"] is None, float((o["activePrice"] or {}).get("amount", 0)))
    ):
        bundle = _bundle(o)
        rows.append((o["id"], o["name"], _price(o), *bundle.values(), o["lifecycleStatus"]))
    table(
        "Plans",
        ("Plan", "Name", "Price / 30 days", "Data", "Voice", "SMS", "Roaming", "Status"),
        rows,
        caption="Prices are tax inclusive; the lowest active price wins.",
    )


def _render_card(o: dict[str, Any]) -> None:
    bundle = _bundle(o)
    window = o.get("validFor") or {}
    prices = ", ".join(
        f"{p['id']} {p['price']['taxIncludedAmount']['value']:.2f}"
        + (f" from {p['validFor']['startDateTime']}" if p["validFor"].get("startDateTime") else "")
        + (f" until {p['validFor']['endDateTime']}" if p["validFor"].get("endDateTime") else "")
        for p in o["productOfferingPrice"]
    )
    active = o.get("activePrice")
    card(
        f"{o['id']} · {o['name']}",
        [
            ("Status", o["lifecycleStatus"] + ("" if o["isSellable"] else " (not sold alone)")),
            ("Price", f"{_price(o)} / 30 days" + (f" ({active['id']})" if active else "")),
            ("Data", bundle["data"]),
            ("Voice", bundle["voice"]),
            ("SMS", bundle["sms"]),
            ("Roaming data", bundle["data_roaming"]),
            ("On sale", f"{window.get('startDateTime', 'always')} → {window.get('endDateTime', 'open')}"),
            ("Price rows", prices),
            ("Description", o.get("description") or ""),
        ],
        subtitle=o["productSpecification"]["id"],
    )


def _render_vas(items: list[dict[str, Any]]) -> None:
    rows = [
        (
            v["id"],
            v["name"],
            f"{v['price']['currency']} {v['price']['amount']}",
            ("roaming " if v["allowanceType"] == "data_roaming" else "")
            + ("+" if v["allowanceQuantity"] >= 0 else "")
            + quantity(v["allowanceType"], v["allowanceQuantity"], v["unit"]),
            f"{v['expiryHours']} h" if v["expiryHours"] else "end of period",
        )
        for v in items
    ]
    table("VAS top-ups", ("VAS", "Name", "Price", "Gives", "Lasts"), rows)


@app.command("list")
def list_offerings(
    status: str | None = typer.Option(None, "--status", help="Active or Retired."),
    as_json: bool = JsonOpt,
) -> None:
    """Plans with their current price and allowances."""
    from cli.client import api

    emit(api().get(f"{TMF}/productOffering", lifecycleStatus=status), as_json, _render_list)


@app.command("show")
def show(offering_id: str = typer.Argument(..., metavar="OFFERING"), as_json: bool = JsonOpt) -> None:
    """One plan: price rows, winning price, allowances, sale window."""
    from cli.client import api

    emit(api().get(f"{TMF}/productOffering/{offering_id}"), as_json, _render_card)


@app.command("vas")
def vas(as_json: bool = JsonOpt) -> None:
    """VAS top-ups a line can buy."""
    from cli.client import api

    emit(api().get(VAS), as_json, _render_vas)

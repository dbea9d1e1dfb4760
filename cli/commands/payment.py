"""`bss payment`: cards on file (TMF670). The number is tokenized by the API and never kept."""

from __future__ import annotations

from typing import Any

import typer

from cli.output import JsonOpt, emit, group, ok, table

app = group()

TMF = "/tmf-api/paymentMethod/v4/paymentMethod"


def _render_list(methods: list[dict[str, Any]]) -> None:
    rows = [
        (
            m["id"],
            m["brand"],
            f"•••• {m.get('lastFourDigits', '????')}",
            m["expirationDate"][:7],
            m.get("nameOnCard"),
            "yes" if m["isPreferred"] else "",
            m["status"],
            m["token"],
        )
        for m in methods
    ]
    table("Cards on file", ("Method", "Brand", "Card", "Expires", "Name", "Default", "Status", "Token"), rows)


def _render_one(m: dict[str, Any]) -> None:
    default = " (default)" if m["isPreferred"] else ""
    ok(
        f"{m['id']}: {m['brand']} •••• {m.get('lastFourDigits', '????')} for {m['relatedParty']['id']}{default}"
    )


@app.command("add-card")
def add_card(
    customer: str = typer.Option(..., "--customer", help="CUST-…"),
    card_number: str = typer.Option(
        ..., "--card", help="Card number (development: test cards only; 4000000000000002 is declined)."
    ),
    exp: str = typer.Option(..., "--exp", help="Expiry, MM/YY (e.g. 12/30) or YYYY-MM."),
    name_on_card: str | None = typer.Option(None, "--name-on-card"),
    default: bool = typer.Option(False, "--default", help="Charge this card from now on."),
    as_json: bool = JsonOpt,
) -> None:
    """Put a card on file for a customer (the first card becomes the default)."""
    from cli.client import api

    body: dict[str, Any] = {
        "@type": "bankCard",
        "cardNumber": card_number,
        "expirationDate": exp,
        "relatedParty": [{"id": customer, "role": "customer", "@referredType": "Customer"}],
    }
    if name_on_card:
        body["nameOnCard"] = name_on_card
    if default:
        body["isPreferred"] = True
    emit(api().post(TMF, body), as_json, _render_one)


@app.command("list-methods")
def list_methods(
    customer: str = typer.Option(..., "--customer", help="CUST-…"),
    removed: bool = typer.Option(False, "--removed", help="Show removed cards instead of active ones."),
    as_json: bool = JsonOpt,
) -> None:
    """A customer's cards on file."""
    from cli.client import api

    methods = api().get(TMF, customerId=customer, status="removed" if removed else "active")
    emit(methods, as_json, _render_list)


@app.command("remove-method")
def remove_method(pm_id: str = typer.Argument(..., metavar="PM"), as_json: bool = JsonOpt) -> None:
    """Remove a card; if it was the default, the newest remaining card takes over."""
    from cli.client import api

    api().delete(f"{TMF}/{pm_id}")
    emit(api().get(f"{TMF}/{pm_id}"), as_json, lambda m: ok(f"{m['id']} removed."))


@app.command("set-default")
def set_default(pm_id: str = typer.Argument(..., metavar="PM"), as_json: bool = JsonOpt) -> None:
    """Make this card the one charged for orders and renewals."""
    from cli.client import api

    emit(api().post(f"{TMF}/{pm_id}/setDefault"), as_json, _render_one)

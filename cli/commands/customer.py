"""`bss customer`: create, find and look at customers (TMF629), with KYC and cards on file."""

from __future__ import annotations

from typing import Any

import typer

from cli.output import JsonOpt, card, emit, group, table

app = group()

TMF = "/tmf-api/customerManagement/v4/customer"
PAYMENT = "/tmf-api/paymentMethod/v4/paymentMethod"


def _active(customer: dict[str, Any], kind: str) -> str | None:
    key = "emailAddress" if kind == "email" else "phoneNumber"
    for m in customer.get("contactMedium", []):
        if m["mediumType"] == kind and "endDateTime" not in m.get("validFor", {}):
            return m["characteristic"].get(key)
    return None


def _characteristic(customer: dict[str, Any], name: str) -> Any:
    return next((c["value"] for c in customer.get("characteristic", []) if c["name"] == name), None)


def _card_line(m: dict[str, Any]) -> str:
    default = " (default)" if m.get("isPreferred") else ""
    return f"{m['id']}  {m['brand']} •••• {m.get('lastFourDigits', '????')}  exp {m['expirationDate'][:7]}{default}"


def _render_list(customers: list[dict[str, Any]]) -> None:
    rows = [
        (
            c["id"],
            c["name"],
            c["status"],
            _active(c, "email"),
            _active(c, "mobile"),
            _characteristic(c, "kycStatus"),
            len(c.get("paymentMethod", [])),
        )
        for c in customers
    ]
    table("Customers", ("Customer", "Name", "Status", "Email", "Mobile", "KYC", "Cards"), rows)


def _render_card(data: dict[str, Any]) -> None:
    c, methods = data["customer"], data["paymentMethods"]
    kyc = _characteristic(c, "kycStatus") or "not_verified"
    if verified_at := _characteristic(c, "kycVerifiedAt"):
        kyc += f" at {verified_at} ({_characteristic(c, 'kycDocumentType')})"
    media = [
        f"{m['mediumType']}: {m['characteristic'].get('emailAddress') or m['characteristic'].get('phoneNumber')}"
        + (f" (ended {m['validFor']['endDateTime']})" if m.get("validFor", {}).get("endDateTime") else "")
        for m in sorted(c.get("contactMedium", []), key=lambda m: m["mediumType"])
    ]
    status = c["status"] + (f" — {c['statusReason']}" if c.get("statusReason") else "")
    card(
        f"{c['id']} · {c['name']}",
        [
            ("Status", status),
            ("Customer since", (_characteristic(c, "customerSince") or "")[:10]),
            ("Contact", "\n".join(media) or "—"),
            ("KYC", kyc),
            (
                "Cards on file",
                "\n".join(_card_line(m) for m in methods) or "none — add one with `bss payment add-card`",
            ),
        ],
        subtitle=c["engagedParty"]["id"],
    )


@app.command("create")
def create(
    name: str = typer.Option(..., "--name", help='Full name, e.g. "Ada Lovelace".'),
    email: str | None = typer.Option(None, "--email"),
    phone: str | None = typer.Option(None, "--phone", help="Mobile number, e.g. +6591234567."),
    as_json: bool = JsonOpt,
) -> None:
    """Create a customer (active) with an email and/or a mobile number."""
    from cli.client import api

    media = []
    if email:
        media.append({"mediumType": "email", "characteristic": {"emailAddress": email}})
    if phone:
        media.append({"mediumType": "mobile", "characteristic": {"phoneNumber": phone}})
    customer = api().post(TMF, {"name": name, "contactMedium": media})
    emit(customer, as_json, lambda c: _render_card({"customer": c, "paymentMethods": []}))


@app.command("list")
def list_customers(
    status: str | None = typer.Option(None, "--status", help="pending, active, suspended or closed."),
    name: str | None = typer.Option(None, "--name", help="Part of the name or id."),
    email: str | None = typer.Option(None, "--email"),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    as_json: bool = JsonOpt,
) -> None:
    """Customers, newest first."""
    from cli.client import api

    emit(api().get(TMF, status=status, name=name, email=email, limit=limit), as_json, _render_list)


@app.command("show")
def show(customer_id: str = typer.Argument(..., metavar="CUST"), as_json: bool = JsonOpt) -> None:
    """One customer: contact media, KYC and the cards on file."""
    from cli.client import api

    customer = api().get(f"{TMF}/{customer_id}")
    methods = api().get(PAYMENT, customerId=customer_id)
    emit({"customer": customer, "paymentMethods": methods}, as_json, _render_card)


# `bss customer kyc`: the signed-KYC command (cli/commands/kyc.py).
from cli.commands.kyc import kyc as _kyc  # noqa: E402

app.command("kyc")(_kyc)

"""`bss customer`: create, find and look at customers (TMF629), with KYC and cards on file."""

from __future__ import annotations

from typing import Any

import typer

from cli.output import JsonOpt, card, console, emit, group, table

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
    """The customer 360: contact media, KYC, cards on file, lines with their balances, orders,
    cases, tickets, payments and the latest interactions."""
    from cli.client import api

    client = api()
    customer = client.get(f"{TMF}/{customer_id}")  # a 404 stops here
    data = {
        "customer": customer,
        "paymentMethods": client.get(PAYMENT, customerId=customer_id),
        "lines": client.get(LINES, customerId=customer_id, limit=50),
        "orders": client.get(ORDERS, customerId=customer_id, limit=10),
        "cases": client.get(CASES, customerId=customer_id, limit=20),
        "tickets": client.get(TICKETS, **{"relatedParty.id": customer_id, "limit": 20}),
        "payments": client.get(PAYMENTS, customerId=customer_id, limit=10),
        "interactions": client.get(INTERACTIONS, **{"relatedParty.id": customer_id, "limit": 10}),
    }
    emit(data, as_json, _render_360)


LINES = "/bss-api/v1/subscription"
ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
CASES = "/bss-api/v1/case"
TICKETS = "/tmf-api/troubleTicket/v4/troubleTicket"
PAYMENTS = "/tmf-api/paymentManagement/v4/payment"
INTERACTIONS = "/tmf-api/partyInteraction/v4/partyInteraction"


def _t(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ")


def _render_360(data: dict[str, Any]) -> None:
    from cli.commands.order import customer_of, offering_of, styled, subscription_of
    from cli.commands.subscription import balance_line
    from cli.commands.ticket import entity, party

    _render_card(data)
    lines = data.get("lines") or []
    if lines:
        rows = []
        for line in lines:
            balances = line.get("balances") or []
            bars = "\n".join(f"{b['allowanceType']:<12} {balance_line(b)}" for b in balances) or "—"
            period = _t(line.get("currentPeriodEnd"))
            rows.append(
                (line["id"], styled(line["state"]), line.get("msisdn"), line.get("offeringId"), period, bars)
            )
        table("Lines", ("Line", "State", "MSISDN", "Plan", "Renews", "Balances"), rows)
    else:
        console().print("No lines.")
    if data.get("orders"):
        table(
            "Orders (latest 10)",
            ("Order", "State", "Plan", "Line", "Ordered"),
            [
                (o["id"], styled(o.get("state")), offering_of(o), subscription_of(o), _t(o.get("orderDate")))
                for o in data["orders"]
                if customer_of(o) in (None, data["customer"]["id"])
            ],
        )
    if data.get("cases"):
        table(
            "Cases",
            ("Case", "State", "Priority", "Subject", "Opened"),
            [
                (c["id"], styled(c["state"]), c["priority"], c["subject"], _t(c["openedAt"]))
                for c in data["cases"]
            ],
        )
    if data.get("tickets"):
        table(
            "Tickets",
            ("Ticket", "State", "Priority", "Type", "Subject", "Case", "Assignee", "Due"),
            [
                (
                    t["id"],
                    styled(t["state"]),
                    t["priority"],
                    t["ticketType"],
                    t["name"],
                    entity(t, "case"),
                    party(t, "assignee"),
                    _t(t.get("expectedResolutionDate")),
                )
                for t in data["tickets"]
            ],
        )
    if data.get("payments"):
        table(
            "Payments (latest 10)",
            ("Payment", "Status", "Amount", "For", "Date"),
            [
                (
                    p["id"],
                    styled(p["status"]),
                    f"{p['amount']['value']:.2f} {p['amount']['unit']}",
                    p.get("description"),
                    _t(p.get("paymentDate")),
                )
                for p in data["payments"]
            ],
        )
    if data.get("interactions"):
        table(
            "Interactions (latest 10)",
            ("When", "Channel", "Who", "What"),
            [
                (_t(i["creationDate"]), i["channel"][0]["name"], i.get("author"), i["description"])
                for i in data["interactions"]
            ],
        )


# `bss customer kyc`: the signed-KYC command (cli/commands/kyc.py).
from cli.commands.kyc import kyc as _kyc  # noqa: E402

app.command("kyc")(_kyc)

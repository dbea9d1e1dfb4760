"""`bss port`: number porting (MNP). Open a port-in (to a new or an existing line) or a port-out,
list and show requests, and the operator's approve / reject."""

from __future__ import annotations

from typing import Any

import typer

from cli.commands.order import BSS, styled
from cli.output import JsonOpt, card, emit, fail, group, ok, table

app = group()

PORTS = f"{BSS}/port-request"


def _render_list(rows: list[dict[str, Any]]) -> None:
    if not rows:
        ok("No port request matches.")
        return
    table(
        "Port requests",
        ("Request", "Direction", "State", "Number", "Other operator", "Port date", "Customer", "Line"),
        [
            (
                p["id"],
                p["direction"],
                styled(p["state"]),
                p["msisdn"],
                p["donorCarrier"] if p["direction"] == "port_in" else p["recipientCarrier"],
                (p["requestedPortDate"] or "")[:10],
                p.get("customerId"),
                p.get("subscriptionId"),
            )
            for p in rows
        ],
    )


def _render_one(p: dict[str, Any]) -> None:
    port_in = p["direction"] == "port_in"
    card(
        f"Port request {p['id']}",
        [
            ("Direction", "port-in" if port_in else "port-out"),
            ("State", styled(p["state"])),
            ("Number", p["msisdn"]),
            ("From" if port_in else "To", p["donorCarrier"] if port_in else p["recipientCarrier"]),
            ("Port date", p["requestedPortDate"]),
            ("Customer", p.get("customerId")),
            ("Plan (new line)", p.get("offeringId")),
            ("Line", p.get("subscriptionId")),
            ("Order", p.get("orderId")),
            ("Replaced number", p.get("previousMsisdn")),
            ("Reason", p.get("reason")),
            ("Approved by", p.get("approvedBy")),
        ],
        subtitle=f"workflow port-{p['id']}",
    )


@app.command("request")
def request(
    msisdn: str = typer.Argument(..., help="The number to port (8 digits)."),
    direction: str = typer.Option("port_in", "--direction", help="port_in or port_out."),
    donor: str | None = typer.Option(None, "--donor", help="Port-in: the operator the number leaves."),
    recipient: str | None = typer.Option(None, "--recipient", help="Port-out: the operator it goes to."),
    date: str = typer.Option(..., "--date", help="Requested port date, YYYY-MM-DD."),
    customer: str | None = typer.Option(None, "--customer", help="Port-in to a new line: the customer."),
    offering: str | None = typer.Option(None, "--offering", help="Port-in to a new line: the plan."),
    subscription: str | None = typer.Option(None, "--subscription", help="Port-in to this existing line."),
    idempotency_key: str | None = typer.Option(None, "--idempotency-key"),
    as_json: bool = JsonOpt,
) -> None:
    """Open a port request (answered `acknowledged`; its workflow validates it)."""
    from cli.client import api

    if direction not in ("port_in", "port_out"):
        fail("--direction is port_in or port_out.", 2)
    body = {
        "direction": direction,
        "msisdn": msisdn,
        "requestedPortDate": date,
        "donorCarrier": donor,
        "recipientCarrier": recipient,
        "customerId": customer,
        "offeringId": offering,
        "subscriptionId": subscription,
    }
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    result = api().post(PORTS, {k: v for k, v in body.items() if v is not None}, headers=headers)
    emit(result, as_json, _render_one)


@app.command("list")
def list_(
    state: str | None = typer.Option(
        None, "--state", help="acknowledged, validated, approved, completed, rejected, failed."
    ),
    direction: str | None = typer.Option(None, "--direction", help="port_in or port_out."),
    customer: str | None = typer.Option(None, "--customer"),
    as_json: bool = JsonOpt,
) -> None:
    """Port requests, newest first."""
    from cli.client import api

    params = {"state": state, "direction": direction, "customerId": customer}
    emit(api().get(PORTS, **{k: v for k, v in params.items() if v}), as_json, _render_list)


@app.command("show")
def show(port_id: str = typer.Argument(..., metavar="PORT"), as_json: bool = JsonOpt) -> None:
    """One port request."""
    from cli.client import api

    emit(api().get(f"{PORTS}/{port_id}"), as_json, _render_one)


@app.command("approve")
def approve(port_id: str = typer.Argument(..., metavar="PORT"), as_json: bool = JsonOpt) -> None:
    """Approve a validated request: the number moves on its port date."""
    from cli.client import api

    emit(api().post(f"{PORTS}/{port_id}/approve"), as_json, _render_one)


@app.command("reject")
def reject(
    port_id: str = typer.Argument(..., metavar="PORT"),
    reason: str = typer.Option(..., "--reason", help="Why; kept on the request and told to the customer."),
    as_json: bool = JsonOpt,
) -> None:
    """Reject a request that has not been carried out yet."""
    from cli.client import api

    emit(api().post(f"{PORTS}/{port_id}/reject", {"reason": reason}), as_json, _render_one)

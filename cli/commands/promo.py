"""`bss promo`: promo codes and their discounts, who may use them, and stopping one."""

from __future__ import annotations

from typing import Any

import typer

from cli.output import JsonOpt, card, emit, group, ok, table

app = group()

PROMO = "/bss-api/v1/promotion"


def _discount(p: dict[str, Any]) -> str:
    value = p["discountValue"]
    off = (
        f"{value.rstrip('0').rstrip('.') if '.' in value else value} % off"
        if p["discountType"] == "percent"
        else f"SGD {value} off"
    )
    periods = p["periods"]
    if periods is None:
        return f"{off}, every period"
    return f"{off}, {periods} period{'s' if periods != 1 else ''}"


def _uses(p: dict[str, Any]) -> str:
    return f"{p['uses']} / {p['maxUses']}" if p["maxUses"] is not None else f"{p['uses']} (no cap)"


def _window(p: dict[str, Any]) -> str:
    start, end = (p.get("validFrom") or "")[:10], (p.get("validTo") or "")[:10]
    if not start and not end:
        return "always"
    return f"{start or '…'} → {end or '…'}"


def _render_list(rows: list[dict[str, Any]]) -> None:
    table(
        "Promotions",
        ("Code", "Name", "Discount", "Kind", "Uses", "Valid", "Audience", "State"),
        [
            (
                p["code"],
                p["name"],
                _discount(p),
                p["codeKind"],
                _uses(p),
                _window(p),
                p["audience"],
                p["state"],
            )
            for p in rows
        ],
    )


def _render_card(p: dict[str, Any]) -> None:
    eligible = p.get("eligibleCustomerIds")
    card(
        f"{p['code']} · {p['name']}",
        [
            ("State", p["state"] + (f" ({p['stateReason']})" if p.get("stateReason") else "")),
            ("Discount", _discount(p)),
            ("Code kind", p["codeKind"]),
            ("Uses", _uses(p)),
            ("Valid", _window(p)),
            ("Audience", p["audience"]),
            ("Eligible", ", ".join(eligible) if eligible else ("—" if eligible is not None else "everyone")),
        ],
    )


@app.command("create")
def create(
    code: str = typer.Argument(..., help="The promo code customers type, e.g. SUMMER25."),
    name: str = typer.Option(..., "--name", help="What the promotion is called."),
    discount_type: str = typer.Option(..., "--type", help="percent | absolute"),
    value: str = typer.Option(..., "--value", help="Percent (0-100] or SGD off."),
    periods: int = typer.Option(
        None, "--periods", help="Discounted periods (activation = 1); omit for perpetual."
    ),
    code_kind: str = typer.Option(
        "multi_use", "--code-kind", help="single_use_shared | multi_use | single_use_per_customer"
    ),
    max_uses: int = typer.Option(None, "--max-uses", help="Cap on uses in all."),
    valid_from: str = typer.Option(
        None, "--valid-from", help="ISO time with zone, e.g. 2026-12-01T00:00:00Z"
    ),
    valid_to: str = typer.Option(None, "--valid-to", help="ISO time with zone."),
    customers: str = typer.Option(
        None, "--customers", help="Comma-separated customer ids: a targeted code only they may use."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Create a promotion."""
    from cli.client import api

    body: dict[str, Any] = {
        "code": code,
        "name": name,
        "discountType": discount_type,
        "discountValue": value,
        "periods": periods,
        "codeKind": code_kind,
        "maxUses": max_uses,
        "validFrom": valid_from,
        "validTo": valid_to,
    }
    if customers is not None:
        body["eligibleCustomerIds"] = [c.strip() for c in customers.split(",") if c.strip()]
    promo = api().post(PROMO, {k: v for k, v in body.items() if v is not None})

    def render(p: dict[str, Any]) -> None:
        ok(f"Promotion {p['code']} created.")
        _render_card(p)

    emit(promo, as_json, render)


@app.command("list")
def list_(
    state: str = typer.Option(None, "--state", help="active | exhausted"),
    as_json: bool = JsonOpt,
) -> None:
    """The promotions, newest first."""
    from cli.client import api

    emit(api().get(PROMO, state=state), as_json, _render_list)


@app.command("show")
def show(code: str, as_json: bool = JsonOpt) -> None:
    """One promotion: its terms, uses and eligibility list."""
    from cli.client import api

    emit(api().get(f"{PROMO}/{code}"), as_json, _render_card)


@app.command("assign")
def assign(code: str, customer: str = typer.Option(..., "--customer"), as_json: bool = JsonOpt) -> None:
    """Let a customer use a targeted code."""
    from cli.client import api

    emit(api().post(f"{PROMO}/{code}/assign", {"customerId": customer}), as_json, _render_card)


@app.command("unassign")
def unassign(code: str, customer: str = typer.Option(..., "--customer"), as_json: bool = JsonOpt) -> None:
    """Take a customer off a targeted code's list."""
    from cli.client import api

    emit(api().delete(f"{PROMO}/{code}/assign/{customer}"), as_json, _render_card)


@app.command("exhaust")
def exhaust(code: str, as_json: bool = JsonOpt) -> None:
    """Stop a promotion for good; orders that already claimed it keep their discount."""
    from cli.client import api

    emit(api().post(f"{PROMO}/{code}/exhaust"), as_json, _render_card)

"""`bss admin`: operator administration. `bss admin catalog ...` changes what is on sale."""

from __future__ import annotations

from typing import Any

import typer

from cli.output import JsonOpt, emit, group, ok

app = group()
catalog = group()
app.add_typer(catalog, name="catalog", help="Add plans and price rows, retire plans.")

ADMIN = "/bss-api/v1/admin/catalog"
Unlimited = "Per 30 days; -1 for unlimited."


@catalog.command("add-offering")
def add_offering(
    offering_id: str = typer.Option(..., "--id", help="e.g. PLAN_XL (capitals, digits, _)."),
    name: str = typer.Option(..., "--name"),
    price: str = typer.Option(..., "--price", help="SGD, tax inclusive, e.g. 60.00."),
    description: str | None = typer.Option(None, "--description"),
    price_id: str | None = typer.Option(None, "--price-id", help="Default PRICE_<id>."),
    valid_from: str | None = typer.Option(None, "--valid-from", help="ISO time with zone; default open."),
    valid_to: str | None = typer.Option(
        None, "--valid-to", help="ISO time with zone (exclusive); default open."
    ),
    data_mb: int | None = typer.Option(None, "--data-mb", help=Unlimited),
    voice_min: int | None = typer.Option(None, "--voice-min", help=Unlimited),
    sms_count: int | None = typer.Option(None, "--sms-count", help=Unlimited),
    data_roaming_mb: int | None = typer.Option(None, "--data-roaming-mb", help=Unlimited),
    as_json: bool = JsonOpt,
) -> None:
    """A new plan with its first price and at least one allowance."""
    from cli.client import api

    allowances = {"data": data_mb, "voice": voice_min, "sms": sms_count, "dataRoaming": data_roaming_mb}
    body: dict[str, Any] = {
        "id": offering_id,
        "name": name,
        "amount": price,
        "description": description,
        "priceId": price_id,
        "validFrom": valid_from,
        "validTo": valid_to,
        "allowances": {k: v for k, v in allowances.items() if v is not None},
    }
    created = api().post(f"{ADMIN}/offering", {k: v for k, v in body.items() if v is not None})
    emit(created, as_json, _added)


def _added(o: dict[str, Any]) -> None:
    price = o.get("activePrice")
    if price:
        ok(f"{o['id']} {o['name']} on sale at SGD {price['amount']}.")
    else:
        ok(
            f"{o['id']} {o['name']} added; on sale from {o['validFor'].get('startDateTime', 'its first price')}."
        )


@catalog.command("add-price")
def add_price(
    offering_id: str = typer.Option(..., "--offering", help="The plan, e.g. PLAN_M."),
    price_id: str = typer.Option(..., "--price-id", help="e.g. PRICE_PLAN_M_CNY."),
    amount: str = typer.Option(..., "--amount", help="SGD, tax inclusive."),
    valid_from: str | None = typer.Option(None, "--valid-from", help="ISO time with zone; default open."),
    valid_to: str | None = typer.Option(
        None, "--valid-to", help="ISO time with zone (exclusive); default open."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """A price row; while it is the lowest active one, new orders pay it."""
    from cli.client import api

    body = {"id": price_id, "amount": amount, "validFrom": valid_from, "validTo": valid_to}
    created = api().post(
        f"{ADMIN}/offering/{offering_id}/price", {k: v for k, v in body.items() if v is not None}
    )
    emit(created, as_json, lambda p: ok(f"{p['id']}: SGD {p['price']['value']:.2f} for {offering_id}."))


@catalog.command("retire-offering")
def retire_offering(
    offering_id: str = typer.Option(..., "--id", help="The plan to stop selling."),
    as_json: bool = JsonOpt,
) -> None:
    """Stop selling a plan; lines already on it keep it and renew at their snapshot price."""
    from cli.client import api

    retired = api().post(f"{ADMIN}/offering/{offering_id}/retire")
    emit(retired, as_json, lambda o: ok(f"{o['id']} retired."))


@catalog.command("migrate-price")
def migrate_price(
    offering_id: str = typer.Option(..., "--offering", help="The plan whose lines move, e.g. PLAN_M."),
    new_price_id: str = typer.Option(..., "--new-price-id", help="A price row of that plan (add-price)."),
    notice_days: int = typer.Option(30, "--notice-days", min=0, max=3650, help="Days of notice."),
    effective_from: str | None = typer.Option(
        None, "--effective-from", help="ISO time with zone; never earlier than the notice allows."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Move every live line of a plan to a new price, from its first renewal after the notice."""
    from cli.client import api

    body: dict[str, Any] = {"newPriceId": new_price_id, "noticeDays": notice_days}
    if effective_from:
        body["effectiveFrom"] = effective_from
    done = api().post(f"{ADMIN}/offering/{offering_id}/migrate-price", body)
    emit(
        done,
        as_json,
        lambda d: ok(
            f"{d['linesScheduled']} line(s) of {offering_id} move to {new_price_id} "
            f"at their first renewal after {notice_days} days' notice."
        ),
    )

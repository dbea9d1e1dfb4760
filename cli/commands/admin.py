"""`bss admin`: operator administration. `bss admin catalog ...` changes what is on sale;
`bss admin token ...` hands out API tokens with a role."""

from __future__ import annotations

from typing import Any

import typer

from cli.output import JsonOpt, emit, group, ok

app = group()
catalog = group()
app.add_typer(catalog, name="catalog", help="Add plans and price rows, retire plans.")
token = group()
app.add_typer(token, name="token", help="Create, list and revoke API tokens (admin only).")
operator = group()
app.add_typer(operator, name="operator", help="Cockpit operator accounts: create, list, disable, enable.")

ADMIN = "/bss-api/v1/admin/catalog"
TOKENS = "/bss-api/v1/admin/token"
OPERATORS = "/bss-api/v1/admin/operator"
ROLES_HELP = "admin, operator, channel (a portal or agent; may name the actor), network (usage, device events) or readonly."
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


@token.command("create")
def token_create(
    name: str = typer.Option(
        ..., "--name", help="Who uses it, e.g. portal-web; it is the actor in the audit log."
    ),
    role: str = typer.Option(..., "--role", help=ROLES_HELP),
    as_json: bool = JsonOpt,
) -> None:
    """A new API token; it is printed now and never again (only its hash is kept)."""
    from cli.client import api

    created = api().post(TOKENS, {"name": name, "role": role})
    emit(created, as_json, _token_created)


def _token_created(t: dict[str, Any]) -> None:
    ok(f"Token {t['name']} ({t['role']}) created. Keep it now; it is not shown again:")
    # Plain print: the token must copy cleanly, without markup or wrapping.
    print(t["token"])


@token.command("list")
def token_list(as_json: bool = JsonOpt) -> None:
    """Every token with its role, when it was created and last used, and whether it is revoked."""
    from cli.client import api
    from cli.output import table

    tokens = api().get(TOKENS)
    emit(
        tokens,
        as_json,
        lambda ts: table(
            "API tokens",
            ["Name", "Role", "Source", "Created", "Last used", "Revoked"],
            [
                (
                    t["name"],
                    t["role"],
                    t["source"],
                    (t["createdAt"] or "")[:19],
                    (t["lastUsedAt"] or "")[:19],
                    (t["revokedAt"] or "")[:19] if t["revoked"] else "no",
                )
                for t in ts
            ],
        ),
    )


@token.command("revoke")
def token_revoke(name: str = typer.Argument(..., help="The token's name."), as_json: bool = JsonOpt) -> None:
    """Revoke a token: every request with it is refused from now on."""
    from cli.client import api

    revoked = api().post(f"{TOKENS}/{name}/revoke")
    emit(revoked, as_json, lambda t: ok(f"Token {t['name']} revoked at {t['revokedAt'][:19]}."))


@operator.command("create")
def operator_create(
    email: str = typer.Option(..., "--email", help="The operator's sign-in email."),
    role: str = typer.Option(..., "--role", help="csr, supervisor or admin."),
    name: str | None = typer.Option(
        None, "--name", help="Shown in the cockpit; default the email's local part."
    ),
    password: str | None = typer.Option(
        None, "--password", help="10-256 characters; omit it to have one generated and printed once."
    ),
    ask_password: bool = typer.Option(False, "--ask-password", help="Type the password at a hidden prompt."),
    as_json: bool = JsonOpt,
) -> None:
    """A new cockpit operator; a generated password is printed now and never again."""
    from cli.client import api

    if ask_password and password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    body = {"email": email, "role": role, "name": name, "password": password}
    created = api().post(OPERATORS, {k: v for k, v in body.items() if v is not None})
    emit(created, as_json, _operator_created)


def _operator_created(o: dict[str, Any]) -> None:
    ok(f"Operator {o['email']} ({o['role']}) created as {o['id']}.")
    if o.get("password"):
        ok("Their password, shown now and never again:")
        print(o["password"])  # plain: it must copy cleanly


@operator.command("list")
def operator_list(as_json: bool = JsonOpt) -> None:
    """Every operator with role, state and last sign-in."""
    from cli.client import api
    from cli.output import table

    rows = api().get(OPERATORS)
    emit(
        rows,
        as_json,
        lambda os_: table(
            "Operators",
            ["Id", "Email", "Name", "Role", "State", "Last sign-in"],
            [
                (
                    o["id"],
                    o["email"],
                    o["name"],
                    o["role"],
                    "disabled" if o["disabled"] else ("locked" if o["lockedUntil"] else "active"),
                    (o["lastLoginAt"] or "")[:19],
                )
                for o in os_
            ],
        ),
    )


@operator.command("disable")
def operator_disable(
    ref: str = typer.Argument(..., help="The operator's email or id (OP-…)."), as_json: bool = JsonOpt
) -> None:
    """Disable an operator: no sign-in, and their open cockpit sessions stop working."""
    from cli.client import api

    done = api().post(f"{OPERATORS}/{ref}/disable")
    emit(done, as_json, lambda o: ok(f"Operator {o['email']} disabled."))


@operator.command("enable")
def operator_enable(
    ref: str = typer.Argument(..., help="The operator's email or id (OP-…)."), as_json: bool = JsonOpt
) -> None:
    """Enable a disabled operator, or lift a lockout after wrong passwords."""
    from cli.client import api

    done = api().post(f"{OPERATORS}/{ref}/enable")
    emit(done, as_json, lambda o: ok(f"Operator {o['email']} enabled."))

"""`bss inventory`: the number pool and the eSIM profiles (TMF639), counts and range adds."""

from __future__ import annotations

from enum import Enum
from typing import Any

import typer

from cli.output import JsonOpt, card, emit, group, ok, table
from domains.inventory.rules import ESIM_STATES, MSISDN_STATUSES

app = group()
msisdn = group()
esim = group()
app.add_typer(msisdn, name="msisdn", help="Mobile numbers: list, show, add a range.")
app.add_typer(esim, name="esim", help="eSIM profiles: list, show with the activation code.")

TMF = "/tmf-api/resourceInventoryManagement/v4/resource"
BSS = "/bss-api/v1/inventory"
# Choices, so a typo is a usage error (exit 2) before any request.
MsisdnStatus = Enum("MsisdnStatus", {s: s for s in MSISDN_STATUSES}, type=str)
EsimState = Enum("EsimState", {s: s for s in ESIM_STATES}, type=str)
LimitOpt = typer.Option(50, "--limit", min=1, max=1000, help="How many to show (1–1000).")


def characteristics(resource: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c["value"] for c in resource.get("resourceCharacteristic", [])}


def _day(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else ""


def _render_msisdns(items: list[dict[str, Any]]) -> None:
    rows = []
    for r in items:
        c = characteristics(r)
        until = c.get("quarantineUntil") or c.get("reservedUntil")
        rows.append(
            (r["id"], c.get("poolStatus"), c.get("reservedFor"), c.get("subscriptionId"), _day(until))
        )
    table(
        "Numbers",
        ("MSISDN", "Status", "Held for", "Subscription", "Until"),
        rows,
        caption=f"{len(rows)} shown",
    )


def _render_msisdn(r: dict[str, Any]) -> None:
    c = characteristics(r)
    fields = [
        ("Status", c.get("poolStatus")),
        ("TMF state", f"{r['resourceStatus']} / {r['operationalState']} / {r['usageState']}"),
        ("Held for", c.get("reservedFor")),
        ("Held since", _day(c.get("reservedAt"))),
        ("Hold ends", _day(c.get("reservedUntil"))),
        ("Subscription", c.get("subscriptionId")),
        ("Quarantine ends", _day(c.get("quarantineUntil"))),
    ]
    card(f"MSISDN {r['id']}", [(k, v) for k, v in fields if v])


@msisdn.command("list")
def msisdn_list(
    status: MsisdnStatus | None = typer.Option(None, "--status", help="Pool status."),
    prefix: str | None = typer.Option(None, "--prefix", help="Leading digits, e.g. 9000."),
    limit: int = LimitOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Numbers in number order, with who holds them."""
    from cli.client import api

    items = api().get(TMF, resourceType="msisdn", status=status and status.value, prefix=prefix, limit=limit)
    emit(items, as_json, _render_msisdns)


@msisdn.command("show")
def msisdn_show(number: str = typer.Argument(..., metavar="MSISDN"), as_json: bool = JsonOpt) -> None:
    """One number: status, holder, subscription, quarantine end."""
    from cli.client import api

    emit(api().get(f"{TMF}/{number}"), as_json, _render_msisdn)


@msisdn.command("add-range")
def add_range(
    prefix: str = typer.Argument(..., help="4 to 7 digits."),
    count: int = typer.Argument(..., help="1 to 10,000; numbers are prefix + 0000, 0001, …"),
    as_json: bool = JsonOpt,
) -> None:
    """Add prefix+0000 … to the pool; numbers already there are left as they are."""
    from cli.client import api

    result = api().post(f"{BSS}/msisdn/add-range", {"prefix": prefix, "count": count})

    def render(r: dict[str, Any]) -> None:
        last = f"{r['prefix']}{r['count'] - 1:04d}"
        ok(f"Added {r['added']} numbers {r['prefix']}0000–{last} ({r['skipped']} were already in the pool).")

    emit(result, as_json, render)


def _render_esims(items: list[dict[str, Any]]) -> None:
    rows = []
    for r in items:
        c = characteristics(r)
        rows.append(
            (
                r["id"],
                c.get("imsi"),
                c.get("profileState"),
                c.get("msisdn"),
                c.get("reservedFor"),
                c.get("subscriptionId"),
            )
        )
    table(
        "eSIM profiles",
        ("ICCID", "IMSI", "State", "MSISDN", "Held for", "Subscription"),
        rows,
        caption=f"{len(rows)} shown",
    )


@esim.command("list")
def esim_list(
    status: EsimState | None = typer.Option(None, "--status", help="Profile state."),
    limit: int = LimitOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Profiles in ICCID order, with their state and line."""
    from cli.client import api

    emit(
        api().get(TMF, resourceType="esim", status=status and status.value, limit=limit),
        as_json,
        _render_esims,
    )


@esim.command("show")
def esim_show(
    iccid: str = typer.Argument(..., metavar="ICCID"),
    qr: bool = typer.Option(
        False, "--qr", help="Also print the activation code as a QR for a phone to scan."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """One profile as an activation card: the LPA code a device needs to download it."""
    from cli.client import api

    activation = api().get(f"{BSS}/esim/{iccid}/activation")
    holder = characteristics(api().get(f"{TMF}/{iccid}"))

    def render(a: dict[str, Any]) -> None:
        card(
            f"eSIM {a['iccid']}",
            [
                ("State", a["state"]),
                ("IMSI", a["imsi"]),
                ("MSISDN", a["msisdn"]),
                ("Subscription", holder.get("subscriptionId")),
                ("Held for", holder.get("reservedFor")),
                ("SM-DP+", a["smdpServer"]),
                ("Matching ID", a["matchingId"]),
                ("Activation code", a["activationCode"]),
            ],
            subtitle="GSMA SGP.22 LPA",
        )
        if qr:
            import segno

            segno.make(a["activationCode"], error="m").terminal(compact=True)

    emit(activation, as_json, render)


def _render_counts(counts: dict[str, dict[str, int]]) -> None:
    for pool, title in (("msisdn", "Numbers"), ("esim", "eSIM profiles")):
        by_status = counts[pool]
        table(title, ("Status", "Count"), [*by_status.items(), ("total", sum(by_status.values()))])


@app.command("counts")
def counts(as_json: bool = JsonOpt) -> None:
    """How many numbers and profiles are in each state."""
    from cli.client import api

    emit(api().get(f"{BSS}/counts"), as_json, _render_counts)

"""`bss esim`: a line's activation code (and its QR code, for a phone to scan), and playing the
device: tell the SM-DP+ the profile was downloaded or installed."""

from __future__ import annotations

import io
from enum import StrEnum
from typing import Any

import typer

from cli.commands.order import BSS, styled
from cli.output import JsonOpt, card, console, emit, group

app = group()


class DeviceEvent(StrEnum):
    downloaded = "downloaded"
    installed = "installed"


def qr_block(code: str) -> str:
    """The QR code in half-block characters: plain text, so it survives pipes and test runners."""
    import segno

    out = io.StringIO()
    segno.make(code, error="m").terminal(out=out, compact=True)
    return out.getvalue()


def _render_activation(a: dict[str, Any]) -> None:
    from rich.markup import escape

    card(
        f"eSIM {a['iccid']}",
        [
            ("State", styled(a.get("state"))),
            ("MSISDN", a.get("msisdn")),
            ("IMSI", a.get("imsi")),
            ("SM-DP+", a.get("smdpServer")),
            ("Matching ID", a.get("matchingId")),
            ("Activation code", escape(a["activationCode"])),
        ],
        subtitle="scan with the phone's camera, or type the code",
    )
    console().print(qr_block(a["activationCode"]), markup=False, highlight=False, end="")


@app.command("activation")
def activation(iccid: str = typer.Argument(..., metavar="ICCID"), as_json: bool = JsonOpt) -> None:
    """The activation code of a profile, as text and as a QR code."""
    from cli.client import api

    emit(api().get(f"{BSS}/inventory/esim/{iccid}/activation"), as_json, _render_activation)


def _render_status(s: dict[str, Any]) -> None:
    card(
        f"eSIM {s.get('iccid')}",
        [
            (k, styled(v) if k == "state" else v)
            for k, v in s.items()
            if k != "iccid" and not isinstance(v, dict)
        ],
    )


@app.command("device")
def device(
    iccid: str = typer.Argument(..., metavar="ICCID"),
    event: DeviceEvent = typer.Argument(..., metavar="EVENT", help="downloaded or installed."),
    as_json: bool = JsonOpt,
) -> None:
    """Play the device: report that the profile was downloaded or installed."""
    from cli.client import api

    api().post(f"{BSS}/esim/{iccid}/device-event", {"event": event.value})
    emit(api().get(f"{BSS}/esim/{iccid}/status"), as_json, _render_status)


@app.command("status")
def status(iccid: str = typer.Argument(..., metavar="ICCID"), as_json: bool = JsonOpt) -> None:
    """Where the profile's download stands (prepared, downloaded, installed)."""
    from cli.client import api

    emit(api().get(f"{BSS}/esim/{iccid}/status"), as_json, _render_status)


@app.command("rearm")
def rearm(iccid: str = typer.Argument(..., metavar="ICCID"), as_json: bool = JsonOpt) -> None:
    """Re-arm a line's profile for a new device: a new activation code (the old one stops working)."""
    from cli.client import api

    data = api().post(f"{BSS}/esim/{iccid}/rearm")
    emit(
        data,
        as_json,
        lambda a: _render_activation(
            {**a, "smdpServer": a["activationCode"].split("$")[1] if "$" in a["activationCode"] else None}
        ),
    )

"""`bss clock`: the business clock of a test stack (`bss up --test-clock`).

`advance` moves business time on for the API and the worker together and tells every running
line, so a renewal or a day pass's end that falls due happens at once. Anywhere but on a test
stack the API refuses to move the clock (`clock.test_clock_disabled`).
"""

from __future__ import annotations

from typing import Any

import typer

from cli.output import JsonOpt, card, emit, fail, group, ok

app = group()

CLOCK = "/bss-api/v1/admin/clock"


def _ahead(seconds: float) -> str:
    """1.5 -> '1 s ahead', 2592000 -> '30 d ahead', -3 -> '3 s behind'."""
    size = abs(seconds)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if size >= length:
            text = f"{size / length:.2f}".rstrip("0").rstrip(".") + f" {unit}"
            break
    else:
        text = f"{size:.0f} s"
    if text == "0 s":
        return "none (wall-clock time)"
    return f"{text} {'ahead of' if seconds > 0 else 'behind'} wall-clock time"


def _render(r: dict[str, Any]) -> None:
    fields: list[tuple[str, Any]] = [
        ("Business time", r["now"][:19].replace("T", " ") + " UTC"),
        ("Frozen", "yes" if r["frozen"] else "no"),
        ("Offset", _ahead(r["offsetSeconds"])),
        ("Test clock", "on" if r["testClock"] else "off (start the stack with `bss up --test-clock`)"),
    ]
    if "workflowsSignalled" in r:
        fields.append(("Lines told", r["workflowsSignalled"]))
    card("Business clock", fields)


def _moved(message: str) -> Any:
    def render(r: dict[str, Any]) -> None:
        ok(message.format(now=r["now"][:19].replace("T", " "), told=r.get("workflowsSignalled", 0)))
        _render(r)

    return render


@app.command("now")
def now(as_json: bool = JsonOpt) -> None:
    """What the business clock reads, whether it is frozen, and how far it runs ahead."""
    from cli.client import api

    emit(api().get(CLOCK), as_json, _render)


@app.command("freeze")
def freeze(
    at: str | None = typer.Option(
        None, "--at", help="ISO time with zone, e.g. 2026-05-01T09:00:00+00:00 (default: now)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Stop business time, now or at a later moment (test stacks only)."""
    from cli.client import api

    body = None
    if at is not None:
        from datetime import datetime

        try:
            when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            fail(f"{at!r} is not an ISO time; use e.g. 2026-05-01T09:00:00+00:00.", code=2)
        if when.tzinfo is None:
            fail("Give --at with its zone, e.g. 2026-05-01T09:00:00+00:00.", code=2)
        body = {"at": when.isoformat()}
    emit(
        api().post(f"{CLOCK}/freeze", body),
        as_json,
        _moved("Business time frozen at {now} UTC; {told} subscription workflow(s) told."),
    )


@app.command("advance")
def advance(
    duration: str = typer.Argument(
        ..., metavar="DURATION", help="How far: 30d, 25h, 90m, 45s, 2w, 1d12h, or ISO 8601 (PT1H, P30D)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Move business time forward; renewals and day-pass ends that fall due run at once."""
    from cli.client import api
    from core.errors import InvalidInput

    try:
        from core.clock import parse_duration

        parse_duration(duration)
    except InvalidInput as exc:
        fail(exc.message, code=2)
    emit(
        api().post(f"{CLOCK}/advance", {"duration": duration}),
        as_json,
        _moved("Business time is now {now} UTC; {told} subscription workflow(s) told."),
    )


@app.command("unfreeze")
def unfreeze(as_json: bool = JsonOpt) -> None:
    """Let business time run again from where it stood (it does not jump back)."""
    from cli.client import api

    emit(
        api().post(f"{CLOCK}/unfreeze"),
        as_json,
        _moved("Business time runs again from {now} UTC; {told} subscription workflow(s) told."),
    )

"""`bss trace`: follow a saga through its Temporal workflow histories, drawn as a swimlane
(one lane per workflow, one row per activity, timer, child workflow or signal)."""

from __future__ import annotations

from typing import Any

import typer

from cli.output import JsonOpt, console, emit, group

app = group()

BSS = "/bss-api/v1/trace"
KIND_STYLE = {
    "activity": "cyan",
    "localActivity": "blue",
    "timer": "magenta",
    "childWorkflow": "green",
    "signal": "yellow",
    "update": "yellow",
    "flag": "red",
}
BAR_CHAR = {"timer": "░", "childWorkflow": "▓"}
INSTANT = {"signal", "update", "flag"}
LIFETIME = "━"
FAILED = {"failed", "timedOut", "terminated"}


def duration(ms: int | None) -> str:
    """Milliseconds while the saga is fast; minutes, hours or days for the waits that are not."""
    if ms is None:
        return "running"
    if ms < 60_000:
        return f"{ms:,} ms"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000)):
        if ms >= size:
            return f"{ms / size:.1f} {unit}"
    return f"{ms} ms"  # pragma: no cover


def _label(step: dict[str, Any]) -> str:
    name, kind = step["name"], step["kind"]
    if kind == "activity":
        return f"{name} {step['detail']}" if step.get("detail") else name
    if kind == "localActivity":
        return f"{name} {step['detail']} (local)" if step.get("detail") else f"{name} (local)"
    if kind == "timer":
        return f"{name} ({duration(step.get('plannedMs'))})"
    if kind == "childWorkflow":
        return f"child {name}"
    if kind in ("signal", "update"):
        return f"{kind} {name}"
    return name


def _took(step: dict[str, Any]) -> str:
    if step["kind"] in INSTANT:
        return ""
    text = step["status"] if step["durationMs"] is None else duration(step["durationMs"])
    if (step.get("attempts") or 1) > 1:
        text += f" ×{step['attempts']}"
    if step["status"] in FAILED:
        text += f" {step['status']}"
    return text


class Swimlane:
    """Rows of `label │bar│ duration`, the bar area scaled to the saga's whole span."""

    def __init__(self, trace: dict[str, Any], width: int) -> None:
        self.span = max(1, trace["durationMs"] or 0)
        labels = [w["workflowType"] for w in trace["workflows"]]
        labels += [_label(s) for w in trace["workflows"] for s in w["steps"]]
        self.label_w = min(40, max((len(x) for x in labels), default=10) + 3)
        self.took_w = 18
        self.bar_w = max(10, width - self.label_w - self.took_w - 2)

    def col(self, ms: int) -> int:
        return min(self.bar_w - 1, ms * self.bar_w // self.span)

    def row(self, label: str, start: int, took: int | None, char: str, style: str, note: str) -> Any:
        from rich.text import Text

        c0 = self.col(start)
        if char == "│":
            c1 = c0
        elif took is None:
            c1 = self.bar_w - 1
        else:
            c1 = max(c0, self.col(start + took))
        bar = char * (c1 - c0 + 1)
        if took is None and char != "│":
            bar = bar[:-1] + "▸"  # still running when the histories were read
        text = Text(
            f"  {label}"[: self.label_w].ljust(self.label_w), style="bold" if char == LIFETIME else ""
        )
        text.append("│" + " " * c0)
        text.append(bar, style=style)
        text.append(" " * (self.bar_w - c1 - 1) + "│ ")
        text.append(note, style="red" if any(f in note for f in FAILED) else "")
        return text

    def axis(self) -> Any:
        from rich.text import Text

        right = duration(self.span)
        return Text(" " * self.label_w + "│0 ms" + right.rjust(self.bar_w - 4) + "│", style="dim")


def render(trace: dict[str, Any], width: int | None = None) -> None:
    from rich.text import Text

    out = console()
    lanes = Swimlane(trace, width or out.width)
    out.print(
        Text(
            f"{trace.get('title') or 'Saga of ' + trace['orderId']} · {len(trace['workflows'])} workflows · "
            f"{duration(trace['durationMs'])} · from {trace['startedAt']}",
            style="bold",
        )
    )
    out.print(lanes.axis(), no_wrap=True, overflow="crop")
    for wf in trace["workflows"]:
        status_style = (
            "red" if wf["status"] in FAILED else "green" if wf["status"] == "completed" else "yellow"
        )
        head = Text("▌ ", style=status_style)
        head.append(wf["workflowId"], style="bold")
        head.append(f" · {wf['status']}", style=status_style)
        if wf.get("parentWorkflowId"):
            head.append(f" · child of {wf['parentWorkflowId']}", style="dim")
        out.print(head, no_wrap=True, overflow="ellipsis")
        took = wf["durationMs"]
        life = lanes.row(wf["workflowType"], wf["startMs"], took, LIFETIME, status_style, duration(took))
        out.print(life, no_wrap=True, overflow="crop")
        for step in wf["steps"]:
            char = "│" if step["kind"] in INSTANT else BAR_CHAR.get(step["kind"], "█")
            style = "red" if step["status"] in FAILED else KIND_STYLE.get(step["kind"], "")
            line = lanes.row(_label(step), step["startMs"], step["durationMs"], char, style, _took(step))
            out.print(line, no_wrap=True, overflow="crop")
    out.print(f"Temporal UI: {trace['temporalUiUrl']}", markup=False, soft_wrap=True)


@app.command("for-order")
def for_order(
    order_id: str = typer.Argument(..., metavar="ORD"),
    width: int | None = typer.Option(
        None, "--width", min=60, help="Columns to draw in (default: the terminal's)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """The whole saga of an order: every workflow, activity, timer and child workflow, with timings."""
    from cli.client import api

    emit(api().get(f"{BSS}/order/{order_id}"), as_json, lambda t: render(t, width))


@app.command("for-subscription")
def for_subscription(
    subscription_id: str = typer.Argument(..., metavar="SUB"),
    width: int | None = typer.Option(
        None, "--width", min=60, help="Columns to draw in (default: the terminal's)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """The life of a line: the saga of the order that sold it, then every run of its own workflow."""
    from cli.client import api

    emit(api().get(f"{BSS}/subscription/{subscription_id}"), as_json, lambda t: render(t, width))

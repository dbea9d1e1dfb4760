"""How the CLI shows things: tables, cards and balance bars for people, --json for machines."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import typer


def group() -> typer.Typer:
    """A command group; plain help keeps `--help` instant."""
    return typer.Typer(rich_markup_mode=None, no_args_is_help=True, add_completion=False)


JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


def console():
    from rich.console import Console

    return Console()


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        render(data)


def table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None
) -> None:
    from rich.table import Table

    t = Table(title=title, caption=caption, header_style="bold cyan")
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    for i, c in enumerate(columns):
        # The first column is the id people copy into the next command: a narrow terminal may cut
        # the others, never that one.
        if i == 0:
            t.add_column(c, no_wrap=True, min_width=max((len(r[0]) for r in cells if r), default=0))
        else:
            t.add_column(c)
    for row in cells:
        t.add_row(*row)
    console().print(t)


def card(title: str, fields: Sequence[tuple[str, Any]], subtitle: str | None = None) -> None:
    from rich.panel import Panel
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for k, v in fields:
        grid.add_row(k, "" if v is None else str(v))
    console().print(Panel(grid, title=title, subtitle=subtitle, expand=False))


def bar(used: float, total: float, width: int = 24) -> str:
    """A balance bar; total -1 means unlimited."""
    if total < 0:
        return "[green]" + "∞ unlimited".ljust(width) + "[/]"
    frac = 0.0 if total == 0 else max(0.0, min(1.0, (total - used) / total))
    filled = round(frac * width)
    colour = "green" if frac > 0.25 else "yellow" if frac > 0 else "red"
    return f"[{colour}]{'█' * filled}[/][dim]{'░' * (width - filled)}[/] {frac:>4.0%}"


def fail(message: str, code: int = 1) -> None:
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)


def ok(message: str) -> None:
    console().print(f"[green]✓[/] {message}")

"""`bss`: the operator's command line. Heavy libraries load inside commands, so --help is instant."""

from __future__ import annotations

import importlib

import typer
from typer.core import TyperGroup

from cli.output import JsonOpt


class BssGroup(TyperGroup):
    """Turns a refused request into one line on stderr and exit code 1, for every command."""

    def invoke(self, ctx):
        from cli.client import CliError

        try:
            return super().invoke(ctx)
        except CliError as exc:
            import sys

            sys.stderr.write(f"error: {exc}\n")
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=BssGroup,
    name="bss",
    help="Operate a prepaid eSIM MVNO: catalogue, customers, payments, orders, lines and inventory.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rendering it with Rich costs half a second
)

# (module under cli.commands, group name, help); each module exposes `app`.
GROUPS = [
    ("catalog", "catalog", "Plans, prices and VAS top-ups (TMF620)."),
    ("customer", "customer", "Customers and KYC (TMF629)."),
    ("payment", "payment", "Cards on file (TMF670)."),
    ("inventory", "inventory", "MSISDN and eSIM pools (TMF639)."),
    ("admin", "admin", "Operator administration."),
    ("order", "order", "Product orders (TMF622): create, follow, cancel, stuck."),
    ("som", "som", "Service orders and services (TMF641/TMF638)."),
    ("prov", "prov", "Provisioning tasks and fault injection."),
    ("esim", "esim", "eSIM activation codes and device events."),
    ("trace", "trace", "Follow a saga through its workflow histories."),
    ("mail", "mail", "Messages sent to customers and operators (the outbox, TMF681)."),
    ("audit", "audit", "The audit log: every write, by customer, order or time (TMF688)."),
    ("usage", "usage", "Usage events: simulate, history (TMF635)."),
    ("subscription", "subscription", "Lines: balances, top-ups, renewals, plan changes, termination."),
    ("port", "port", "Number porting (MNP): port-in and port-out requests, approve, reject."),
    ("case", "case", "Cases: a customer's matter grouping its tickets (open, list, show, note, close)."),
    (
        "ticket",
        "ticket",
        "Trouble tickets (TMF621): list, open, assign, ack, resolve, close; retry a waiting workflow.",
    ),
    ("clock", "clock", "The business clock of a test stack (bss up --test-clock): now, freeze, advance."),
    ("promo", "promo", "Promotions: promo codes, discounts, eligibility lists, exhaust."),
    ("scenario", "scenario", "YAML scenarios against the stack: run FILE, run-all, validate."),
]


def _register() -> None:
    for module, name, help_text in GROUPS:
        try:
            sub = importlib.import_module(f"cli.commands.{module}").app
        except ModuleNotFoundError as exc:
            if exc.name != f"cli.commands.{module}":
                raise
            continue
        app.add_typer(sub, name=name, help=help_text)


@app.callback(invoke_without_command=True)
def main(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        from cli.repl import repl

        repl(app)


@app.command()
def up(
    detach: bool = typer.Option(False, "--detach", "-d", help="Run in the background; `bss down` stops it."),
    test_clock: bool = typer.Option(
        False, "--test-clock", help="A test stack: `bss clock` may freeze and move business time."
    ),
    workers: int = typer.Option(
        None, "--workers", min=1, help="Worker processes on the task queue (default BSS_WORKERS or 1)."
    ),
) -> None:
    """Start the whole stack: Postgres, Temporal (with its UI), the worker(s), the API and the portals."""
    from stack.runner import up as run_up

    raise typer.Exit(run_up(detach, test_clock, workers))


@app.command()
def down() -> None:
    """Stop a stack started with `bss up --detach`."""
    from stack.runner import down as run_down

    raise typer.Exit(run_down())


@app.command()
def status(as_json: bool = JsonOpt) -> None:
    """What runs, where, and whether it is healthy."""
    from core.settings import get_settings
    from stack.runner import print_status

    raise typer.Exit(print_status(get_settings(), as_json))


_register()
_ask = importlib.import_module("cli.commands.ask").ask  # a command, not a group: `bss ask TEXT`
app.command("ask", help="Ask the LLM agent (one turn); /confirm carries out its proposal.")(_ask)


def run() -> None:
    app()


if __name__ == "__main__":
    run()

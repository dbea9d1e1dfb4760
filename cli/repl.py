"""Bare `bss`: the REPL cockpit. An operator talks to the agent, keeps conversations (stored in
Postgres by agent/store.py, shared with `bss ask` and the cockpit's chat of the same person), pins a
customer, and still runs any bss command.

What a line is (also in /help):
- `/…` is a cockpit command (/new, /sessions, /switch, /focus, /360, /confirm, /cancel, /help, /exit);
  none of them needs a language model;
- a line whose first word is a bss command and that parses as one (`customer show CUST-…`) runs it;
- anything else is a message to the agent of the current conversation (one is started on the first
  message). Nothing the agent proposes happens before the operator types /confirm.

Like every command it goes through the API (cli/client.py; /bss-api/v1/agent): the agent runs in
the API process with its model settings, as the person behind the token, and a conversation of
someone else is a 404.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Any

import typer

PROMPT = "bss> "
SESSION = "/bss-api/v1/agent/session"
ASK = "/bss-api/v1/agent/ask"
SESSION_ID = re.compile(r"^SESS-[0-9a-f]{8}$")
RECAP = 6  # messages of a conversation shown again on /switch
HELP = """\
[bold]Cockpit commands[/] (none needs a language model)
  /new                 start a new conversation
  /sessions            your conversations (the current one is marked *)
  /switch SESS-…       continue another of your conversations (its last messages shown)
  /focus CUST-…        pin a customer to this conversation (/focus off to unpin)
  /360                 the pinned customer's 360: card, lines with balance bars, orders, cases
  /confirm             carry out the pending proposal of this conversation
  /cancel              drop the pending proposal
  /help                this help;  /exit (or exit, Ctrl-D) to leave

[bold]What a line is[/]
  /…                   a cockpit command (above)
  a bss command        a line that starts with a bss command and parses as one runs it,
                       e.g. [cyan]customer show CUST-1a2b3c4d[/] or [cyan]order list --state failed[/];
                       [cyan]help[/] lists the commands
  anything else        a message to the agent; what it proposes waits for /confirm
"""


def is_bss_command(command: Any, args: list[str]) -> tuple[bool, str | None]:
    """(runs as a command, why not when its first word is a command but the rest does not parse).
    Typer carries its own copy of click, so groups and errors are told apart by what they do."""
    if not args or args[0].startswith("-"):
        return False, None
    cmd, rest, name = command, list(args), ""
    ctx = command.context_class(command)
    while hasattr(cmd, "list_commands"):
        if not rest or rest[0] in ("--help", "-h"):
            return True, None
        sub = cmd.get_command(ctx, rest[0])
        if sub is None:
            return (False, None) if cmd is command else (False, f"`{name}` has no command `{rest[0]}`")
        cmd, name, rest = sub, f"{name} {rest[0]}".strip(), rest[1:]
    if "--help" in rest:
        return True, None
    try:
        cmd.make_context(name, list(rest), parent=ctx).close()
    except Exception as exc:  # noqa: BLE001 - a usage error: not a command line after all
        return False, exc.format_message() if hasattr(exc, "format_message") else str(exc)
    return True, None


class Cockpit:
    """One REPL and its current conversation; everything goes through the API (cli/client.py)."""

    def __init__(self, command: Any) -> None:
        from cli.output import console

        self.command = command
        self.console = console()
        self.session_id: str | None = None
        self.focus: str | None = None

    @property
    def api(self) -> Any:
        from cli.client import api

        return api()

    def say(self, text: str, style: str | None = None) -> None:
        from rich.text import Text

        self.console.print(Text(text, style=style or ""))

    # -- one line -------------------------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Act on one line; False ends the REPL."""
        line = line.strip()
        if not line:
            return True
        if line in ("exit", "quit", "/exit", "/quit"):
            return False
        try:
            if line.startswith("/"):
                self.slash(line)
            elif line == "help":
                self.bss(["--help"])
            else:
                try:
                    args = shlex.split(line)
                except ValueError:
                    args = []
                runs, why = is_bss_command(self.command, args)
                if runs:
                    self.bss(args)
                else:
                    self.message(line, why)
        except Exception as exc:  # noqa: BLE001 - the cockpit survives a failed line (CliError: refused)
            self.say(f"error: {exc}", "red")
        return True

    def bss(self, args: list[str]) -> None:
        try:
            self.command.main(args=args, prog_name="bss", standalone_mode=False)
        except SystemExit:
            pass

    # -- slash commands ---------------------------------------------------------------------------
    def slash(self, line: str) -> None:
        name, _, rest = line.partition(" ")
        arg = rest.strip()
        handlers: dict[str, Callable[[str], None]] = {
            "/help": lambda _: self.console.print(HELP),
            "/new": self.new,
            "/sessions": self.sessions,
            "/switch": self.switch,
            "/focus": self.set_focus,
            "/360": self.show_360,
            "/confirm": lambda _: self.decide("confirm"),
            "/cancel": lambda _: self.decide("cancel"),
        }
        handler = handlers.get(name.lower())
        if handler is None:
            self.say(f"Unknown command {name}; /help lists them.", "yellow")
            return
        handler(arg)

    def new(self, _: str = "", customer_id: str | None = None) -> None:
        made = self.api.post(SESSION, {"customerId": customer_id})
        self.session_id, self.focus = made["id"], made.get("customer_id")
        self.say(f"New conversation {self.session_id}.", "green")

    def sessions(self, _: str = "") -> None:
        from cli.output import table

        rows = [r for r in self.api.get(SESSION) if r.get("profile") == "operator"]
        if not rows:
            self.say("No conversations yet; type a message or /new.")
            return
        table(
            "Your conversations",
            ("Session", "", "Title", "Customer", "Updated"),
            [
                (
                    r["id"],
                    "*" if r["id"] == self.session_id else "",
                    r.get("title") or "",
                    r.get("customer_id") or "",
                    (r.get("updated_at") or "")[:16].replace("T", " "),
                )
                for r in rows
            ],
        )

    def switch(self, arg: str) -> None:
        if not arg:
            self.say("Which one? /switch SESS-…  (/sessions lists them)", "yellow")
            return
        wanted = "SESS-" + arg[5:].lower() if arg.upper().startswith("SESS-") else arg
        if not SESSION_ID.match(wanted):
            self.say(f"error: No conversation {wanted[:20]}.", "red")
            return
        found = self.api.get(f"{SESSION}/{wanted}")  # another person's: 404 like none
        self.session_id, self.focus = found["id"], found.get("customer_id")
        said = [m for m in found.get("messages") or [] if m["role"] in ("user", "assistant") and m["content"]]
        for m in said[-RECAP:]:
            self.say(("you: " if m["role"] == "user" else "agent: ") + _short(m["content"], 300), "dim")
        self.say(
            f"Now in {self.session_id}" + (f", focused on {self.focus}." if self.focus else "."), "green"
        )
        if found.get("pendingProposal"):
            render_proposal(self.console, found["pendingProposal"])

    def set_focus(self, arg: str) -> None:
        if not arg:
            self.say(f"Focused on {self.focus}." if self.focus else "No customer pinned; /focus CUST-…")
            return
        if arg.lower() in ("off", "none", "-"):
            if self.session_id is not None:
                self.api.post(f"{SESSION}/{self.session_id}/focus", {"customerId": None})
            self.focus = None
            self.say("Unpinned.", "green")
            return
        customer_id = "CUST-" + arg[5:].lower() if arg.upper().startswith("CUST-") else arg
        if self.session_id is None:
            self.new(customer_id=customer_id)
        else:
            changed = self.api.post(f"{SESSION}/{self.session_id}/focus", {"customerId": customer_id})
            self.focus = changed.get("customer_id")
        self.say(f"Focused on {self.focus} in {self.session_id}; /360 shows them.", "green")

    def show_360(self, _: str = "") -> None:
        if not self.focus:
            self.say("No customer pinned; /focus CUST-… first.", "yellow")
            return
        self.bss(["customer", "show", self.focus])

    def decide(self, what: str) -> None:
        if self.session_id is None:
            self.say(f"Nothing to {what}: no conversation yet.", "yellow")
            return
        if not self.api.get(f"{SESSION}/{self.session_id}").get("pendingProposal"):
            self.say(f"Nothing to {what}: no proposal is pending in {self.session_id}.", "yellow")
            return
        self.turn(f"/{what}")

    # -- a message to the agent -------------------------------------------------------------------
    def message(self, text: str, why_not_command: str | None = None) -> None:
        result = self.turn(text)
        if why_not_command and "No language model is configured" in (result.get("answer") or ""):
            self.say(f"(Not a bss command either: {why_not_command}.)", "dim")

    def turn(self, text: str) -> dict[str, Any]:
        """One turn (POST /bss-api/v1/agent/ask): the agent runs in the API process with its model
        settings, as the person behind the token."""
        body: dict[str, Any] = {"text": text}
        if self.session_id:
            body["sessionId"] = self.session_id
        with self.console.status("thinking…"):
            result = self.api.post(ASK, body)
        if self.session_id is None:
            self.session_id = result["session_id"]
            self.say(f"(conversation {self.session_id})", "dim")
        render_turn(self.console, result)
        return result


# ---- rendering ----------------------------------------------------------------------------------


def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _proposal_dict(p: Any) -> dict[str, Any]:
    return {k: _field(p, k) for k in ("id", "tool", "args", "summary", "state", "result")}


def _short(value: Any, limit: int = 160) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_proposal(con: Any, p: dict[str, Any]) -> None:
    """A proposal as a card: exactly what will happen, and how to make it happen."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("What will happen", Text(str(p.get("summary") or "")))
    grid.add_row("Operation", Text(str(p.get("tool") or "")))
    for key, value in (p.get("args") or {}).items():
        grid.add_row(Text(f"  {key}"), Text(_short(value)))
    state = p.get("state") or "pending"
    if state == "pending":
        subtitle, style = "type /confirm to do it, /cancel to drop it", "yellow"
    else:
        subtitle, style = state, "green" if state == "confirmed" else "dim"
        if p.get("result") is not None:
            grid.add_row("Result", Text(_short(p["result"], 400)))
    con.print(
        Panel(grid, title=f"Proposal {p.get('id')}", subtitle=subtitle, border_style=style, expand=False)
    )


def render_turn(con: Any, result: Any) -> None:
    """The agent's turn: the tools it read (one dim line each), its answer, its proposals."""
    from rich.markdown import Markdown
    from rich.text import Text

    for call in _field(result, "tool_calls") or []:
        con.print(Text(f"· {call.get('name')}({_short(call.get('args') or {}, 80)})", style="dim"))
    answer = _field(result, "answer")
    if answer:
        con.print(Markdown(answer))
    for p in _field(result, "proposals") or []:
        render_proposal(con, _proposal_dict(p))


def repl(app: typer.Typer) -> None:
    from typer.main import get_command

    cockpit = Cockpit(get_command(app))
    cockpit.say(
        "bss cockpit — talk to the agent, run any bss command, or /help. /exit or Ctrl-D to leave.",
        "bold",
    )
    while True:
        try:
            line = input(PROMPT)
        except (EOFError, KeyboardInterrupt):
            print()
            return
        if not cockpit.handle(line):
            return

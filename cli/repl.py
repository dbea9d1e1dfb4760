"""Bare `bss`: the REPL cockpit. An operator talks to the agent, keeps conversations (stored in
Postgres, agent/store.py), pins a customer, and still runs any bss command.

What a line is (also in /help):
- `/…` is a cockpit command (/new, /sessions, /switch, /focus, /360, /confirm, /cancel, /help, /exit);
  none of them needs a language model;
- a line whose first word is a bss command and that parses as one (`customer show CUST-…`) runs it;
- anything else is a message to the agent of the current conversation (one is started on the first
  message). Nothing the agent proposes happens before the operator types /confirm.

bss commands go through the API like the rest of the CLI; the conversations and the agent run
in-process on the operations layer (a Runtime on the stack's Postgres), as the operator named by
BSS_OPERATOR (or BSS_ACTOR; default `cli:<login name>`), channel `llm`.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer

T = TypeVar("T")

PROMPT = "bss> "
HELP = """\
[bold]Cockpit commands[/] (none needs a language model)
  /new                 start a new conversation
  /sessions            your conversations (the current one is marked *)
  /switch SESS-…       continue another of your conversations
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

_settings_override: Any = None


def use_settings(settings: Any) -> None:
    """Tests run the cockpit on their own database and scripted model."""
    global _settings_override
    _settings_override = settings


def operator_actor() -> str:
    """The person behind the REPL, as the audit log and the conversation owner name them."""
    import getpass
    import os

    for name in ("BSS_OPERATOR", "BSS_ACTOR"):
        if os.environ.get(name, "").strip():
            return os.environ[name].strip()[:200]
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name (a container): still someone
        return "cli:operator"


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
    """One REPL: its event loop, its Runtime (made on first use), the current conversation."""

    def __init__(self, command: Any) -> None:
        from cli.output import console

        self.command = command
        self.console = console()
        self.actor = operator_actor()
        self.session_id: str | None = None
        self.focus: str | None = None
        self._loop = asyncio.new_event_loop()
        self._rt: Any = None

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def settings(self) -> Any:
        if _settings_override is not None:
            return _settings_override
        from core.settings import get_settings

        return get_settings()

    def run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return self._loop.run_until_complete(make())

    @property
    def rt(self) -> Any:
        if self._rt is None:
            self._rt = self.run(self._make_runtime)
        return self._rt

    async def _make_runtime(self) -> Any:
        from ops.runtime import Runtime

        return Runtime.create(self.settings, pool_size=2)

    def close(self) -> None:
        if self._rt is not None:
            self.run(self._rt.close)
        self._loop.close()

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
        except Exception as exc:  # noqa: BLE001 - the cockpit survives a failed line
            self.failed(exc)
        return True

    def failed(self, exc: Exception) -> None:
        from sqlalchemy.exc import DBAPIError

        from core.errors import DomainError

        if isinstance(exc, DomainError):
            self.say(f"error: {exc.message}", "red")
        elif isinstance(exc, DBAPIError | OSError):
            self.say("error: cannot reach the BSS database; start the stack with `bss up`.", "red")
        else:
            self.say(f"error: {exc}", "red")

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

    def new(self, _: str = "") -> None:
        from agent import store

        rt = self.rt
        self.session_id = self.run(lambda: store.new_session(rt, actor=self.actor, profile="operator"))
        self.focus = None
        self.say(f"New conversation {self.session_id}.", "green")

    def _ensure_session(self) -> str:
        if self.session_id is None:
            self.new()
        assert self.session_id is not None
        return self.session_id

    def sessions(self, _: str = "") -> None:
        from agent import store
        from cli.output import table

        rt = self.rt
        rows = self.run(lambda: store.list_sessions(rt, self.actor))
        if not rows:
            self.say("No conversations yet; type a message or /new.")
            return
        table(
            f"Conversations of {self.actor}",
            ("Session", "", "Title", "Customer", "Updated"),
            [
                (
                    _field(r, "id"),
                    "*" if _field(r, "id") == self.session_id else "",
                    _field(r, "title") or "",
                    _field(r, "customer_id") or "",
                    str(_field(r, "updated_at") or "")[:16].replace("T", " "),
                )
                for r in rows
            ],
        )

    def switch(self, arg: str) -> None:
        from agent import store

        if not arg:
            self.say("Which one? /switch SESS-…  (/sessions lists them)", "yellow")
            return
        rt = self.rt
        wanted = "SESS-" + arg[5:].lower() if arg.upper().startswith("SESS-") else arg
        found = self.run(lambda: store.get_session(rt, wanted, self.actor))
        self.session_id = _field(found, "id")
        self.focus = _field(found, "customer_id")
        self.say(
            f"Now in {self.session_id}" + (f", focused on {self.focus}." if self.focus else "."), "green"
        )
        self._show_pending()

    def set_focus(self, arg: str) -> None:
        from agent import store

        if not arg:
            self.say(f"Focused on {self.focus}." if self.focus else "No customer pinned; /focus CUST-…")
            return
        rt = self.rt
        if arg.lower() in ("off", "none", "-"):
            session_id = self._ensure_session()
            self.run(lambda: store.set_focus(rt, session_id, self.actor, None))
            self.focus = None
            self.say("Unpinned.", "green")
            return
        from ops.crm import get_customer

        wanted = "CUST-" + arg[5:].lower() if arg.upper().startswith("CUST-") else arg
        customer = self.run(lambda: get_customer(rt, wanted))  # NotFound: "No customer …"
        customer_id = _field(_field(customer, "customer") or customer, "id") or wanted
        session_id = self._ensure_session()
        self.run(lambda: store.set_focus(rt, session_id, self.actor, customer_id))
        self.focus = customer_id
        self.say(f"Focused on {customer_id} in {session_id}; /360 shows them.", "green")

    def show_360(self, _: str = "") -> None:
        if not self.focus:
            self.say("No customer pinned; /focus CUST-… first.", "yellow")
            return
        self.bss(["customer", "show", self.focus])

    def decide(self, what: str) -> None:
        from agent import store

        if self.session_id is None:
            self.say(f"Nothing to {what}: no conversation yet.", "yellow")
            return
        rt, session_id = self.rt, self.session_id
        if self.run(lambda: store.pending_proposal(rt, session_id, self.actor)) is None:
            self.say(f"Nothing to {what}: no proposal is pending in {session_id}.", "yellow")
            return
        from agent import loop

        act = loop.confirm if what == "confirm" else loop.cancel
        result = self.run(lambda: act(rt, session_id=session_id, actor=self.actor))
        render_turn(self.console, result)

    def _show_pending(self) -> None:
        from agent import store

        rt, session_id = self.rt, self.session_id
        pending = self.run(lambda: store.pending_proposal(rt, session_id, self.actor))
        if pending is not None:
            render_proposal(self.console, _proposal_dict(pending))

    # -- a message to the agent -------------------------------------------------------------------
    def message(self, text: str, why_not_command: str | None = None) -> None:
        from agent.llm import NOT_CONFIGURED, llm_configured

        if not llm_configured(self.settings):
            self.say(NOT_CONFIGURED, "yellow")
            if why_not_command:
                self.say(f"(Not a bss command either: {why_not_command}.)", "dim")
            return
        from agent import loop

        rt = self.rt
        session_id = self._ensure_session()
        with self.console.status("thinking…"):
            result = self.run(
                lambda: loop.run_turn(
                    rt,
                    session_id=session_id,
                    text=text,
                    actor=self.actor,
                    profile="operator",
                    customer_id=self.focus,
                )
            )
        render_turn(self.console, result)


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
    try:
        while True:
            try:
                line = input(PROMPT)
            except (EOFError, KeyboardInterrupt):
                print()
                return
            if not cockpit.handle(line):
                return
    finally:
        cockpit.close()

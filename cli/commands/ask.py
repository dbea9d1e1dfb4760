"""`bss ask [--session ID] [--json] TEXT`: one turn of the LLM agent, non-interactively.

Through the API like every command (POST /bss-api/v1/agent/ask): the agent runs in the API process
on the operations layer, as the person behind the token, with the API's model settings
(BSS_LLM_BASE_URL, BSS_LLM_MODEL, BSS_LLM_API_KEY). It prints the answer and the session id;
anything it proposes waits for `bss ask --session ID /confirm` (or `/cancel`). Nothing the model
says confirms anything.
"""

from __future__ import annotations

from typing import Any

import typer

from cli.output import JsonOpt, emit

ASK = "/bss-api/v1/agent/ask"


def _render(r: dict[str, Any]) -> None:
    from cli.output import console

    out = console()
    for call in r.get("tool_calls") or []:
        result = call.get("result") or {}
        mark = f" → {result['error']['code']}" if isinstance(result, dict) and "error" in result else ""
        out.print(f"[dim]· {call['name']}{mark}[/]", highlight=False)
    out.print(r["answer"], markup=False, highlight=False)
    pending = [p for p in r.get("proposals") or [] if p.get("state") == "pending"]
    if pending:
        out.print(
            f"[yellow]Pending {pending[-1]['id']}: bss ask --session {r['session_id']} /confirm (or /cancel)[/]",
            highlight=False,
        )
    out.print(f"[dim]session {r['session_id']}[/]", highlight=False)


def ask(
    text: list[str] = typer.Argument(
        ..., help="What to ask (several words are joined), or /confirm, /cancel."
    ),
    session: str = typer.Option(None, "--session", "-s", help="Continue this conversation (SESS-…)."),
    as_json: bool = JsonOpt,
) -> None:
    """Ask the agent: it reads through its tools and proposes actions; /confirm carries out the
    session's pending proposal."""
    from cli.client import api

    body: dict[str, Any] = {"text": " ".join(text).strip()}
    if session:
        body["sessionId"] = session
    emit(api().post(ASK, body), as_json, _render)

"""Bare `bss`: a prompt that runs bss commands until `exit`."""

from __future__ import annotations

import shlex

import typer


def repl(app: typer.Typer) -> None:
    from typer.main import get_command

    command = get_command(app)
    print("bss interactive shell — type a command (e.g. `catalog list`), `help`, or `exit`.")
    while True:
        try:
            line = input("bss> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return
        if line in {"exit", "quit"}:
            return
        if not line:
            continue
        args = ["--help"] if line == "help" else shlex.split(line)
        try:
            command.main(args=args, prog_name="bss", standalone_mode=False)
        except SystemExit:
            pass
        except Exception as exc:  # the shell survives a failed command
            print(f"error: {exc}")

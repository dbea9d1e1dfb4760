"""`bss scenario`: run the YAML stories in scenarios/ against the stack (cli/scenarios.py says how
they are written). Each run makes its own customers; a failed expectation is exit code 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli.output import JsonOpt, emit, fail, group

app = group()

FileArg = typer.Argument(..., metavar="FILE", help="A scenario file, e.g. scenarios/signup.yaml.")


def _render_result(res: Any) -> None:
    from cli.output import console, table

    marks = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "skip": "[yellow]skip[/]"}
    rows = [
        (s.index, s.name, s.kind, marks[s.outcome], f"{s.seconds:.2f}", _escape(s.detail)) for s in res.steps
    ]
    table(f"{res.name} ({res.source})", ["#", "step", "kind", "result", "s", "detail"], rows)
    console().print(_summary(res))


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _summary(res: Any) -> str:
    if res.skipped:
        return f"[yellow]{res.name}: skipped[/]: {_escape(res.skipped)}."
    c = res.counts()
    verdict = "[green]passed[/]" if res.passed else "[red]FAILED[/]"
    extra = f", {c['skip']} skipped" if c["skip"] else ""
    return f"{res.name}: {verdict} ({c['pass']} passed, {c['fail']} failed{extra})"


def _load(path: Path) -> Any:
    from cli.scenarios import ScenarioError, load

    try:
        return load(path)
    except ScenarioError as exc:
        fail(str(exc))


@app.command("run")
def run(file: Path = FileArg, as_json: bool = JsonOpt) -> None:
    """Run one scenario: a table of its steps with pass/fail, then a summary; exit 1 if a step failed."""
    from cli.scenarios import Runner

    scenario = _load(file)
    result = Runner.from_defaults().run(scenario)
    emit(result.as_json(), as_json, lambda _: _render_result(result))
    if not result.passed:
        raise typer.Exit(1)


@app.command("run-all")
def run_all(
    directory: Path = typer.Argument(None, metavar="[DIR]", help="Default: the repo's scenarios/."),
    tag: str | None = typer.Option(None, "--tag", help="Only scenarios with this tag, e.g. hero."),
    as_json: bool = JsonOpt,
) -> None:
    """Run every scenario in a folder; exit 1 if any failed (skipped ones are said, not failed)."""
    from cli.scenarios import SCENARIO_DIR, Runner, ScenarioError, load, scenario_files

    files = scenario_files(directory or SCENARIO_DIR)
    if not files:
        fail(f"No scenario (*.yaml) in {directory or SCENARIO_DIR}.")
    try:
        scenarios = [load(f) for f in files]
    except ScenarioError as exc:
        fail(str(exc))
    if tag:
        scenarios = [s for s in scenarios if tag in s.tags]
        if not scenarios:
            fail(f"No scenario in {directory or SCENARIO_DIR} is tagged {tag}.")
    results = [Runner.from_defaults().run(s) for s in scenarios]
    failed = [r for r in results if not r.skipped and not r.passed]

    def render(_: Any) -> None:
        from cli.output import console, table

        for r in results:
            if not r.skipped:
                _render_result(r)
        rows = []
        for r in results:
            c = r.counts()
            outcome = "[yellow]skip[/]" if r.skipped else "[green]pass[/]" if r.passed else "[red]FAIL[/]"
            note = r.skipped or next(
                (f"step {s.index}: {s.detail}" for s in r.steps if s.outcome == "fail"), ""
            )
            rows.append((r.name, outcome, c["pass"], c["fail"], c["skip"], _escape(note)))
        table("Scenarios", ["scenario", "result", "passed", "failed", "skipped", "note"], rows)
        skipped = sum(1 for r in results if r.skipped)
        console().print(
            f"{len(results) - len(failed) - skipped} passed, {len(failed)} failed"
            + (f", {skipped} skipped" if skipped else "")
        )

    emit({"scenarios": [r.as_json() for r in results], "failed": len(failed)}, as_json, render)
    if failed:
        raise typer.Exit(1)


@app.command("validate")
def validate(
    files: list[Path] = typer.Argument(None, metavar="[FILE]...", help="Default: every file in scenarios/."),
    as_json: bool = JsonOpt,
) -> None:
    """Check scenario files against the schema (and that each variable is set before use)."""
    from cli.scenarios import SCENARIO_DIR, ScenarioError, label, load, scenario_files

    paths = list(files or scenario_files(SCENARIO_DIR))
    if not paths:
        fail(f"No scenario (*.yaml) in {SCENARIO_DIR}.")
    checked, errors = [], []
    for path in paths:
        try:
            s = load(path)
            checked.append({"file": label(path), "name": s.name, "steps": len(s.steps), "valid": True})
        except ScenarioError as exc:
            errors.append(str(exc))
            checked.append({"file": label(path), "valid": False, "error": str(exc)})
    if as_json:
        emit(checked, True, lambda _: None)
    else:
        from cli.output import ok

        for row in checked:
            if row["valid"]:
                ok(f"{row['file']}: {row['name']}, {row['steps']} steps")
    if errors:
        import sys

        for error in errors:
            sys.stderr.write(f"error: {error}\n")
        raise typer.Exit(1)

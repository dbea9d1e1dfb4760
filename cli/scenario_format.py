"""The scenario format: YAML stories run against a live stack (`bss scenario run|run-all|validate`),
its JSON schema and the checks `validate` makes (cli/scenarios.py runs them).

A scenario creates what it needs (its customers have names and emails unique to the run) and
touches nothing it did not create. It is a list of steps, each of one kind:

- `bss: [customer, create, --name, "Ada {{run}}", --json]`: a `bss` command, run in-process
  through the real CLI (same API client, same exit codes); `--json` output is parsed.
- `api: {method: POST, path: /bss-api/v1/…, body: {…}}`: one API call; `expect.status` checks it.
- `clock: {advance: 30d}` (or `freeze: true|ISO`, `unfreeze: true`): the business clock of a test
  stack (`bss up --test-clock`).
- `ask: "why is {{sub}} blocked?"`: one turn of the LLM agent (agent/loop.py `run_turn`), in
  the scenario's conversation (`session:` names another). With no model configured, the step's
  `without_llm:` steps run in its place, or the step is skipped (and said so). `script:` holds the
  model's answers for a scripted model: the runner only hands it (`script_of`) to the `on_ask`
  hook a test harness installs with `runner_defaults(on_ask=…)` to load its scripted
  OpenAI-compatible server; the CLI never sends it anywhere, so against a real model it is ignored.

Every step may have `expect` (exit code, HTTP status, JSON paths, text; for `ask`, tools called or
not, the answer, proposals), `capture` (variables from the JSON for later steps: `{{sub}}`) and
`until: {timeout: 30, interval: 0.5}` (run again until the expectations hold), and `when: llm`
(or `no_llm`) to run only with (without) a model. Built-in
variables: `run` (8 hex, unique per run), `RUN` (the same in capitals), `run_number` (a
random 8-digit number that is not in our pool), `today` (the business date). A JSON path is dotted,
with list indexes (`balances.0.remaining` or `balances[0]`) and filters (`balances[allowanceType=data]`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_DIR = ROOT / "scenarios"
KINDS = ("bss", "api", "clock", "ask")
MATCHERS = (
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "matches",
    "exists",
    "gte",
    "lte",
    "length",
    "in",
)
BUILTINS = ("run", "RUN", "run_number", "today")
VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

_MATCHER_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": ["string", "number", "boolean", "null", "array"]},
        {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "propertyNames": {"enum": list(MATCHERS)},
        },
    ]
}
_EXPECT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "exit": {"type": "integer"},
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "json": {"type": "object", "additionalProperties": _MATCHER_SCHEMA},
        "stdout_contains": {"type": ["string", "array"], "items": {"type": "string"}},
        "stderr_contains": {"type": ["string", "array"], "items": {"type": "string"}},
        "tools_called": {"type": "array", "items": {"type": "string"}},
        "tools_not_called": {"type": "array", "items": {"type": "string"}},
        "answer_contains": {"type": ["string", "array"], "items": {"type": "string"}},
        "proposals": {"type": "array", "items": {"type": "object"}},
    },
}
_SCRIPT_ITEM = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 2,
    "properties": {
        "text": {"type": "string"},
        "call": {"type": "string"},
        "args": {"type": "object"},
        "calls": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["call"],
                "additionalProperties": False,
                "properties": {"call": {"type": "string"}, "args": {"type": "object"}},
            },
        },
    },
}
_COMMON_STEP = {
    "name": {"type": "string", "maxLength": 120},
    "when": {"enum": ["llm", "no_llm"]},
    "expect": _EXPECT,
    "capture": {"type": "object", "additionalProperties": {"type": "string"}},
    "until": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
            "interval": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
        },
    },
}


def _step_schema(kind: str, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [kind],
        "additionalProperties": False,
        "properties": {**_COMMON_STEP, kind: spec, **extra},
    }


_BSS_STEP = _step_schema("bss", {"type": "array", "minItems": 1, "items": {"type": ["string", "number"]}})
_API_STEP = _step_schema(
    "api",
    {
        "type": "object",
        "required": ["method", "path"],
        "additionalProperties": False,
        "properties": {
            "method": {"enum": ["GET", "POST", "PATCH", "PUT", "DELETE"]},
            "path": {"type": "string", "pattern": "^/"},
            "body": {},
            "params": {"type": "object"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
)
_CLOCK_STEP = _step_schema(
    "clock",
    {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": {
            "advance": {"type": "string", "minLength": 2},
            "freeze": {"type": ["boolean", "string"]},
            "unfreeze": {"const": True},
        },
    },
)
_PLAIN_STEP = {"anyOf": [_BSS_STEP, _API_STEP, _CLOCK_STEP]}
_ASK_STEP = _step_schema(
    "ask",
    {"type": "string", "minLength": 1, "maxLength": 4000},
    session={"type": "string", "pattern": "^[a-z][a-z0-9_-]*$"},
    profile={"enum": ["operator", "customer"]},
    customer={"type": "string"},
    script={"type": "array", "items": _SCRIPT_ITEM},
    without_llm={"type": "array", "items": _PLAIN_STEP},
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "bss scenario",
    "type": "object",
    "required": ["name", "steps"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$", "maxLength": 80},
        "description": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "requires": {"type": "array", "items": {"enum": ["test_clock", "llm"]}},
        "vars": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "steps": {
            "type": "array",
            "minItems": 1,
            "items": {"anyOf": [_BSS_STEP, _API_STEP, _CLOCK_STEP, _ASK_STEP]},
        },
    },
}


class ScenarioError(Exception):
    """A scenario file that cannot run: one sentence naming the file and the place."""


# ------------------------------------------------------------------------------------ loading


@dataclass
class Scenario:
    name: str
    path: Path | None
    data: dict[str, Any]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.data["steps"]

    @property
    def tags(self) -> list[str]:
        return list(self.data.get("tags") or [])


def label(path: Path | None) -> str:
    if path is None:
        return "scenario"
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def step_kind(step: dict[str, Any]) -> str:
    return next((k for k in KINDS if k in step), "?")


def _step_title(i: int, step: Any) -> str:
    if isinstance(step, dict) and step.get("name"):
        return f"step {i} ({step['name']})"
    return f"step {i}"


def _schema_sentence(err: Any, data: Any) -> str:
    """jsonschema's best error as one sentence: where, then what."""
    path = list(err.absolute_path)
    where = "the top level"
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        steps = data.get("steps") or []
        step = steps[path[1]] if path[1] < len(steps) else None
        where = _step_title(path[1] + 1, step)
        rest = [str(p) for p in path[2:]]
        if rest:
            where += f", at {'.'.join(rest)}"
        if err.validator in ("anyOf", "oneOf") and isinstance(step, dict) and len(path) == 2:
            kinds = [k for k in KINDS if k in step]
            if len(kinds) != 1:
                found = ", ".join(sorted(step)) or "nothing"
                return f"{where}: a step has exactly one of {', '.join(KINDS)} (found {found})"
            sub = _step_schema_for(kinds[0])
            import jsonschema

            inner = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(sub).iter_errors(step))
            if inner is not None:
                more = ".".join(str(p) for p in inner.absolute_path)
                return f"{where}{', at ' + more if more else ''}: {_message(inner)}"
    elif path:
        where = "at " + ".".join(str(p) for p in path)
    return f"{where}: {_message(err)}"


def _step_schema_for(kind: str) -> dict[str, Any]:
    return {"bss": _BSS_STEP, "api": _API_STEP, "clock": _CLOCK_STEP, "ask": _ASK_STEP}[kind]


def _message(err: Any) -> str:
    msg = err.message
    if err.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", msg)
        allowed = sorted((err.schema.get("properties") or {}).keys())
        return f"{', '.join(repr(e) for e in extra) or 'a key'} is not allowed here (allowed: {', '.join(allowed)})"
    if err.validator == "required":
        return msg.replace("is a required property", "is required")
    return msg.rstrip(".")


def _static_checks(data: dict[str, Any]) -> None:
    """Variables are defined before use: built-ins, `vars`, or captured by an earlier step."""
    known = set(BUILTINS) | set((data.get("vars") or {}).keys())

    def check(steps: list[dict[str, Any]], prefix: str) -> None:
        for i, step in enumerate(steps, 1):
            title = prefix + _step_title(i, step)
            body = {k: v for k, v in step.items() if k not in ("capture", "name", "without_llm", "expect")}
            for var in VAR.findall(json.dumps(body)) + VAR.findall(json.dumps(step.get("expect") or {})):
                if var not in known:
                    raise ScenarioError(f"{title}: uses {{{{{var}}}}} before any step captures it")
            if step.get("without_llm"):
                check(step["without_llm"], f"{title}, without_llm ")
            known.update((step.get("capture") or {}).keys())

    check(data["steps"], "")


def parse(text: str, path: Path | None = None) -> Scenario:
    """Parse and validate a scenario; ScenarioError is one sentence naming the file and the place."""
    import jsonschema
    import yaml

    where = label(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "it is not valid YAML"
        raise ScenarioError(f"{where}: not valid YAML{line}: {problem}.") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: a scenario is a mapping with a name and steps.")
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data))
    if err is not None:
        raise ScenarioError(f"{where}: {_schema_sentence(err, data)}.")
    try:
        _static_checks(data)
    except ScenarioError as exc:
        raise ScenarioError(f"{where}: {exc}.") from None
    return Scenario(data["name"], path, data)


def load(path: Path) -> Scenario:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"{label(path)}: cannot be read ({exc.strerror or exc}).") from None
    return parse(text, path)


def scenario_files(directory: Path = SCENARIO_DIR) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


# ------------------------------------------------------------------------------ JSON paths

"""Scenarios: YAML stories run against a live stack (`bss scenario run|run-all|validate`).

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
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

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


def _kind(step: dict[str, Any]) -> str:
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
            for var in _VAR.findall(json.dumps(body)) + _VAR.findall(json.dumps(step.get("expect") or {})):
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


_MISSING = object()
_SEGMENT = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def _segments(path: str) -> list[str]:
    out = []
    for name, bracket in _SEGMENT.findall(path):
        out.append(name if name else bracket)
    return out


def lookup(data: Any, path: str) -> Any:
    """`a.b.0.c`, `a.b[0].c`, `balances[allowanceType=data].remaining`; `$` or "" is the whole."""
    if path in ("", "$"):
        return data
    cur = data
    for seg in _segments(path):
        if isinstance(cur, list):
            if "=" in seg:
                key, _, want = seg.partition("=")
                cur = next((x for x in cur if isinstance(x, dict) and str(x.get(key)) == want), _MISSING)
            elif re.fullmatch(r"-?\d+", seg):
                idx = int(seg)
                cur = cur[idx] if -len(cur) <= idx < len(cur) else _MISSING
            else:
                return _MISSING
        elif isinstance(cur, dict):
            cur = cur.get(seg, _MISSING)
        else:
            return _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if value is not _MISSING else "nothing"
    return text if len(text) <= 80 else text[:77] + "..."


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check_matcher(actual: Any, matcher: Any) -> str | None:
    """None when it holds, else why not (a phrase)."""
    if isinstance(matcher, dict) and len(matcher) == 1 and next(iter(matcher)) in MATCHERS:
        op, want = next(iter(matcher.items()))
    else:
        op, want = "equals", matcher
    if op == "exists":
        present = actual is not _MISSING and actual is not None
        return None if present == bool(want) else f"is {_short(actual)}"
    if actual is _MISSING:
        return "is missing"
    if op == "equals":
        same = actual == want or (
            _num(actual) is not None and _num(actual) == _num(want) and not isinstance(want, bool)
        )
        if isinstance(actual, str) and not isinstance(want, str):
            same = same or actual == str(want)
        return None if same else f"is {_short(actual)}, expected {_short(want)}"
    if op == "not_equals":
        return None if actual != want else f"is {_short(actual)}"
    if op in ("contains", "not_contains"):
        if isinstance(actual, str):
            has = str(want).lower() in actual.lower()
        elif isinstance(actual, list):
            has = any(
                x == want or (isinstance(want, dict) and isinstance(x, dict) and want.items() <= x.items())
                for x in actual
            )
        elif isinstance(actual, dict):
            has = want in actual
        else:
            has = False
        if op == "contains":
            return None if has else f"is {_short(actual)}, which does not contain {_short(want)}"
        return None if not has else f"is {_short(actual)}, which contains {_short(want)}"
    if op == "matches":
        return None if re.search(str(want), str(actual)) else f"is {_short(actual)}, not matching /{want}/"
    if op in ("gte", "lte"):
        a, w = _num(actual), _num(want)
        if a is None or w is None:
            return f"is {_short(actual)}, not a number"
        ok = a >= w if op == "gte" else a <= w
        return None if ok else f"is {_short(actual)}, expected {'≥' if op == 'gte' else '≤'} {want}"
    if op == "length":
        n = len(actual) if isinstance(actual, list | dict | str) else None
        return None if n == want else f"has length {n}, expected {want}"
    if op == "in":
        return None if actual in (want or []) else f"is {_short(actual)}, not one of {_short(want)}"
    return f"unknown matcher {op}"


# ------------------------------------------------------------------------------ variables


def render(value: Any, env: dict[str, Any]) -> Any:
    """Substitute {{var}}; a string that is exactly one variable keeps the variable's type."""
    if isinstance(value, str):
        whole = _VAR.fullmatch(value.strip())
        if whole and value.strip() == value:
            return env[whole.group(1)] if whole.group(1) in env else value
        return _VAR.sub(lambda m: str(env[m.group(1)]) if m.group(1) in env else m.group(0), value)
    if isinstance(value, list):
        return [render(v, env) for v in value]
    if isinstance(value, dict):
        return {k: render(v, env) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------ results


@dataclass
class StepResult:
    index: str  # "3", or "4.1" for a without_llm step run in place of ask 4
    name: str
    kind: str
    outcome: str  # pass | fail | skip
    seconds: float
    detail: str = ""
    output: Any = None

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "outcome": self.outcome,
            "seconds": round(self.seconds, 3),
            "detail": self.detail,
        }


@dataclass
class ScenarioResult:
    name: str
    source: str
    steps: list[StepResult] = field(default_factory=list)
    skipped: str | None = None  # the whole scenario, and why
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not any(s.outcome == "fail" for s in self.steps)

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "skip": 0}
        for s in self.steps:
            out[s.outcome] += 1
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "source": self.source,
            "outcome": "skip" if self.skipped else ("pass" if self.passed else "fail"),
            "skipped": self.skipped,
            "counts": self.counts(),
            "steps": [s.as_json() for s in self.steps],
            "variables": {k: v for k, v in self.variables.items() if isinstance(v, str | int | float | bool)},
        }


# ------------------------------------------------------------------------------ running


class _StepFailed(Exception):
    pass


_defaults: dict[str, Any] = {}
_event_loop: Any = None


def _loop() -> Any:
    """One event loop for every ask step of the process, never closed: langchain-openai keeps one
    cached async HTTP client per process, bound to the loop that first used it."""
    import asyncio

    global _event_loop
    if _event_loop is None:
        _event_loop = asyncio.new_event_loop()
    return _event_loop


@contextmanager
def runner_defaults(**kwargs: Any) -> Iterator[None]:
    """Inside the block every Runner the CLI makes takes these (`settings`, `on_ask`): how a test
    points `bss scenario` at its own database and its scripted model."""
    saved = dict(_defaults)
    _defaults.update(kwargs)
    try:
        yield
    finally:
        _defaults.clear()
        _defaults.update(saved)


def script_of(step: dict[str, Any]) -> list[dict[str, Any]]:
    """An ask step's `script` as model answers: {"text": …} or {"tool_calls": [{"name", "args"}]}
    (for a scripted model; a real model never sees it)."""
    out: list[dict[str, Any]] = []
    for item in step.get("script") or []:
        if "text" in item:
            out.append({"text": item["text"]})
        elif "call" in item:
            out.append({"tool_calls": [{"name": item["call"], "args": item.get("args") or {}}]})
        else:
            out.append(
                {"tool_calls": [{"name": c["call"], "args": c.get("args") or {}} for c in item["calls"]]}
            )
    return out


@dataclass
class Runner:
    """Runs scenarios against the stack the CLI points at (cli.client.api()). `settings` (default
    get_settings()) is where an `ask` step's agent runs; `on_ask(step)` is called before each turn
    with the rendered step (a test harness loads `step["script"]` into its scripted model)."""

    settings: Any = None
    on_ask: Any = None
    actor: str = "scenario"

    @classmethod
    def from_defaults(cls) -> Runner:
        return cls(**_defaults)

    def __post_init__(self) -> None:
        self._rt: Any = None

    # -- helpers -----------------------------------------------------------------------------
    def _settings(self) -> Any:
        if self.settings is None:
            from core.settings import get_settings

            self.settings = get_settings()
        return self.settings

    def _llm_configured(self) -> bool:
        try:
            from agent.llm import llm_configured
        except ImportError:
            return False
        return bool(llm_configured(self._settings()))

    def _agent_missing(self) -> str | None:
        from importlib.util import find_spec

        if find_spec("agent.loop") is None:  # found, not imported: LangChain loads only for a turn
            return "the agent (agent/loop.py) is not installed here"
        if not self._llm_configured():
            return "no LLM is configured (BSS_LLM_BASE_URL)"
        return None

    def _call(self, coro: Any) -> Any:
        return _loop().run_until_complete(coro)

    def _runtime(self) -> Any:
        if self._rt is None:
            from ops.runtime import Runtime

            self._rt = Runtime.create(self._settings(), pool_size=2)
        return self._rt

    def close(self) -> None:
        if self._rt is not None:
            self._call(self._rt.close())
            self._rt = None

    def _clock(self) -> dict[str, Any]:
        from cli.client import api

        return api().get("/bss-api/v1/admin/clock")

    # -- a scenario --------------------------------------------------------------------------
    def run(self, scenario: Scenario) -> ScenarioResult:
        result = ScenarioResult(scenario.name, label(scenario.path))
        try:
            return self._run(scenario, result)
        finally:
            self.close()

    def _run(self, scenario: Scenario, result: ScenarioResult) -> ScenarioResult:
        from cli.client import CliError

        requires = scenario.data.get("requires") or []
        try:
            clock = self._clock()
        except CliError as exc:
            result.steps.append(StepResult("0", "reach the stack", "api", "fail", 0.0, str(exc)))
            return result
        if "test_clock" in requires and not clock.get("testClock"):
            result.skipped = "it moves business time: it needs a test stack (bss up --test-clock)"
            return result
        if "llm" in requires and (why := self._agent_missing()):
            result.skipped = f"it needs the agent and {why}"
            return result
        run = secrets.token_hex(4)
        env: dict[str, Any] = {
            "run": run,
            "RUN": run.upper(),
            "run_number": "8" + "".join(secrets.choice("0123456789") for _ in range(7)),
            "today": str(clock.get("now", ""))[:10],
        }
        env.update({k: render(v, env) for k, v in (scenario.data.get("vars") or {}).items()})
        result.variables = env
        sessions: dict[str, str] = {}
        for i, step in enumerate(scenario.steps, 1):
            results = self._step(str(i), step, env, sessions)
            result.steps.extend(results)
            if any(r.outcome == "fail" for r in results):
                for j, rest in enumerate(scenario.steps[i:], i + 1):
                    name = rest.get("name") or _default_name(rest)
                    result.steps.append(StepResult(str(j), name, _kind(rest), "skip", 0.0, "after a failure"))
                break
        return result

    def _step(
        self, index: str, step: dict[str, Any], env: dict[str, Any], sessions: dict[str, str]
    ) -> list[StepResult]:
        kind = _kind(step)
        name = render(step.get("name") or _default_name(step), env)
        when = step.get("when")
        if when is not None and (self._agent_missing() is None) != (when == "llm"):
            why = "only with a model" if when == "llm" else "only without a model"
            return [StepResult(index, name, kind, "skip", 0.0, f"skipped: {why}")]
        if kind == "ask":
            why = self._agent_missing()
            if why is not None:
                fallback = step.get("without_llm")
                if fallback is None:
                    return [StepResult(index, name, kind, "skip", 0.0, f"skipped: {why}")]
                out = [
                    StepResult(index, name, kind, "skip", 0.0, f"{why}: its without_llm steps run instead")
                ]
                for j, sub in enumerate(fallback, 1):
                    res = self._step(f"{index}.{j}", sub, env, sessions)
                    out.extend(res)
                    if any(r.outcome == "fail" for r in res):
                        break
                return out
        until = {} if kind == "ask" else step.get("until") or {}  # a turn is never asked twice
        deadline = time.monotonic() + float(until.get("timeout", 0))
        interval = float(until.get("interval", 0.5))
        started = time.monotonic()
        while True:
            try:
                output = self._execute(kind, render(step, env), sessions)
                self._expect(kind, render(step.get("expect") or {}, env), output)
                for var, path in (step.get("capture") or {}).items():
                    value = lookup(output.get("json"), render(path, env))
                    if value is _MISSING:
                        raise _StepFailed(f"nothing at {path} to capture as {var}")
                    env[var] = value
                detail = ", ".join(
                    f"{k}={_short(env[k]).strip(chr(34))}" for k in (step.get("capture") or {})
                )
                return [StepResult(index, name, kind, "pass", time.monotonic() - started, detail, output)]
            except _StepFailed as exc:
                if until and time.monotonic() < deadline:
                    time.sleep(interval)
                    continue
                waited = f" (still after {until.get('timeout')} s)" if until else ""
                return [StepResult(index, name, kind, "fail", time.monotonic() - started, f"{exc}{waited}")]

    # -- kinds -------------------------------------------------------------------------------
    def _execute(self, kind: str, step: dict[str, Any], sessions: dict[str, str]) -> dict[str, Any]:
        if kind == "bss":
            return _run_bss([str(a) for a in step["bss"]])
        if kind == "api":
            return _run_api(step["api"])
        if kind == "clock":
            return _run_clock(step["clock"])
        return self._run_ask(step, sessions)

    def _run_ask(self, step: dict[str, Any], sessions: dict[str, str]) -> dict[str, Any]:
        from agent.loop import run_turn
        from agent.store import new_session

        profile = step.get("profile") or "operator"
        customer = step.get("customer")
        if profile == "customer" and not customer:
            raise _StepFailed("a customer-profile ask names its customer (customer: {{cust}})")
        key = f"{step.get('session') or 'main'}/{profile}/{customer or ''}"
        actor = customer if profile == "customer" else self.actor
        rt = self._runtime()
        if key not in sessions:
            sessions[key] = self._call(new_session(rt, actor=actor, profile=profile, customer_id=customer))
        if self.on_ask is not None:
            self.on_ask(step)
        turn = self._call(
            run_turn(
                rt,
                session_id=sessions[key],
                text=step["ask"],
                actor=actor,
                profile=profile,
                customer_id=customer,
            )
        )
        data = {
            "session_id": turn.session_id,
            "answer": turn.answer or "",
            "tool_calls": list(turn.tool_calls or []),
            "proposals": list(turn.proposals or []),
        }
        return {"json": json.loads(json.dumps(data, default=str)), "text": data["answer"]}

    # -- expectations ------------------------------------------------------------------------
    def _expect(self, kind: str, expect: dict[str, Any], out: dict[str, Any]) -> None:
        if kind == "bss":
            want_exit = expect.get("exit", 0)
            if out["exit"] != want_exit:
                said = (out.get("stderr") or out.get("stdout") or "").strip().splitlines()
                raise _StepFailed(
                    f"exit code {out['exit']}, expected {want_exit}" + (f": {said[-1]}" if said else "")
                )
        if kind == "api" and "status" in expect and out["status"] != expect["status"]:
            body = out.get("json") or {}
            why = body.get("message") if isinstance(body, dict) else None
            raise _StepFailed(
                f"HTTP {out['status']}, expected {expect['status']}" + (f": {why}" if why else "")
            )
        if kind == "api" and "status" not in expect and out["status"] >= 400:
            body = out.get("json") or {}
            raise _StepFailed(
                f"HTTP {out['status']}: {body.get('message') if isinstance(body, dict) else ''}"
            )
        for stream in ("stdout", "stderr"):
            wants = expect.get(f"{stream}_contains")
            for want in [wants] if isinstance(wants, str) else wants or []:
                if want.lower() not in (out.get(stream) or "").lower():
                    raise _StepFailed(f"{stream} does not say {want!r}")
        if expect.get("json"):
            if out.get("json") is None:
                raise _StepFailed("the output is not JSON (add --json to the command)")
            for path, matcher in expect["json"].items():
                why = check_matcher(lookup(out["json"], path), matcher)
                if why:
                    raise _StepFailed(f"{path} {why}")
        if kind == "ask":
            self._expect_turn(expect, out["json"])

    def _expect_turn(self, expect: dict[str, Any], turn: dict[str, Any]) -> None:
        called = [c.get("name") for c in turn["tool_calls"]]
        for name in expect.get("tools_called") or []:
            if name not in called:
                raise _StepFailed(
                    f"the agent did not call {name} (it called {', '.join(called) or 'nothing'}; "
                    f"it answered {_short(turn['answer'])})"
                )
        for name in expect.get("tools_not_called") or []:
            if name in called:
                raise _StepFailed(f"the agent called {name}")
        wants = expect.get("answer_contains")
        for want in [wants] if isinstance(wants, str) else wants or []:
            if want.lower() not in turn["answer"].lower():
                raise _StepFailed(f"the answer does not say {want!r}: {_short(turn['answer'])}")
        for want in expect.get("proposals") or []:
            if not any(_subset(want, p) for p in turn["proposals"]):
                have = [f"{p.get('tool')} ({p.get('state')})" for p in turn["proposals"]]
                raise _StepFailed(f"no proposal like {_short(want)} (proposals: {', '.join(have) or 'none'})")


def _subset(want: Any, have: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _subset(v, have[k]) for k, v in want.items())
    return want == have or (isinstance(have, str) and isinstance(want, str) and want.lower() in have.lower())


def _default_name(step: dict[str, Any]) -> str:
    kind = _kind(step)
    if kind == "bss":
        words = [str(a) for a in step["bss"] if not str(a).startswith("--")][:3]
        return "bss " + " ".join(words)
    if kind == "api":
        return f"{step['api'].get('method')} {step['api'].get('path')}"
    if kind == "clock":
        (op, value), *_ = step["clock"].items()
        return f"clock {op}" + (f" {value}" if isinstance(value, str) else "")
    if kind == "ask":
        text = step["ask"]
        return "ask " + (text if len(text) <= 50 else text[:47] + "...")
    return "step"


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _run_bss(args: list[str]) -> dict[str, Any]:
    """The real `bss` app, in-process: its output captured, its exit code kept."""
    from typer.testing import CliRunner  # typer's own runner: it takes the Typer app

    from cli.main import app

    if args and args[0] == "bss":
        args = args[1:]
    if args[:1] == ["scenario"]:
        raise _StepFailed("a scenario does not run scenarios")
    result = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise _StepFailed(
            f"bss {' '.join(args[:2])} crashed: {type(result.exception).__name__}: {result.exception}"
        )
    return {
        "exit": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "json": _parse_json(result.stdout),
    }


def _run_api(call: dict[str, Any]) -> dict[str, Any]:
    from cli.client import api

    kwargs: dict[str, Any] = {}
    if "body" in call:
        kwargs["json"] = call["body"]
    if call.get("params"):
        kwargs["params"] = call["params"]
    if call.get("headers"):
        kwargs["headers"] = call["headers"]
    r = api().send(call["method"], call["path"], **kwargs)
    data = _parse_json(r.text) if r.content else None
    return {"status": r.status_code, "json": data, "stdout": r.text}


def _run_clock(clock: dict[str, Any]) -> dict[str, Any]:
    from cli.client import CliError, api

    (op, value), *_ = clock.items()
    base = "/bss-api/v1/admin/clock"
    try:
        if op == "advance":
            data = api().post(f"{base}/advance", {"duration": value})
        elif op == "freeze":
            data = api().post(f"{base}/freeze", {"at": value} if isinstance(value, str) else None)
        else:
            data = api().post(f"{base}/unfreeze")
    except CliError as exc:
        raise _StepFailed(str(exc)) from None
    return {"json": data, "stdout": json.dumps(data)}

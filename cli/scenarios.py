"""Runs scenarios (cli/scenario_format.py says how they are written) against the stack the CLI
points at: each step through the real `bss` app, the API, the test clock, or a turn of the agent."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cli.scenario_expect import MISSING, check_matcher, lookup, render, short
from cli.scenario_format import (
    SCENARIO_DIR,
    Scenario,
    ScenarioError,
    label,
    load,
    parse,
    scenario_files,
    step_kind,
)

__all__ = [
    "SCENARIO_DIR",
    "Runner",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "StepResult",
    "check_matcher",
    "label",
    "load",
    "lookup",
    "parse",
    "runner_defaults",
    "scenario_files",
    "script_of",
]


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
                    result.steps.append(
                        StepResult(str(j), name, step_kind(rest), "skip", 0.0, "after a failure")
                    )
                break
        return result

    def _step(
        self, index: str, step: dict[str, Any], env: dict[str, Any], sessions: dict[str, str]
    ) -> list[StepResult]:
        kind = step_kind(step)
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
                    if value is MISSING:
                        raise _StepFailed(f"nothing at {path} to capture as {var}")
                    env[var] = value
                detail = ", ".join(f"{k}={short(env[k]).strip(chr(34))}" for k in (step.get("capture") or {}))
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
                    f"it answered {short(turn['answer'])})"
                )
        for name in expect.get("tools_not_called") or []:
            if name in called:
                raise _StepFailed(f"the agent called {name}")
        wants = expect.get("answer_contains")
        for want in [wants] if isinstance(wants, str) else wants or []:
            if want.lower() not in turn["answer"].lower():
                raise _StepFailed(f"the answer does not say {want!r}: {short(turn['answer'])}")
        for want in expect.get("proposals") or []:
            if not any(_subset(want, p) for p in turn["proposals"]):
                have = [f"{p.get('tool')} ({p.get('state')})" for p in turn["proposals"]]
                raise _StepFailed(f"no proposal like {short(want)} (proposals: {', '.join(have) or 'none'})")


def _subset(want: Any, have: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _subset(v, have[k]) for k, v in want.items())
    return want == have or (isinstance(have, str) and isinstance(want, str) and want.lower() in have.lower())


def _default_name(step: dict[str, Any]) -> str:
    kind = step_kind(step)
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

"""`bss scenario`: validate refuses a bad file with one sentence naming the place; a hero scenario
runs against the real stack (CLI → in-process API → workflows on the dev server), its `ask` steps
replaced by their `without_llm` steps when no model is configured; a failing expectation fails the
run with exit code 1 and the steps after it are skipped."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.scenarios import SCENARIO_DIR, check_matcher, lookup, runner_defaults
from tests.cli.saga_cli import bss_on_saga, run
from tests.cli_harness import Bss


def _bss(*args: str):
    from cli.main import app

    return CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(app, list(args))


GOOD = """
name: tiny
steps:
  - name: make a customer
    bss: [customer, create, --name, "T {{run}}", --json]
    capture: {cust: id}
  - api: {method: GET, path: "/tmf-api/customerManagement/v4/customer/{{cust}}"}
    expect: {status: 200}
"""


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            GOOD.replace("  - api:", "  - apii:"),
            "step 2: a step has exactly one of bss, api, clock, ask (found apii, expect)",
        ),
        (GOOD.replace("{{cust}}", "{{customer}}"), "step 2: uses {{customer}} before any step captures it"),
        (
            GOOD.replace("status: 200", "status: ok"),
            "step 2, at expect.status: 'ok' is not of type 'integer'",
        ),
        (
            GOOD.replace("capture: {cust: id}", "capture: {cust: id}\n    retries: 3"),
            "'retries' is not allowed",
        ),
        (GOOD.replace("name: tiny", "name: Tiny Scenario"), "at name: 'Tiny Scenario' does not match"),
        (GOOD + "  - ask: [not, text]\n", "step 3, at ask: ['not', 'text'] is not of type 'string'"),
        ("name: x\nsteps: [\n", "not valid YAML at line 3"),
    ],
)
def test_validate_refuses_a_bad_file_with_one_sentence(tmp_path: Path, text: str, says: str):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = _bss("scenario", "validate", str(bad))
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {bad}: "), result.stderr
    assert says in result.stderr, result.stderr


def test_every_scenario_in_the_repo_is_valid(tmp_path: Path):
    result = _bss("scenario", "validate", "--json")
    assert result.exit_code == 0, result.output
    checked = json.loads(result.stdout)
    names = {row["name"] for row in checked}
    assert {"signup", "blocked-line-topped-up", "plan-change-at-renewal", "port-in"} <= names
    assert {"stuck-order-resolved", "promo-applied", "escalation"} <= names
    assert len(checked) == len(list(SCENARIO_DIR.glob("*.yaml")))


def test_json_paths_and_matchers():
    line = {
        "state": "active",
        "balances": [{"allowanceType": "data", "remaining": 1024}],
        "price": {"amount": "25.00"},
    }
    assert lookup(line, "balances[allowanceType=data].remaining") == 1024
    assert lookup(line, "balances.0.remaining") == lookup(line, "balances[0].remaining") == 1024
    assert check_matcher(lookup(line, "price.amount"), 25) is None  # "25.00" equals 25
    assert check_matcher(lookup(line, "state"), "blocked") == 'is "active", expected "blocked"'
    assert check_matcher(lookup(line, "balances[allowanceType=sms].remaining"), 1) == "is missing"
    assert check_matcher(lookup(line, "$"), {"exists": True}) is None
    assert check_matcher(lookup(line, "balances"), {"length": 2}) == "has length 1, expected 2"


@pytest.fixture
def saga_bss(saga, settings, temporal_dev) -> Iterator[Bss]:
    yield from bss_on_saga(settings, temporal_dev)


async def test_hero_scenarios_run_and_a_failing_expectation_fails_the_run(
    saga, saga_bss: Bss, settings, tmp_path: Path
):
    # No model configured: an ask step says so, and its without_llm steps run in its place.
    for name in ("signup.yaml", "escalation.yaml"):
        shutil.copy(SCENARIO_DIR / name, tmp_path / name)
    with runner_defaults(settings=settings):  # this test's database, and no model configured
        done = await run(saga_bss, "scenario", "run-all", str(tmp_path), "--json")
    assert done.exit_code == 0, done.output
    report = {r["scenario"]: r for r in json.loads(done.stdout)["scenarios"]}
    assert report["signup"]["outcome"] == "pass" and report["signup"]["counts"] == {
        "pass": 5,
        "fail": 0,
        "skip": 0,
    }
    steps = {s["name"]: s for s in report["escalation"]["steps"]}
    assert report["escalation"]["outcome"] == "pass", report["escalation"]
    asked = steps["the customer asks the chat"]
    assert asked["outcome"] == "skip" and "no LLM is configured" in asked["detail"], asked
    assert steps["the operator opens the case"]["outcome"] == "pass"
    assert steps["the operator opens the case"]["index"] == "2.1"
    # Each run made its own customer, named after the run.
    for r in report.values():
        shown = await run(saga_bss, "customer", "show", r["variables"]["cust"], "--json")
        assert r["variables"]["run"] in shown.stdout

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        "name: wrong\nsteps:\n"
        '  - bss: [customer, create, --name, "W {{run}}", --email, "w-{{run}}@example.com", --json]\n'
        "    expect: {json: {status: suspended}}\n"
        "    capture: {cust: id}\n"
        '  - bss: [customer, show, "{{cust}}", --json]\n'
    )
    failed = await run(saga_bss, "scenario", "run", str(wrong))
    assert failed.exit_code == 1, failed.output
    assert 'status is "active", expected "suspended"' in failed.stdout, failed.stdout
    assert "after a failure" in failed.stdout
    assert "wrong: FAILED (0 passed, 1 failed, 1 skipped)" in failed.stdout

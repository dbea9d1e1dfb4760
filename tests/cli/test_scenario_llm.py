"""The scenarios with `ask:` steps, run by `bss scenario run-all --tag llm` against the scripted
OpenAI-compatible server (tests/agent/scripted_llm.py) through the real langchain-openai client:
each ask step's `script:` is loaded into the server before its turn, so the agent's real tools,
proposals and /confirm run on the real stack (CLI → API → workflows on the dev server)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from cli.scenarios import SCENARIO_DIR, runner_defaults, script_of
from tests.agent import scripted_llm as scripted
from tests.agent.scripted_llm import ScriptedLLM, calls, text
from tests.cli.saga_cli import bss_on_saga, run
from tests.cli_harness import Bss

llm_server = scripted.llm_server  # the scripted server's fixtures (tests/agent/conftest.py is not seen here)
scripted_llm = scripted.scripted_llm


@pytest.fixture
def saga_bss(saga, settings, temporal_dev) -> Iterator[Bss]:
    yield from bss_on_saga(settings, temporal_dev)


def _loader(llm: ScriptedLLM):
    def on_ask(step: dict) -> None:
        llm.reset(
            [
                text(item["text"])
                if "text" in item
                else calls(*[(c["name"], c["args"]) for c in item["tool_calls"]])
                for item in script_of(step)
            ]
        )

    return on_ask


async def test_the_ask_scenarios_pass_on_a_scripted_model(saga, saga_bss: Bss, settings, scripted_llm):
    with runner_defaults(settings=settings, on_ask=_loader(scripted_llm)):
        done = await run(saga_bss, "scenario", "run-all", str(SCENARIO_DIR), "--tag", "llm", "--json")
    report = {r["scenario"]: r for r in json.loads(done.stdout)["scenarios"]}
    assert done.exit_code == 0, json.dumps(report, indent=1)
    assert set(report) == {"blocked-line-topped-up", "escalation", "handbook-question"}
    for r in report.values():
        assert r["outcome"] == "pass" and r["counts"]["skip"] == 0, r  # no step fell back
    blocked = {s["name"]: s for s in report["blocked-line-topped-up"]["steps"]}
    assert blocked["nothing is bought before the confirm"]["outcome"] == "pass"
    assert blocked["the operator confirms"]["outcome"] == "pass"
    # The scripted model really was asked, by the real client, with the agent's tools.
    assert scripted_llm.requests and scripted_llm.requests[0]["tools"]

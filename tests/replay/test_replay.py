"""Every exported history (scripts/export_histories.py) replays against today's workflow code.

A failure here means a change to a workflow would break the orders already running on it: guard
the change with `workflow.patched(...)` rather than re-exporting (see the script's docstring).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from worker import workflow_runner
from workflows.registry import WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"
FILES = sorted(HISTORIES.glob("*/*.json"))


def test_the_required_cases_are_exported():
    cases = {(p.parent.name, p.stem) for p in FILES}
    for case in (
        "happy_path",
        "declined_card",
        "retried_task",
        "stuck_then_resolved",
        "cancelled_before_som",
    ):
        assert ("ProductOrderWorkflow", case) in cases
    for case in ("happy_path", "declined_card", "retried_task", "stuck_then_resolved"):
        assert ("ServiceOrderWorkflow", case) in cases
        assert ("EsimProvisioningWorkflow", case) in cases
    # A test stack's moved clock (ClockChanged) renewing a line: the skew path of the workflow.
    assert ("SubscriptionWorkflow", "clock_advanced_renewal") in cases


def test_every_workflow_the_worker_runs_has_a_history():
    exported = {p.parent.name for p in FILES}
    assert {wf.__name__ for wf in WORKFLOWS} <= exported


def load(path: Path) -> WorkflowHistory:
    # The export holds the events only; the id is informative (no workflow branches on it).
    return WorkflowHistory.from_json(f"replay-{path.parent.name}-{path.stem}", path.read_text())


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
async def test_history_replays_without_nondeterminism(path: Path):
    history = load(path)
    # raise_on_replay_failure (the default): a nondeterminism error, or any workflow task failure, raises.
    # strict: a module a workflow imports without passing it through explicitly fails the replay.
    runner = workflow_runner(strict=True)
    result = await Replayer(workflows=WORKFLOWS, workflow_runner=runner).replay_workflow(history)
    assert result.replay_failure is None

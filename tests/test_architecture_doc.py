"""docs/architecture.md lists what runs: every registered workflow and activity, every schema,
the worker's loops, and nothing that is not registered."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"


def _activity_names() -> set[str]:
    from temporalio.activity import _Definition

    from activities.registry import build_activities
    from core.settings import Settings
    from ops.runtime import Runtime

    rt = Runtime.create(Settings(db_url="postgresql+asyncpg://u:p@127.0.0.1:1/none", sim_latency_factor=0))
    return {_Definition.must_from_callable(a).name for a in build_activities(rt)}


def test_the_architecture_page_names_what_runs_and_only_that() -> None:
    from core.db import SCHEMAS
    from workflows.registry import WORKFLOWS

    text = DOC.read_text()
    for wf in WORKFLOWS:
        assert f"`{wf.__name__}`" in text, f"{wf.__name__} is registered but not in docs/architecture.md"
    named = set(re.findall(r"`([A-Z][A-Za-z]+Workflow)`", text))
    assert named <= {wf.__name__ for wf in WORKFLOWS}, (
        f"not registered: {named - {w.__name__ for w in WORKFLOWS}}"
    )
    for name in _activity_names():
        assert f"`{name}`" in text, f"activity {name} runs but is not in docs/architecture.md"
    for schema in SCHEMAS:
        assert re.search(rf"\b{schema}\b", text), f"schema {schema} missing"
    for loop in ("run_order_sweeper", "run_ticket_sla_sweeper", "run_notifier"):
        assert loop in text and loop in (DOC.parent.parent / "worker.py").read_text()

"""bench/saga_floor.py measures the design's floor with bench/floor_workflows.py; the floor only
means something while it has the signup's shape. Each floor workflow must record as many workflow
tasks, local steps and child starts as the product's workflow in its happy-path history."""

from __future__ import annotations

import asyncio
import collections
import json
import uuid
from pathlib import Path

from bench.floor_workflows import FloorOrder, floor_worker

HISTORIES = Path(__file__).resolve().parents[1] / "replay" / "histories"
PRODUCT_OF = {
    "order": "ProductOrderWorkflow",
    "som": "ServiceOrderWorkflow",
    "esim": "EsimProvisioningWorkflow",
}


def _shape(events) -> tuple[int, int, int]:
    counts = collections.Counter()
    for event in events:
        kind = event["eventType"]
        if kind == "EVENT_TYPE_MARKER_RECORDED":
            kind = event["markerRecordedEventAttributes"]["markerName"]
        counts[kind] += 1
    return (
        counts["EVENT_TYPE_WORKFLOW_TASK_COMPLETED"],
        counts["core_local_activity"],
        counts["EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED"],
    )


def _product_shape(workflow_type: str) -> tuple[int, int, int]:
    history = json.loads((HISTORIES / workflow_type / "local_tasks_happy_path.json").read_text())
    return _shape(history["events"])


async def test_the_floor_has_the_signups_shape(temporal_dev):
    client = temporal_dev.client
    queue = f"floor-{uuid.uuid4()}"
    order_id = f"floor-{uuid.uuid4()}"
    async with floor_worker(client, queue):
        assert (
            await client.execute_workflow(FloorOrder.run, "o", id=order_id, task_queue=queue) == "completed"
        )
        ids = {"order": order_id, "som": f"{order_id}-som", "esim": f"{order_id}-som-esim"}
        for name, workflow_id in ids.items():
            floor = await _settled_shape(client, workflow_id)
            assert floor == _product_shape(PRODUCT_OF[name]), name


async def _settled_shape(client, workflow_id: str) -> tuple[int, int, int]:
    """The eSIM flow takes its last task (after its signal landed) on its own time: wait until
    it sleeps on its timer, as every floor workflow ends either closed or on a timer."""
    for _ in range(100):
        events = json.loads((await client.get_workflow_handle(workflow_id).fetch_history()).to_json())[
            "events"
        ]
        if events[-1]["eventType"] in ("EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED", "EVENT_TYPE_TIMER_STARTED"):
            return _shape(events)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} did not settle: last event {events[-1]['eventType']}")

"""`bss trace for-order` and GET /bss-api/v1/trace/order/{id}: the saga read back from the
workflow histories of a real run on the dev server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from cli.commands.trace import Swimlane
from tests.cli.saga_cli import bss_on_saga, run
from tests.cli_harness import Bss, bss_cli
from tests.saga_harness import Saga

NETWORK_TASKS = {"HLR_PROVISION", "PCRF_POLICY_PUSH", "OCS_BALANCE_INIT"}


@pytest.fixture
def saga_bss(saga: Saga, settings, temporal_dev) -> Iterator[Bss]:
    yield from bss_on_saga(settings, temporal_dev)


def lane(trace: dict, prefix: str) -> dict:
    return next(w for w in trace["workflows"] if w["workflowId"].startswith(prefix))


def steps(wf: dict, kind: str) -> list[dict]:
    return [s for s in wf["steps"] if s["kind"] == kind]


async def test_trace_for_order_draws_every_workflow_of_the_saga(saga: Saga, saga_bss: Bss):
    cust = await saga.customer()
    created = await run(saga_bss, "order", "create", "--customer", cust, "--offering", "PLAN_S", "--json")
    assert created.exit_code == 0, created.output
    order = json.loads(created.stdout)
    order_id, sub_id, iccid = order["id"], order["productOrderItem"][0]["product"]["id"], order["iccid"]
    so_id = order["serviceOrder"][0]["id"]

    drawn = await run(saga_bss, "trace", "for-order", order_id)
    assert drawn.exit_code == 0, drawn.output
    text = drawn.stdout
    for shown in (
        f"order-{order_id}",
        f"service-order-{so_id}",
        f"esim-{iccid}",
        f"subscription-{sub_id}",
        "create_service_order (local)",
        "reserve_resources (local)",
        "charge_activation (local)",
        "create_subscription (local)",
        "run_task HLR_PROVISION (local)",
        "run_task ESIM_PROFILE_PREPARE (local)",
        "child ServiceOrderWorkflow",
        "signal esim_prepared",
        " ms",
    ):
        assert shown in text, f"{shown!r} missing from\n{text}"
    assert text.rstrip().endswith(
        f"Temporal UI: http://127.0.0.1:8233/namespaces/default/workflows/order-{order_id}"
    )
    assert max(len(line) for line in text.splitlines()) <= 200  # fits the terminal, no wrapping
    bar_row = next(line for line in text.splitlines() if "charge_activation" in line)
    assert re.search(r"│ *█+ *│ \d[\d,]* ms$", bar_row), bar_row

    trace = json.loads((await run(saga_bss, "trace", "for-order", order_id, "--json")).stdout)
    assert trace["workflows"][0]["workflowId"] == f"order-{order_id}"  # the order's lane comes first
    assert {w["workflowType"] for w in trace["workflows"]} == {
        "ProductOrderWorkflow",
        "ServiceOrderWorkflow",
        "EsimProvisioningWorkflow",
        "SubscriptionWorkflow",
    }
    com, som, esim = lane(trace, "order-"), lane(trace, "service-order-"), lane(trace, "esim-")
    assert (
        com["status"] == som["status"] == "completed" and lane(trace, "subscription-")["status"] == "running"
    )
    assert som["parentWorkflowId"] == com["workflowId"] and esim["parentWorkflowId"] == som["workflowId"]
    # One workflow task per step of the order (issue 12): started with its service order in one
    # local step; the charge, the line and the order's completion local too.
    assert [s["name"] for s in steps(com, "localActivity")] == [
        "create_service_order",
        "charge_activation",
        "create_subscription",
        "complete_order",
    ]
    charge = next(s for s in steps(com, "localActivity") if s["name"] == "charge_activation")
    assert charge["status"] == "completed" and charge["attempts"] == 1 and charge["durationMs"] >= 0
    assert not steps(com, "activity") and not steps(som, "activity")
    assert {s["detail"] for s in steps(som, "localActivity") if s["name"] == "run_task"} == NETWORK_TASKS
    assert [s["name"] for s in steps(com, "childWorkflow")] == [
        "ServiceOrderWorkflow",
        "SubscriptionWorkflow",
    ]
    assert steps(esim, "timer") and steps(esim, "timer")[0]["plannedMs"] == 30 * 86_400_000
    for wf in trace["workflows"]:
        for s in wf["steps"]:
            assert wf["startMs"] <= s["startMs"] <= trace["durationMs"], (wf["workflowId"], s)
    # the order waited for its service order: the child's bar covers the SOM workflow's lifetime
    som_step = steps(com, "childWorkflow")[0]
    assert som_step["startMs"] <= som["startMs"]
    assert som_step["startMs"] + som_step["durationMs"] >= som["startMs"] + som["durationMs"]


async def test_a_retried_task_shows_its_attempts(saga: Saga, saga_bss: Bss):
    saga.fault("HLR_PROVISION", "fail_first_attempt")
    order = await saga.order(await saga.customer())
    assert (await saga.handle(order.id).result()).state == "completed"

    trace = json.loads((await run(saga_bss, "trace", "for-order", order.id, "--json")).stdout)
    som = lane(trace, "service-order-")
    attempts = {s["detail"]: s["attempts"] for s in steps(som, "localActivity") if s["name"] == "run_task"}
    assert attempts == {"HLR_PROVISION": 2, "PCRF_POLICY_PUSH": 1, "OCS_BALANCE_INIT": 1}
    text = (await run(saga_bss, "trace", "for-order", order.id)).stdout
    assert re.search(r"run_task HLR_PROVISION \(local\) .* ms ×2$", text, re.MULTILINE), text


async def test_a_declined_order_shows_its_compensation(saga: Saga, saga_bss: Bss):
    order = await saga.order(await saga.customer(card="4000000000000002"))
    assert (await saga.handle(order.id).result()).state == "failed"

    trace = json.loads((await run(saga_bss, "trace", "for-order", order.id, "--json")).stdout)
    com = lane(trace, "order-")
    names = [s["name"] for s in com["steps"] if s["kind"] in ("activity", "localActivity")]
    assert "create_subscription" not in names
    # the charge was declined, then everything was given back, then the order failed
    assert names.index("charge_activation") < names.index("release_resources") < names.index("fail_order")
    assert "refund_charge" in names
    assert not any(w["workflowId"].startswith("subscription-") for w in trace["workflows"])
    text = (await run(saga_bss, "trace", "for-order", order.id)).stdout
    assert "fail_order (local)" in text and "release_resources (local)" in text


async def test_an_order_without_a_workflow_is_404_and_an_unknown_one_too(saga: Saga, api):
    from core.db import transaction
    from domains.ordering import services as ordering
    from tests.saga_harness import CTX

    cust = await saga.customer()
    async with transaction(saga.runtime.db) as s:  # stored, but its workflow never started
        order = await ordering.create_order(s, CTX, customer_id=cust, offering_id="PLAN_S")
    orphan = await api.get(f"/bss-api/v1/trace/order/{order.id}")
    assert orphan.status_code == 404
    assert orphan.json()["reason"] == "order.workflow.not_found"
    unknown = await api.get("/bss-api/v1/trace/order/ORD-999999")
    assert unknown.status_code == 404 and unknown.json()["reason"] == "order.not_found"
    too_long = await api.get("/bss-api/v1/trace/order/" + "X" * 41)
    assert too_long.status_code == 400


def test_cli_refuses_an_unknown_order_on_one_line(settings):
    with bss_cli(settings) as bss:
        missing = bss("trace", "for-order", "ORD-999999")
        narrow = bss("trace", "for-order", "ORD-999999", "--width", "20")
    assert missing.exit_code == 1
    assert missing.stderr == "error: No product order ORD-999999. [order.not_found]\n"
    assert narrow.exit_code == 2


def test_swimlane_scales_bars_to_the_width():
    trace = {"durationMs": 1000, "workflows": [{"workflowType": "ProductOrderWorkflow", "steps": []}]}
    lanes = Swimlane(trace, width=100)
    whole = lanes.row("all of it", 0, 1000, "█", "", "1,000 ms").plain
    half = lanes.row("second half", 500, 500, "█", "", "500 ms").plain
    running = lanes.row("still waiting", 250, None, "░", "", "running").plain
    assert len(whole) <= 100 and len(half) == len(whole) - 2
    assert whole.count("█") == lanes.bar_w
    assert abs(half.count("█") - lanes.bar_w / 2) <= 1
    assert running.index("▸") == whole.rindex("█")  # open-ended bars run to the right edge

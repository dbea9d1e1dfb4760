"""`bss order`, `bss som`, `bss prov` and `bss esim` against the real API with the real saga running."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from core.clock import clock
from tests.cli.saga_cli import bss_on_saga, run
from tests.cli_harness import Bss, bss_cli
from tests.saga_harness import Saga

TASK_TYPES = ("HLR_PROVISION", "PCRF_POLICY_PUSH", "OCS_BALANCE_INIT", "ESIM_PROFILE_PREPARE")


@pytest.fixture
def saga_bss(saga: Saga, settings, temporal_dev) -> Iterator[Bss]:
    yield from bss_on_saga(settings, temporal_dev)


def order_id_in(text: str) -> str:
    found = re.search(r"Order (ORD-\d+)", text)
    assert found, text
    return found.group(1)


async def test_create_follows_the_saga_to_an_active_line_and_show_draws_the_tree(saga: Saga, saga_bss: Bss):
    cust = await saga.customer()
    created = await run(saga_bss, "order", "create", "--customer", cust, "--offering", "PLAN_M")
    assert created.exit_code == 0, created.output
    assert created.stderr == ""  # the spinner leaves nothing behind when not on a terminal
    order_id = order_id_in(created.stdout)
    assert "completed" in created.stdout
    assert re.search(r"SUB-\d+", created.stdout)
    assert "LPA:1$smdp.bss.local$" in created.stdout  # the activation code hint

    shown = await run(saga_bss, "order", "show", order_id)
    assert shown.exit_code == 0, shown.output
    tree = shown.stdout
    for part in ("COM", "SOM", "CFS MobileBroadband", "RFS DataService", "RFS VoiceService", *TASK_TYPES):
        assert part in tree, tree
    # the tree nests: order, then service order, then the CFS, then its RFS and tasks
    assert (
        tree.index(order_id) < tree.index("SO-") < tree.index("MobileBroadband") < tree.index("DataService")
    )
    assert tree.count("· 1 attempt ") + tree.count("· 1 attempt\n") == 4  # no fault: each task ran once

    data = json.loads((await run(saga_bss, "order", "show", order_id, "--json")).stdout)
    so = data["serviceOrders"][0]
    assert data["productOrder"]["state"] == "completed"
    assert {t["taskType"] for t in so["provisioningTask"]} == set(TASK_TYPES)
    assert {s["name"] for s in so["services"]} == {"MobileBroadband", "DataService", "VoiceService"}

    listed = json.loads((await run(saga_bss, "order", "list", "--customer", cust, "--json")).stdout)
    assert [o["id"] for o in listed] == [order_id]
    table = await run(saga_bss, "order", "list", "--state", "completed")
    assert order_id in table.stdout and cust in table.stdout

    so_card = await run(saga_bss, "som", "so-show", so["id"])
    assert so_card.exit_code == 0, so_card.output
    assert (
        order_id in so_card.stdout
        and "HLR_PROVISION" in so_card.stdout
        and "MobileBroadband" in so_card.stdout
    )
    cfs = next(s for s in so["services"] if s["name"] == "MobileBroadband")
    svc_card = await run(saga_bss, "som", "service-show", cfs["id"])
    assert svc_card.exit_code == 0, svc_card.output
    assert "msisdn = 9000" in svc_card.stdout and "designed →" in svc_card.stdout

    tasks = json.loads((await run(saga_bss, "prov", "tasks", "--service-order", so["id"], "--json")).stdout)
    assert {t["taskType"]: t["state"] for t in tasks} == dict.fromkeys(TASK_TYPES, "completed")


async def test_declined_card_fails_the_order_and_show_prints_the_reason(saga: Saga, saga_bss: Bss):
    cust = await saga.customer(card="4000000000000002")
    created = await run(saga_bss, "order", "create", "--customer", cust, "--offering", "PLAN_S")
    assert created.exit_code == 1
    order_id = order_id_in(created.stdout)
    assert created.stderr.count("\n") == 1 and "declined" in created.stderr and order_id in created.stderr

    shown = await run(saga_bss, "order", "show", order_id)
    assert shown.exit_code == 0, shown.output
    assert "failed" in shown.stdout and "reason: The card on file was declined" in shown.stdout
    data = json.loads((await run(saga_bss, "order", "show", order_id, "--json")).stdout)
    assert data["productOrder"]["state"] == "failed"
    assert "subscription" not in json.dumps(data["productOrder"]["productOrderItem"])


async def test_a_stuck_order_is_listed_and_resolved_from_the_cli(saga: Saga, saga_bss: Bss):
    none = await run(saga_bss, "order", "stuck")
    assert none.exit_code == 0, none.output
    assert "No stuck orders." in none.stdout
    assert "http://127.0.0.1:8233/namespaces/default/workflows?query=BssStuck%3Dtrue" in none.stdout

    saga.fault("OCS_BALANCE_INIT", "stuck")
    cust = await saga.customer()
    created = await run(
        saga_bss, "order", "create", "--customer", cust, "--offering", "PLAN_S", "--no-wait", "--json"
    )
    assert created.exit_code == 0, created.output
    order_id = json.loads(created.stdout)["id"]

    rows: list = []
    for _ in range(100):  # the task passes its 2 s deadline, then visibility catches up
        rows = json.loads((await run(saga_bss, "order", "stuck", "--json")).stdout)
        if any(r["orderId"] == order_id for r in rows):
            break
        await asyncio.sleep(0.2)
    row = next(r for r in rows if r["orderId"] == order_id)
    assert row["taskType"] == "OCS_BALANCE_INIT" and row["ticketId"]

    listed = await run(saga_bss, "order", "stuck")
    assert order_id in listed.stdout and row["taskId"] in listed.stdout and row["ticketId"] in listed.stdout
    tree = (await run(saga_bss, "order", "show", order_id)).stdout
    assert re.search(r"OCS_BALANCE_INIT .*stuck.*ticket " + re.escape(row["ticketId"]), tree), tree
    stuck_tasks = await run(saga_bss, "prov", "tasks", "--state", "stuck")
    assert row["taskId"] in stuck_tasks.stdout

    refused = await run(saga_bss, "prov", "retry", "PTK-999999")
    assert refused.exit_code == 1 and refused.stderr.startswith("error: ")

    resolved = await run(
        saga_bss, "prov", "resolve", row["taskId"], "--note", "balance set by hand on the OCS"
    )
    assert resolved.exit_code == 0, resolved.output
    assert f"Task {row['taskId']} resolved" in resolved.stdout
    result = await saga.handle(order_id).result()
    assert result.state == "completed", result.reason
    task = json.loads((await run(saga_bss, "prov", "tasks", "--state", "completed", "--json")).stdout)
    assert any(t["id"] == row["taskId"] for t in task)


async def test_cancel_before_provisioning_is_allowed_and_after_is_refused(saga: Saga, saga_bss: Bss):
    later = await saga.order(await saga.customer(), requested_start=clock.now() + timedelta(hours=1))
    cancelled = await run(saga_bss, "order", "cancel", later.id, "--reason", "changed my mind")
    assert cancelled.exit_code == 0, cancelled.output
    assert f"Order {later.id} is cancelled." in cancelled.stdout
    assert "changed my mind" in (await run(saga_bss, "order", "show", later.id)).stdout

    done = await saga.order(await saga.customer())
    assert (await saga.handle(done.id).result()).state == "completed"
    refused = await run(saga_bss, "order", "cancel", done.id)
    assert refused.exit_code == 1
    assert refused.stderr.count("\n") == 1 and "order.transition.invalid" in refused.stderr
    assert "completed" in (await run(saga_bss, "order", "show", done.id)).stdout


async def test_esim_activation_prints_the_code_and_a_qr_and_plays_the_device(saga: Saga, saga_bss: Bss):
    order = await saga.order(await saga.customer())
    result = await saga.handle(order.id).result()
    assert result.state == "completed", result.reason

    shown = await run(saga_bss, "esim", "activation", result.iccid)
    assert shown.exit_code == 0, shown.output
    code = json.loads((await run(saga_bss, "esim", "activation", result.iccid, "--json")).stdout)[
        "activationCode"
    ]
    assert code.startswith("LPA:1$smdp.bss.local$") and code in shown.stdout
    qr_lines = [line for line in shown.stdout.splitlines() if set(line) <= set("▀▄█ ") and "█" in line]
    assert len(qr_lines) >= 12  # a version 2+ QR code, two modules per character row

    played = await run(saga_bss, "esim", "device", result.iccid, "downloaded", "--json")
    assert played.exit_code == 0, played.output
    for _ in range(50):
        status = json.loads((await run(saga_bss, "esim", "status", result.iccid, "--json")).stdout)
        if status["state"] == "downloaded":
            break
        await asyncio.sleep(0.1)
    assert status["state"] == "downloaded"
    bad = await run(saga_bss, "esim", "device", result.iccid, "exploded")
    assert bad.exit_code == 2


def test_prov_fault_turns_a_rule_on_and_off(settings):
    with bss_cli(settings, actor="ops-bob") as bss:
        on = bss("prov", "fault", "hlr_provision", "fail_always", "--probability", "0.5")
        assert on.exit_code == 0, on.output
        assert "fail_always on HLR_PROVISION is on at probability 0.50" in on.stdout
        rules = json.loads(bss("prov", "faults", "--json").stdout)
        rule = next(r for r in rules if r["taskType"] == "HLR_PROVISION" and r["faultType"] == "fail_always")
        assert rule["enabled"] is True and rule["probability"] == 0.5

        off = bss("prov", "fault", "HLR_PROVISION", "fail_always", "--disable")
        assert off.exit_code == 0, off.output and "is off" in off.stdout
        listed = bss("prov", "faults")
        rules = json.loads(bss("prov", "faults", "--json").stdout)
        refused = bss("prov", "fault", "HLR_PROVISION", "explode")
        out_of_range = bss("prov", "fault", "HLR_PROVISION", "stuck", "--probability", "2")
    rule = next(r for r in rules if r["taskType"] == "HLR_PROVISION" and r["faultType"] == "fail_always")
    assert rule["enabled"] is False
    assert rule["id"] in listed.stdout
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1 and "faultType" in refused.stderr
    assert out_of_range.exit_code == 2


def test_refusals_exit_1_with_one_line_and_bad_usage_exits_2(settings):
    with bss_cli(settings) as bss:
        missing = bss("order", "show", "ORD-999999")
        assert missing.exit_code == 1
        assert missing.stderr == "error: No product order ORD-999999. [order.not_found]\n"
        no_customer = bss("order", "create", "--customer", "CUST-00000000", "--offering", "PLAN_S")
        assert no_customer.exit_code == 1 and no_customer.stderr.count("\n") == 1
        assert no_customer.stdout == ""
        assert bss("som", "so-show", "SO-999999").exit_code == 1
        assert bss("som", "service-show", "SVC-999999").exit_code == 1
        assert (
            bss("order", "create", "--customer", "CUST-1", "--offering", "PLAN_S", "--bogus").exit_code == 2
        )
        assert bss("order", "list", "--limit", "0").exit_code == 2
        assert bss("prov", "resolve", "PTK-000001").exit_code == 2  # --note is required
        orders = json.loads(bss("order", "list", "--json").stdout)
    assert orders == []  # nothing was created by the refused order

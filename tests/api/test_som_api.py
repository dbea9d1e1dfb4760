"""TMF641 service orders, TMF638 services, provisioning tasks and the eSIM device events over HTTP,
for orders run by the real saga (dev server, test database)."""

from __future__ import annotations

from tests.api.order_flow import (
    ORDERS,
    SERVICE_ORDERS,
    SERVICES,
    TASKS,
    chars,
    customer,
    error,
    order_until,
    place,
    scalar,
    snapshot,
    until,
)
from tests.tmf_schema import assert_conforms

ESIM = "/bss-api/v1/esim"
TASK_TYPES = {"HLR_PROVISION", "PCRF_POLICY_PUSH", "OCS_BALANCE_INIT", "ESIM_PROFILE_PREPARE"}


async def _completed_order(saga, api) -> dict:
    created = await place(api, await customer(saga.runtime))
    done = await order_until(api, created["id"], {"completed", "failed"})
    assert done["state"] == "completed", done.get("note")
    return done


async def test_the_service_order_of_a_completed_order_reads_as_tmf641(saga, api):
    order = await _completed_order(saga, api)
    so_id = order["serviceOrder"][0]["id"]

    r = await api.get(SERVICE_ORDERS, params={"externalId": order["id"]})
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "1", r.text
    so = r.json()[0]
    assert so == (await api.get(f"{SERVICE_ORDERS}/{so_id}")).json()
    assert_conforms("TMF641", "ServiceOrder", so)
    assert so["state"] == "completed" and so["externalId"] == order["id"] and so["completionDate"]
    assert so["relatedParty"][0]["id"] == order["relatedParty"][0]["id"]
    [item] = so["serviceOrderItem"]
    assert item["action"] == "add" and item["state"] == "completed"
    assert item["service"]["name"] == "MobileBroadband" and item["service"]["state"] == "active"
    assert {s["name"] for s in item["service"]["supportingService"]} == {"DataService", "VoiceService"}
    assert [(h["from"], h["to"]) for h in so["stateHistory"]] == [
        (None, "acknowledged"),
        ("acknowledged", "inProgress"),
        ("inProgress", "completed"),
    ]
    tasks = so["provisioningTask"]
    assert {t["taskType"] for t in tasks} == TASK_TYPES
    assert all(
        t["state"] == "completed" and t["attempts"] >= 1
        for t in tasks
        if t["taskType"] != "ESIM_PROFILE_PREPARE"
    )

    customer_id = order["relatedParty"][0]["id"]
    for params in ({"customerId": customer_id}, {"state": "completed", "customerId": customer_id}):
        assert [x["id"] for x in (await api.get(SERVICE_ORDERS, params=params)).json()] == [so_id]
    assert (await api.get(SERVICE_ORDERS, params={"state": "failed", "customerId": customer_id})).json() == []


async def test_the_services_of_a_line_read_as_tmf638_cfs_over_rfs(saga, api):
    order = await _completed_order(saga, api)
    so_id = order["serviceOrder"][0]["id"]
    sub_id = order["productOrderItem"][0]["product"]["id"]

    r = await api.get(SERVICES, params={"serviceOrderId": so_id})
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "3", r.text
    services = r.json()
    for s in services:
        assert_conforms("TMF638", "Service", s)
        assert s["state"] == "active" and s["subscriptionId"] == sub_id
        assert [h["to"] for h in s["stateHistory"]] == ["designed", "reserved", "activated"]
    [cfs] = [s for s in services if s["serviceType"] == "CFS"]
    assert cfs["@type"] == "CustomerFacingService" and cfs["name"] == "MobileBroadband"
    identity = chars(cfs)
    assert identity["msisdn"] == order["msisdn"] and identity["iccid"] == order["iccid"]
    assert identity["imsi"].startswith("525010") and identity["activationCode"].startswith("LPA:1$")
    assert cfs["serviceSpecification"]["id"]
    rfs = {s["name"]: s for s in services if s["serviceType"] == "RFS"}
    assert set(rfs) == {"DataService", "VoiceService"}
    assert {ref["id"] for ref in cfs["supportingService"]} == {s["id"] for s in rfs.values()}
    assert all(s["@type"] == "ResourceFacingService" for s in rfs.values())

    assert (await api.get(f"{SERVICES}/{cfs['id']}")).json() == cfs
    assert (await api.get(SERVICES, params={"subscriptionId": sub_id})).headers["X-Total-Count"] == "3"
    r = await api.get(SERVICES, params={"subscriptionId": sub_id, "serviceType": "RFS", "state": "active"})
    assert {s["name"] for s in r.json()} == {"DataService", "VoiceService"}
    assert (await api.get(SERVICES, params={"serviceOrderId": so_id, "state": "reserved"})).json() == []


async def test_a_failed_service_order_carries_its_reason_and_terminated_services(saga, api):
    saga.fault("PCRF_POLICY_PUSH", "fail_always")
    created = await place(api, await customer(saga.runtime))
    failed = await order_until(api, created["id"], {"failed", "completed"})
    assert failed["state"] == "failed"
    so = (await api.get(SERVICE_ORDERS, params={"externalId": created["id"]})).json()[0]
    assert_conforms("TMF641", "ServiceOrder", so)
    assert so["state"] == "failed" and so["note"][0]["text"]
    assert so["stateHistory"][-1]["to"] == "failed"
    pcrf = next(t for t in so["provisioningTask"] if t["taskType"] == "PCRF_POLICY_PUSH")
    assert pcrf["state"] == "failed" and pcrf["lastError"]
    services = (await api.get(SERVICES, params={"serviceOrderId": so["id"]})).json()
    for s in services:
        assert_conforms("TMF638", "Service", s)
        assert (s["state"], s["lifecycleState"]) == ("terminated", "failed")
    assert (await api.get(SERVICES, params={"serviceOrderId": so["id"], "state": "failed"})).headers[
        "X-Total-Count"
    ] == "3"


async def test_provisioning_task_reads_and_levers_refuse_what_is_not_stuck(saga, api):
    order = await _completed_order(saga, api)
    so_id = order["serviceOrder"][0]["id"]
    r = await api.get(TASKS, params={"serviceOrderId": so_id})
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "4"
    hlr = next(t for t in r.json() if t["taskType"] == "HLR_PROVISION")
    assert (await api.get(f"{TASKS}/{hlr['id']}")).json() == hlr
    r = await api.get(
        TASKS, params={"serviceOrderId": so_id, "taskType": "HLR_PROVISION", "state": "completed"}
    )
    assert [t["id"] for t in r.json()] == [hlr["id"]]

    before = await snapshot(saga.runtime)
    error(
        await api.post(f"{TASKS}/{hlr['id']}/resolve", json={"note": "done"}),
        422,
        "provisioning_task.resolve.requires_stuck_state",
    )
    error(await api.post(f"{TASKS}/{hlr['id']}/retry"), 422, "provisioning_task.retry.requires_stuck_state")
    error(await api.post(f"{TASKS}/PTK-999999/retry"), 404, "provisioning_task.not_found")
    error(await api.post(f"{TASKS}/{hlr['id']}/resolve", json={"note": "x", "force": True}), 400)
    error(await api.post(f"{TASKS}/{hlr['id']}/resolve", json={"note": "x" * 2001}), 400)
    assert await snapshot(saga.runtime) == before
    error(await api.get(f"{TASKS}/PTK-999999"), 404, "provisioning_task.not_found")
    error(await api.get(f"{TASKS}/PTK%00"), 400)
    error(await api.get(TASKS, params={"state": "done"}), 400, "state.invalid")
    error(await api.get(TASKS, params={"taskType": "HLR"}), 400, "taskType.invalid")


async def test_a_stuck_task_can_be_retried_and_the_order_completes(saga, api):
    saga.fault("HLR_PROVISION", "stuck")
    created = await place(api, await customer(saga.runtime))

    async def stuck() -> list:
        return (await api.get(TASKS, params={"state": "stuck", "taskType": "HLR_PROVISION"})).json()

    [task] = await until(stuck, bool, timeout=15)
    saga.faults.faults.clear()  # the network is fixed; the retry goes through
    r = await api.post(f"{TASKS}/{task['id']}/retry")
    assert r.status_code == 202, r.text
    done = await order_until(api, created["id"], {"completed", "failed"})
    assert done["state"] == "completed", done.get("note")
    after = (await api.get(f"{TASKS}/{task['id']}")).json()
    assert after["state"] == "completed" and after["attempts"] > task["attempts"]


async def test_playing_the_device_moves_the_esim_to_installed(saga, api):
    order = await _completed_order(saga, api)
    iccid = order["iccid"]
    status = (await api.get(f"{ESIM}/{iccid}/status")).json()
    assert status["state"] == "prepared" and status["source"] == "workflow"
    assert status["activationCode"].startswith("LPA:1$") and status["msisdn"] == order["msisdn"]

    r = await api.post(f"{ESIM}/{iccid}/device-event", json={"event": "downloaded"})
    assert r.status_code == 202, r.text

    async def current() -> dict:
        return (await api.get(f"{ESIM}/{iccid}/status")).json()

    assert (await until(current, lambda s: s["state"] == "downloaded"))["state"] == "downloaded"
    assert (await api.post(f"{ESIM}/{iccid}/device-event", json={"event": "installed"})).status_code == 202
    # The workflow ends once installed; the inventory row answers from then on.
    final = await until(current, lambda s: s["state"] == "installed" and s["source"] == "inventory")
    assert (final["state"], final["profileState"], final["source"]) == ("installed", "installed", "inventory")
    assert (
        await scalar(
            saga.runtime, "SELECT profile_state FROM inventory.esim_profile WHERE iccid = :i", i=iccid
        )
        == "installed"
    )


async def test_esim_endpoints_refuse_bad_input(saga, api):
    free = "8910101000000000999"  # never reserved in a fresh pool
    status = (await api.get(f"{ESIM}/{free}/status")).json()
    assert (status["state"], status["source"]) == ("available", "inventory")
    before = await snapshot(saga.runtime)
    error(await api.post(f"{ESIM}/{free}/device-event", json={"event": "installed"}), 404, "esim.not_found")
    error(await api.post(f"{ESIM}/{free}/device-event", json={"event": "exploded"}), 400)
    error(await api.post(f"{ESIM}/{free}/device-event", json={}), 400)
    error(await api.post(f"{ESIM}/123/device-event", json={"event": "installed"}), 400)
    error(await api.get(f"{ESIM}/8999999999999999999/status"), 404, "esim.not_found")
    error(await api.get(f"{ESIM}/89%00/status"), 400)
    assert await snapshot(saga.runtime) == before


async def test_som_reads_refuse_bad_filters_and_unknown_ids(api):
    error(await api.get(SERVICE_ORDERS, params={"state": "in_progress"}), 400, "state.invalid")
    error(await api.get(SERVICE_ORDERS, params={"externalId": "ORD\x00"}), 400)
    error(await api.get(f"{SERVICE_ORDERS}/SO-999999"), 404, "service_order.not_found")
    error(await api.get(SERVICES, params={"state": "running"}), 400, "state.invalid")
    error(await api.get(SERVICES, params={"serviceType": "XFS"}), 400, "serviceType.invalid")
    error(await api.get(f"{SERVICES}/SVC-999999"), 404, "service.not_found")
    error(await api.get(f"{SERVICES}/{'S' * 65}"), 400)
    assert (await api.get(ORDERS)).json() == []


async def test_with_temporal_down_esim_reads_fall_back_and_signals_answer_503(api, runtime):
    # Without the saga fixture the runtime points at a closed port.
    iccid = "8910101000000000001"
    status = (await api.get(f"{ESIM}/{iccid}/status")).json()
    assert (status["state"], status["source"], status["workflowId"]) == ("available", "inventory", None)
    before = await snapshot(runtime)
    error(
        await api.post(f"{ESIM}/{iccid}/device-event", json={"event": "downloaded"}),
        503,
        "temporal.unavailable",
    )
    assert await snapshot(runtime) == before

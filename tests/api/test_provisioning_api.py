"""Fault-injection administration over HTTP: list, change one rule, set a fault by task type (network
tasks and the card gateway's PAYMENT_CHARGE / PAYMENT_REFUND); bad input is a TMF 400 (or 404) and
changes nothing."""

from __future__ import annotations

import pytest

from domains.provisioning import seed, services
from tests.conftest import token_headers

BASE = "/bss-api/v1/provisioning/fault-injection"


async def rules(runtime) -> dict[str, tuple]:
    async with runtime.db() as s:
        return {
            r.id: (r.task_type, r.fault_type, r.probability, r.enabled)
            for r in await services.list_fault_rules(s)
        }


async def test_list_shows_the_seeded_rules(api):
    r = await api.get(BASE)
    assert r.status_code == 200 and r.headers["X-Total-Count"] == str(len(seed.RULES))
    hlr = next(x for x in r.json() if x["id"] == "FI_HLR_PROV_FAIL")
    assert hlr["taskType"] == "HLR_PROVISION" and hlr["faultType"] == "fail_first_attempt"
    assert hlr["probability"] == 0.3 and hlr["enabled"] is False and hlr["updatedAt"].endswith("Z")


async def test_patch_enables_a_rule_and_names_the_operator(api, runtime):
    r = await api.patch(
        f"{BASE}/FI_PCRF_SLOW",
        json={"enabled": True, "probability": 1},
        headers=await token_headers(runtime, "ops-bob"),
    )
    assert r.status_code == 200
    assert r.json()["enabled"] is True and r.json()["probability"] == 1.0
    assert (await rules(runtime))["FI_PCRF_SLOW"] == ("PCRF_POLICY_PUSH", "slow", 1.0, True)
    from domains.audit.services import events_for

    async with runtime.db() as s:
        events = await events_for(s, "fault_rule", "FI_PCRF_SLOW")
    assert events[-1].actor == "ops-bob"


async def test_post_sets_a_fault_creating_or_updating_its_rule(api, runtime):
    created = await api.post(BASE, json={"taskType": "HLR_PROVISION", "faultType": "fail_always"})
    assert (
        created.status_code == 201 and created.headers["Location"] == f"{BASE}/FI_HLR_PROVISION_FAIL_ALWAYS"
    )
    assert created.json()["enabled"] is True and created.json()["probability"] == 1.0
    updated = await api.post(
        BASE, json={"taskType": "HLR_PROVISION", "faultType": "stuck", "probability": 0.5}
    )
    assert updated.status_code == 200 and updated.json()["id"] == "FI_HLR_PROV_STUCK"
    assert (await rules(runtime))["FI_HLR_PROV_STUCK"] == ("HLR_PROVISION", "stuck", 0.5, True)


async def test_unknown_rule_is_a_tmf_404(api, runtime):
    before = await rules(runtime)
    r = await api.patch(f"{BASE}/FI_NOPE", json={"enabled": True})
    assert r.status_code == 404 and r.json()["reason"] == "provisioning.fault_injection.not_found"
    assert await rules(runtime) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "/FI_OCS_FAIL", {"probability": 1.5}),
        ("patch", "/FI_OCS_FAIL", {"probability": -1}),
        ("patch", "/FI_OCS_FAIL", {"probability": "lots"}),
        ("patch", "/FI_OCS_FAIL", {}),
        ("patch", "/FI_OCS_FAIL", {"enabled": True, "colour": "red"}),
        ("patch", "/FI_OCS_FAIL", {"faultType": "explode"}),
        ("patch", "/" + "X" * 100, {"enabled": True}),
        ("post", "", {"taskType": "SMSC_PUSH", "faultType": "stuck"}),
        ("post", "", {"taskType": "HLR_PROVISION", "faultType": "boom"}),
        ("post", "", {"taskType": "HLR_PROVISION", "faultType": "slow", "probability": 2}),
        ("post", "", {"faultType": "slow"}),
        ("post", "", [1, 2]),
        # Network faults are refused for the card gateway and gateway faults for network tasks.
        ("post", "", {"taskType": "PAYMENT_CHARGE", "faultType": "stuck"}),
        ("post", "", {"taskType": "PAYMENT_REFUND", "faultType": "fail_always"}),
        ("post", "", {"taskType": "HLR_PROVISION", "faultType": "lost_response"}),
        ("post", "", {"taskType": "PAYMENT_CHARGE", "faultType": "explode"}),
        ("patch", "/FI_OCS_FAIL", {"faultType": "unavailable"}),
        ("patch", "/FI_PAYMENT_CHARGE_TIMEOUT", {"faultType": "slow"}),
    ],
)
async def test_bad_input_is_a_tmf_400_and_changes_nothing(api, runtime, method, path, body):
    before = await rules(runtime)
    r = await getattr(api, method)(f"{BASE}{path}", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["@type"] == "Error" and r.json()["status"] == "400"
    assert await rules(runtime) == before


async def test_a_duplicate_fault_type_is_a_policy_violation(api, runtime):
    before = await rules(runtime)
    r = await api.patch(f"{BASE}/FI_HLR_PROV_FAIL", json={"faultType": "stuck"})
    assert r.status_code == 422 and r.json()["reason"] == "provisioning.fault_injection.duplicate"
    assert await rules(runtime) == before


@pytest.mark.parametrize("fault_type", ["decline", "timeout", "unavailable", "lost_response"])
@pytest.mark.parametrize("task_type", ["PAYMENT_CHARGE", "PAYMENT_REFUND"])
async def test_post_sets_a_card_gateway_fault(api, runtime, task_type, fault_type):
    r = await api.post(BASE, json={"taskType": task_type, "faultType": fault_type, "probability": 0.25})
    assert r.status_code in (200, 201), r.text
    body = r.json()
    assert (body["taskType"], body["faultType"], body["probability"], body["enabled"]) == (
        task_type,
        fault_type,
        0.25,
        True,
    )
    assert body["id"] == f"FI_{task_type}_{fault_type}".upper()
    assert (await rules(runtime))[body["id"]] == (task_type, fault_type, 0.25, True)


async def test_a_mismatched_fault_says_which_faults_the_task_takes(api, runtime):
    r = await api.post(BASE, json={"taskType": "PAYMENT_CHARGE", "faultType": "stuck"})
    assert r.status_code == 400
    assert r.json()["reason"] == "provisioning.fault_injection.fault_type_invalid"
    assert (
        "PAYMENT_CHARGE is the card gateway; its faults are decline, timeout, unavailable, lost_response"
        in (r.json()["message"])
    )


async def test_a_payment_fault_set_over_http_reaches_the_card_gateway(api, runtime):
    from decimal import Decimal

    from domains.payment.gateway import GatewayUnavailable
    from domains.payment.mock_gateway import MockGateway
    from simulators.faults import FaultRules

    gateway = MockGateway(runtime.db, faults=FaultRules(runtime.db, ttl=0))
    r = await api.post(BASE, json={"taskType": "PAYMENT_CHARGE", "faultType": "unavailable"})
    assert r.status_code == 200  # the seeded (disabled) rule, now on
    with pytest.raises(GatewayUnavailable):
        await gateway.authorize("tok_ok", Decimal("25.00"), "SGD", "k1")
    r = await api.patch(f"{BASE}/FI_PAYMENT_CHARGE_UNAVAILABLE", json={"enabled": False})
    assert r.status_code == 200
    assert (await gateway.authorize("tok_ok", Decimal("25.00"), "SGD", "k1")).approved

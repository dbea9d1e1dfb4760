"""Fault-injection rules: the reference's six seeded disabled, changed in place or upserted, with
the reference's rule codes and an audit row per change."""

from __future__ import annotations

import pytest

from core.context import RequestContext
from core.db import transaction
from core.errors import InvalidInput, NotFound, PolicyViolation
from domains.audit.services import events_for
from domains.provisioning import seed, services

OPS = RequestContext(actor="ops-alice", channel="cli", service_identity="default")


async def rules(runtime) -> dict[str, tuple]:
    async with runtime.db() as s:
        return {
            r.id: (r.task_type, r.fault_type, r.probability, r.enabled)
            for r in await services.list_fault_rules(s)
        }


async def test_the_reference_rules_are_seeded_disabled_and_reseeding_changes_nothing(runtime):
    seeded = await rules(runtime)
    assert seeded == {i: (t, f, p, False) for i, t, f, p in seed.RULES}
    async with transaction(runtime.db) as s:
        await services.set_fault_rule(s, OPS, "FI_HLR_PROV_FAIL", enabled=True)
    async with transaction(runtime.db) as s:
        await seed.seed(s)
    assert (await rules(runtime))["FI_HLR_PROV_FAIL"][3] is True  # an operator's change survives


async def test_set_fault_rule_changes_one_rule_and_audits_it(runtime):
    async with transaction(runtime.db) as s:
        rule = await services.set_fault_rule(s, OPS, "FI_OCS_FAIL", enabled=True, probability=0.5)
    assert (rule.enabled, rule.probability) == (True, 0.5)
    assert (await rules(runtime))["FI_OCS_FAIL"] == ("OCS_BALANCE_INIT", "fail_first_attempt", 0.5, True)
    async with runtime.db() as s:
        events = await events_for(s, "fault_rule", "FI_OCS_FAIL")
    assert [e.event_type for e in events] == ["provisioning.fault_injection.updated"]
    assert events[0].actor == "ops-alice" and events[0].payload["after"]["enabled"] is True


@pytest.mark.parametrize(
    ("rule_id", "kwargs", "error", "code"),
    [
        ("FI_NOPE", {"enabled": True}, NotFound, "provisioning.fault_injection.not_found"),
        ("FI_OCS_FAIL", {"probability": 1.5}, InvalidInput, "provisioning.fault_injection.probability_range"),
        (
            "FI_OCS_FAIL",
            {"probability": -0.1},
            InvalidInput,
            "provisioning.fault_injection.probability_range",
        ),
        (
            "FI_OCS_FAIL",
            {"probability": float("nan")},
            InvalidInput,
            "provisioning.fault_injection.probability_range",
        ),
        (
            "FI_OCS_FAIL",
            {"fault_type": "explode"},
            InvalidInput,
            "provisioning.fault_injection.fault_type_invalid",
        ),
        (
            "FI_HLR_PROV_FAIL",
            {"fault_type": "stuck"},
            PolicyViolation,
            "provisioning.fault_injection.duplicate",
        ),
    ],
)
async def test_set_fault_rule_refuses_bad_changes(runtime, rule_id, kwargs, error, code):
    before = await rules(runtime)
    with pytest.raises(error) as err:
        async with transaction(runtime.db) as s:
            await services.set_fault_rule(s, OPS, rule_id, **kwargs)
    assert err.value.code == code
    assert await rules(runtime) == before


async def test_set_fault_updates_the_existing_rule_or_creates_one(runtime):
    async with transaction(runtime.db) as s:
        updated = await services.set_fault(s, OPS, task_type="HLR_PROVISION", fault_type="stuck")
        created = await services.set_fault(
            s, OPS, task_type="HLR_PROVISION", fault_type="fail_always", probability=0.25
        )
    assert updated.id == "FI_HLR_PROV_STUCK" and (updated.probability, updated.enabled) == (1.0, True)
    assert created.id == "FI_HLR_PROVISION_FAIL_ALWAYS"
    after = await rules(runtime)
    assert len(after) == len(seed.RULES) + 1
    assert after[created.id] == ("HLR_PROVISION", "fail_always", 0.25, True)
    async with transaction(runtime.db) as s:
        again = await services.set_fault(
            s, OPS, task_type="HLR_PROVISION", fault_type="fail_always", enabled=False
        )
    assert again.id == created.id and again.enabled is False
    assert len(await rules(runtime)) == len(seed.RULES) + 1


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"task_type": "SMSC_PUSH", "fault_type": "stuck"}, "provisioning.fault_injection.task_type_invalid"),
        (
            {"task_type": "HLR_PROVISION", "fault_type": "boom"},
            "provisioning.fault_injection.fault_type_invalid",
        ),
        (
            {"task_type": "HLR_PROVISION", "fault_type": "slow", "probability": 2},
            "provisioning.fault_injection.probability_range",
        ),
    ],
)
async def test_set_fault_refuses_unknown_tasks_faults_and_probabilities(runtime, kwargs, code):
    before = await rules(runtime)
    with pytest.raises(InvalidInput) as err:
        async with transaction(runtime.db) as s:
            await services.set_fault(s, OPS, **kwargs)
    assert err.value.code == code
    assert await rules(runtime) == before


@pytest.mark.parametrize(
    ("task_type", "fault_type"),
    [
        ("PAYMENT_CHARGE", "stuck"),
        ("PAYMENT_REFUND", "fail_first_attempt"),
        ("HLR_PROVISION", "unavailable"),
        ("ESIM_PROFILE_PREPARE", "lost_response"),
    ],
)
async def test_network_faults_are_for_network_tasks_and_gateway_faults_for_the_gateway(
    runtime, task_type, fault_type
):
    before = await rules(runtime)
    with pytest.raises(InvalidInput) as err:
        async with transaction(runtime.db) as s:
            await services.set_fault(s, OPS, task_type=task_type, fault_type=fault_type)
    assert err.value.code == "provisioning.fault_injection.fault_type_invalid"
    assert task_type in err.value.message and fault_type in err.value.message
    with pytest.raises(InvalidInput):
        async with transaction(runtime.db) as s:
            await services.set_fault_rule(
                s,
                OPS,
                "FI_PAYMENT_CHARGE_TIMEOUT" if task_type.startswith("PAYMENT") else "FI_OCS_FAIL",
                fault_type="stuck" if task_type.startswith("PAYMENT") else "unavailable",
            )
    assert await rules(runtime) == before


async def test_card_gateway_faults_are_seeded_disabled_and_set_by_task_type(runtime):
    seeded = await rules(runtime)
    assert seeded["FI_PAYMENT_CHARGE_UNAVAILABLE"] == ("PAYMENT_CHARGE", "unavailable", 0.10, False)
    async with transaction(runtime.db) as s:
        rule = await services.set_fault(s, OPS, task_type="PAYMENT_CHARGE", fault_type="unavailable")
        refund = await services.set_fault(
            s, OPS, task_type="PAYMENT_REFUND", fault_type="lost_response", probability=0.5
        )
    assert rule.id == "FI_PAYMENT_CHARGE_UNAVAILABLE" and (rule.probability, rule.enabled) == (1.0, True)
    assert (await rules(runtime))[refund.id] == ("PAYMENT_REFUND", "lost_response", 0.5, True)

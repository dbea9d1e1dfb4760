"""The network's undo and barring: each call under its own task type and fault rules (settable
through the fault-injection API like any other), idempotent, and recorded by the element."""

from __future__ import annotations

import random

import pytest

from simulators.base import PermanentNetworkError
from simulators.faults import Fault, FaultRules, FixedFaults
from simulators.network import SimulatedHlr, SimulatedOcs, SimulatedPcrf

BASE = "/bss-api/v1/provisioning/fault-injection"
MSISDN = "90000001"


def element(cls, *faults: Fault):
    return cls(FixedFaults(*faults), latency_factor=0.0, rng=random.Random(1))


async def test_each_provisioning_step_has_an_idempotent_undo():
    hlr, pcrf, ocs = element(SimulatedHlr), element(SimulatedPcrf), element(SimulatedOcs)
    await hlr.provision_subscriber(MSISDN, "525010000000001", attempt=1)
    await pcrf.push_policy(MSISDN, "PLAN_S", attempt=1)
    await ocs.init_balance(MSISDN, "SO-1", {"data": 1}, attempt=1)
    for _ in range(2):  # a repeated undo (a retried compensation) is harmless
        await ocs.remove_balance(MSISDN, attempt=1)
        await pcrf.remove_policy(MSISDN, attempt=1)
        await hlr.deprovision_subscriber(MSISDN, attempt=1)
    assert MSISDN not in hlr.subscribers and MSISDN not in pcrf.policies
    assert MSISDN not in ocs.lines and "SO-1" not in ocs.balances


async def test_the_pcrf_records_barring_and_obeys_its_fault_rules():
    pcrf = element(SimulatedPcrf)
    await pcrf.bar(MSISDN)
    assert MSISDN in pcrf.barred
    await pcrf.unbar(MSISDN)
    assert MSISDN not in pcrf.barred
    refusing = element(SimulatedPcrf, Fault("F", "PCRF_BAR", "fail_always", 1.0))
    with pytest.raises(PermanentNetworkError):
        await refusing.bar(MSISDN)
    assert MSISDN not in refusing.barred
    await refusing.unbar(MSISDN)  # another task type: unaffected


@pytest.mark.parametrize("task_type", ["PCRF_POLICY_REMOVE", "OCS_BALANCE_REMOVE", "PCRF_BAR", "PCRF_UNBAR"])
async def test_undo_and_barring_faults_are_set_through_the_api(api, runtime, task_type):
    created = await api.post(BASE, json={"taskType": task_type, "faultType": "fail_always"})
    assert created.status_code == 201, created.text
    faults = await FaultRules(runtime.db).for_task(task_type)
    assert [f.fault_type for f in faults] == ["fail_always"]

"""The simulated network elements: latency per task scaled by the latency factor, the four fault
types read from `provisioning.fault_rule`, the one-second rule cache, and the SM-DP+ ES2+ flow."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from core.context import RequestContext
from core.db import transaction
from domains.provisioning import services as provisioning
from simulators.base import PermanentNetworkError, TransientNetworkError
from simulators.faults import Fault, FaultRules, FixedFaults
from simulators.network import SimulatedHlr, SimulatedOcs, SimulatedPcrf, simulated_network
from simulators.smdp import SimulatedSmdpPlus

OPS = RequestContext(actor="ops-alice", channel="cli", service_identity="default")
MSISDN, IMSI, ICCID = "90000001", "525010000000001", "8910101000000000001"


async def enable(runtime, task_type: str, fault_type: str, probability: float = 1.0) -> None:
    async with transaction(runtime.db) as s:
        await provisioning.set_fault(
            s, OPS, task_type=task_type, fault_type=fault_type, probability=probability
        )


async def timed(coro) -> float:
    started = time.monotonic()
    await coro
    return time.monotonic() - started


async def test_latency_factor_zero_is_instant(runtime, settings):
    assert settings.sim_latency_factor == 0
    net = simulated_network(settings, runtime.db)
    started = time.monotonic()
    await net.hlr.provision_subscriber(MSISDN, IMSI, attempt=1)
    await net.pcrf.push_policy(MSISDN, "PLAN_M", attempt=1)
    await net.ocs.init_balance(MSISDN, "SO-000001", {"data": 30_720}, attempt=1)
    await net.smdp.download_order(ICCID, attempt=1)
    await net.hlr.deprovision_subscriber(MSISDN, attempt=1)
    assert time.monotonic() - started < 0.3  # one fault-rule read from Postgres, no simulated waits
    assert net.pcrf.policies == {MSISDN: "PLAN_M"}
    assert net.ocs.balances == {"SO-000001": {"data": 30_720}}
    assert net.hlr.subscribers == {}


async def test_each_task_takes_its_duration_times_the_factor():
    hlr = SimulatedHlr(FixedFaults(), latency_factor=0.1)
    ocs = SimulatedOcs(FixedFaults(), latency_factor=0.1)
    assert await timed(hlr.provision_subscriber(MSISDN, IMSI, attempt=1)) >= 0.05  # 0.5 s x 0.1
    assert await timed(ocs.init_balance(MSISDN, "SO-1", {}, attempt=1)) >= 0.02  # 0.2 s x 0.1


async def test_fail_first_attempt_fails_attempt_one_and_passes_attempt_two(runtime, settings):
    await enable(runtime, "HLR_PROVISION", "fail_first_attempt")
    net = simulated_network(settings, runtime.db)
    with pytest.raises(TransientNetworkError):
        await net.hlr.provision_subscriber(MSISDN, IMSI, attempt=1)
    assert net.hlr.subscribers == {}
    await net.hlr.provision_subscriber(MSISDN, IMSI, attempt=2)
    assert net.hlr.subscribers == {MSISDN: IMSI}


async def test_fail_always_fails_every_attempt(runtime, settings):
    await enable(runtime, "OCS_BALANCE_INIT", "fail_always")
    net = simulated_network(settings, runtime.db)
    for attempt in (1, 2, 3, 10):
        with pytest.raises(PermanentNetworkError):
            await net.ocs.init_balance(MSISDN, "SO-000001", {"data": 1}, attempt=attempt)
    assert net.ocs.balances == {}
    # Other elements are not affected by a rule on the OCS.
    await net.hlr.provision_subscriber(MSISDN, IMSI, attempt=1)


async def test_slow_multiplies_the_latency_by_two_to_five(runtime, settings):
    await enable(runtime, "PCRF_POLICY_PUSH", "slow")
    faults = FaultRules(runtime.db)
    fast = SimulatedPcrf(FixedFaults(), latency_factor=0.2)
    slow = SimulatedPcrf(faults, latency_factor=0.2)
    nominal = 0.3 * 0.2
    assert await timed(fast.push_policy(MSISDN, "PLAN_S", attempt=1)) >= nominal
    await faults.for_task("PCRF_POLICY_PUSH")  # warm the cache so the timing is the network's
    elapsed = await timed(slow.push_policy(MSISDN, "PLAN_S", attempt=1))
    assert elapsed >= 2 * nominal
    assert slow.policies == {MSISDN: "PLAN_S"}


async def test_stuck_never_answers(runtime, settings):
    await enable(runtime, "HLR_PROVISION", "stuck")
    net = simulated_network(settings, runtime.db)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(net.hlr.provision_subscriber(MSISDN, IMSI, attempt=1), 0.3)
    assert net.hlr.subscribers == {}


async def test_disabled_rules_and_probability_zero_never_fire(runtime, settings):
    # The seeded rules are all disabled; an enabled rule at probability 0 never fires either.
    await enable(runtime, "HLR_PROVISION", "fail_always", probability=0.0)
    net = simulated_network(settings, runtime.db)
    for attempt in range(1, 20):
        await net.hlr.provision_subscriber(MSISDN, IMSI, attempt=attempt)
        await net.smdp.download_order(ICCID, attempt=attempt)


async def test_probability_is_a_chance_per_call():
    hlr = SimulatedHlr(
        FixedFaults(Fault("F1", "HLR_PROVISION", "fail_always", 0.5)), latency_factor=0, rng=random.Random(7)
    )
    outcomes = []
    for _ in range(200):
        try:
            await hlr.provision_subscriber(MSISDN, IMSI, attempt=1)
            outcomes.append(True)
        except PermanentNetworkError:
            outcomes.append(False)
    assert 60 < outcomes.count(False) < 140


async def test_a_rule_change_is_seen_only_after_the_cache_ttl(runtime):
    now = [100.0]
    rules = FaultRules(runtime.db, ttl=1.0, monotonic=lambda: now[0])
    hlr = SimulatedHlr(rules, latency_factor=0)
    await hlr.provision_subscriber(MSISDN, IMSI, attempt=1)  # loads the (disabled) rules
    await enable(runtime, "HLR_PROVISION", "fail_always")
    now[0] += 0.5
    await hlr.provision_subscriber(MSISDN, IMSI, attempt=1)  # still the cached view
    now[0] += 0.6
    with pytest.raises(PermanentNetworkError):
        await hlr.provision_subscriber(MSISDN, IMSI, attempt=1)


async def test_a_rule_change_reaches_a_running_simulator_within_a_second(runtime, settings):
    net = simulated_network(settings, runtime.db)
    await net.pcrf.push_policy(MSISDN, "PLAN_M", attempt=1)
    async with transaction(runtime.db) as s:
        await provisioning.set_fault(s, OPS, task_type="PCRF_POLICY_PUSH", fault_type="fail_always")
    await asyncio.sleep(1.05)
    with pytest.raises(PermanentNetworkError):
        await net.pcrf.push_policy(MSISDN, "PLAN_M", attempt=1)


async def test_smdp_es2_flow_issues_the_activation_code_and_notifies_the_device_steps():
    heard: list[tuple[str, str]] = []

    async def notify(iccid: str, event: str) -> None:
        heard.append((iccid, event))

    smdp = SimulatedSmdpPlus(FixedFaults(), host="smdp.test", latency_factor=0, on_notification=notify)
    await smdp.download_order(ICCID, attempt=1)
    code = await smdp.confirm_order(ICCID, "MATCH-1", attempt=1)
    assert code == "LPA:1$smdp.test$MATCH-1"
    # Retried calls of the same task answer the same (an activity retry is harmless).
    await smdp.download_order(ICCID, attempt=2)
    assert await smdp.confirm_order(ICCID, "MATCH-1", attempt=2) == code
    await smdp.release_profile(ICCID, attempt=1)
    await smdp.release_profile(ICCID, attempt=2)
    assert smdp.state_of(ICCID) == "released"
    await smdp.device_download(ICCID)
    await smdp.device_install(ICCID)
    assert heard == [(ICCID, "downloaded"), (ICCID, "installed")]
    with pytest.raises(PermanentNetworkError):
        await smdp.confirm_order(ICCID, "MATCH-2", attempt=1)


async def test_smdp_generates_a_matching_id_and_refuses_unknown_orders():
    smdp = SimulatedSmdpPlus(FixedFaults(), host="smdp.test", latency_factor=0)
    with pytest.raises(PermanentNetworkError):
        await smdp.confirm_order(ICCID, "", attempt=1)
    with pytest.raises(PermanentNetworkError):
        await smdp.device_install(ICCID)
    await smdp.download_order(ICCID, attempt=1)
    with pytest.raises(PermanentNetworkError):
        await smdp.release_profile(ICCID, attempt=1)  # not confirmed yet
    code = await smdp.confirm_order(ICCID, "", attempt=1)
    assert code.startswith("LPA:1$smdp.test$") and len(code.rsplit("$", 1)[1]) > 8
    await smdp.cancel_order(ICCID, attempt=1)
    await smdp.cancel_order(ICCID, attempt=2)
    assert smdp.state_of(ICCID) is None


async def test_esim_faults_apply_once_per_task_in_the_download_order(runtime, settings):
    await enable(runtime, "ESIM_PROFILE_PREPARE", "fail_first_attempt")
    net = simulated_network(settings, runtime.db)
    with pytest.raises(TransientNetworkError):
        await net.smdp.download_order(ICCID, attempt=1)
    await net.smdp.download_order(ICCID, attempt=2)
    assert (await net.smdp.confirm_order(ICCID, "M1", attempt=1)).endswith("$M1")

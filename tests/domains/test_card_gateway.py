"""The mock card acquirer against the real Postgres: its ledger in its own schema (idempotent across
instances, i.e. worker restarts and several workers), the reference's decline rules, its run-time
faults (decline, timeout, unavailable, lost_response) and the ledger queries tests count with."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from activities.registry import build_gateway
from core.context import RequestContext
from core.db import transaction
from domains.payment.gateway import GatewayResponseLost, GatewayTimeout, GatewayUnavailable
from domains.payment.mock_gateway import (
    MockGateway,
    authorizations_for,
    live_authorizations_for,
    refunds_for,
)
from domains.provisioning import services as provisioning
from simulators.faults import Fault, FaultRules, FixedFaults

OPS = RequestContext(actor="ops-alice", channel="cli", service_identity="default")
AMOUNT = Decimal("25.00")


def faulty(runtime, task_type: str, fault_type: str, **kwargs) -> MockGateway:
    faults = FixedFaults(Fault("FI_TEST", task_type, fault_type, 1.0))
    return MockGateway(runtime.db, faults=faults, **kwargs)


async def ledger(runtime, prefix: str = "k"):
    async with runtime.db() as s:
        return (
            await authorizations_for(s, prefix),
            await live_authorizations_for(s, prefix),
            await refunds_for(s, prefix),
        )


async def test_the_ledger_is_idempotent_across_gateway_instances(runtime):
    # Ten "workers" (instances sharing nothing but Postgres) send the same key at once.
    gateways = [MockGateway(runtime.db, latency=0.02) for _ in range(10)]
    results = await asyncio.gather(*(g.authorize("tok_ok", AMOUNT, "SGD", "k1") for g in gateways))
    assert len({r.gateway_ref for r in results}) == 1 and all(r.approved for r in results)
    assert sum(g.authorizations for g in gateways) == 1
    # A "restarted worker" (a fresh instance) answers the key from the ledger.
    again = await MockGateway(runtime.db).authorize("tok_ok", AMOUNT, "SGD", "k1")
    assert again == results[0]
    auths, live, _ = await ledger(runtime)
    assert [a.idempotency_key for a in auths] == ["k1"] and len(live) == 1
    assert (auths[0].amount, auths[0].currency, auths[0].token) == (AMOUNT, "SGD", "tok_ok")


@pytest.mark.parametrize("token", ["tok_DECLINE_abc", "4000000000000002", "tok_fail_x"])
async def test_the_reference_test_cards_are_declined_and_the_decline_is_recorded(runtime, token):
    gateway = MockGateway(runtime.db)
    result = await gateway.authorize(token, AMOUNT, "SGD", "k1")
    assert not result.approved and result.decline_code == "card_declined"
    auths, live, _ = await ledger(runtime)
    assert len(auths) == 1 and not auths[0].approved and live == []


async def test_unavailable_raises_at_once_and_records_nothing(runtime):
    with pytest.raises(GatewayUnavailable) as err:
        await faulty(runtime, "PAYMENT_CHARGE", "unavailable").authorize("tok_ok", AMOUNT, "SGD", "k1")
    assert err.value.code == "payment.gateway_unavailable" and not err.value.outcome_unknown
    assert (await ledger(runtime))[0] == []


async def test_timeout_hangs_past_the_gateway_timeout_then_raises(runtime):
    gateway = faulty(runtime, "PAYMENT_CHARGE", "timeout", timeout=0.05)
    with pytest.raises(GatewayTimeout) as err:
        await gateway.authorize("tok_ok", AMOUNT, "SGD", "k1")
    assert err.value.code == "payment.gateway_timeout" and err.value.outcome_unknown
    assert (await ledger(runtime))[0] == []


async def test_lost_response_records_the_charge_and_a_retry_is_answered_from_the_ledger(runtime):
    with pytest.raises(GatewayResponseLost) as err:
        await faulty(runtime, "PAYMENT_CHARGE", "lost_response").authorize("tok_ok", AMOUNT, "SGD", "k1")
    assert err.value.code == "payment.gateway_response_lost" and err.value.outcome_unknown
    auths, live, _ = await ledger(runtime)
    assert len(auths) == 1 and len(live) == 1
    gateway = MockGateway(runtime.db)
    found = await gateway.find_authorization("k1")
    assert found is not None and found.approved and found.amount == AMOUNT and not found.refunded
    assert (await gateway.authorize("tok_ok", AMOUNT, "SGD", "k1")).gateway_ref == auths[0].id
    assert gateway.authorizations == 0 and len((await ledger(runtime))[0]) == 1


async def test_a_decline_fault_declines_a_good_card(runtime):
    result = await faulty(runtime, "PAYMENT_CHARGE", "decline").authorize("tok_ok", AMOUNT, "SGD", "k1")
    assert not result.approved and result.decline_code == "card_declined"
    # A replay of the key gives the same answer once the fault is off, as at a real gateway.
    assert not (await MockGateway(runtime.db).authorize("tok_ok", AMOUNT, "SGD", "k1")).approved


async def test_refunds_are_once_per_key_and_per_authorisation(runtime):
    gateway = MockGateway(runtime.db)
    auth = await gateway.authorize("tok_ok", AMOUNT, "SGD", "k1")
    first, again = await asyncio.gather(
        gateway.refund(auth.gateway_ref, AMOUNT, "k1:refund"),
        MockGateway(runtime.db).refund(auth.gateway_ref, AMOUNT, "k1:refund"),
    )
    assert first == again and first.approved and first.gateway_ref.startswith("re_")
    other = await gateway.refund(auth.gateway_ref, AMOUNT, "k1:another-refund")
    assert not other.approved and other.decline_code == "already_refunded"
    unknown = await gateway.refund("pi_nope", AMOUNT, "k2:refund")
    assert not unknown.approved and unknown.decline_code == "no_such_charge"
    auths, live, refunds = await ledger(runtime)
    assert len(auths) == 1 and live == [] and [r.idempotency_key for r in refunds] == ["k1:refund"]
    assert (await gateway.find_authorization("k1")).refunded


@pytest.mark.parametrize(
    ("fault_type", "error"),
    [("unavailable", GatewayUnavailable), ("lost_response", GatewayResponseLost)],
)
async def test_refund_faults(runtime, fault_type, error):
    auth = await MockGateway(runtime.db).authorize("tok_ok", AMOUNT, "SGD", "k1")
    with pytest.raises(error):
        await faulty(runtime, "PAYMENT_REFUND", fault_type).refund(auth.gateway_ref, AMOUNT, "k1:refund")
    _, live, refunds = await ledger(runtime)
    # lost_response: refunded at the gateway, the answer lost; unavailable: nothing happened.
    assert len(refunds) == (1 if fault_type == "lost_response" else 0)
    assert len(live) == (0 if fault_type == "lost_response" else 1)


async def test_a_refund_decline_fault_refuses_without_recording(runtime):
    auth = await MockGateway(runtime.db).authorize("tok_ok", AMOUNT, "SGD", "k1")
    refused = await faulty(runtime, "PAYMENT_REFUND", "decline").refund(auth.gateway_ref, AMOUNT, "k1:refund")
    assert not refused.approved and refused.decline_code == "refund_declined"
    assert (await MockGateway(runtime.db).refund(auth.gateway_ref, AMOUNT, "k1:refund")).approved


async def test_faults_are_switched_at_run_time_through_the_fault_rules(runtime):
    rules = FaultRules(runtime.db, ttl=0)
    gateway = MockGateway(runtime.db, faults=rules)
    assert (await gateway.authorize("tok_ok", AMOUNT, "SGD", "k1")).approved
    async with transaction(runtime.db) as s:
        await provisioning.set_fault(s, OPS, task_type="PAYMENT_CHARGE", fault_type="unavailable")
    with pytest.raises(GatewayUnavailable):
        await gateway.authorize("tok_ok", AMOUNT, "SGD", "k2")
    async with transaction(runtime.db) as s:
        await provisioning.set_fault(
            s, OPS, task_type="PAYMENT_CHARGE", fault_type="unavailable", enabled=False
        )
    assert (await gateway.authorize("tok_ok", AMOUNT, "SGD", "k2")).approved


async def test_the_key_prefix_is_literal(runtime):
    gateway = MockGateway(runtime.db)
    for key in ("order-ORD-1/activation", "order-ORD-10/activation", "order_ORD-1/x"):
        await gateway.authorize("tok_ok", AMOUNT, "SGD", key)
    async with runtime.db() as s:
        assert [a.idempotency_key for a in await authorizations_for(s, "order-ORD-1/")] == [
            "order-ORD-1/activation"
        ]
        assert len(await authorizations_for(s, "order_")) == 1


async def test_the_provider_setting_chooses_the_gateway_and_refuses_an_unknown_one(settings, runtime):
    gateway = build_gateway(settings)
    assert isinstance(gateway, MockGateway) and gateway.timeout == settings.payment_timeout_seconds
    assert (await gateway.authorize("tok_ok", AMOUNT, "SGD", "k1")).approved
    assert len((await ledger(runtime))[0]) == 1
    with pytest.raises(RuntimeError, match="BSS_PAYMENT_PROVIDER='stripe' is not a payment provider"):
        build_gateway(settings.model_copy(update={"payment_provider": "stripe"}))

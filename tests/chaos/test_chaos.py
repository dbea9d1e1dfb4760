"""The chaos suite, small: bench/chaos.py against a real stack of its own (a handful of signups, the
worker SIGKILLed every few seconds, Temporal and Postgres each killed alone once, a payment outage
over a +30 d renewal, every process killed at once and the stack started again on the same data),
then bench/chaos_invariants.py. `make chaos` is the full run (200 signups).

The checker itself is tested first on hand-made states, so a green chaos run means the invariants
held, not that the checker saw nothing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.chaos_invariants import Report, evaluate

NOW = datetime(2027, 1, 1, tzinfo=UTC)


def _state(**changes: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """A consistent world: one completed order with its line, charged once, renewed once."""
    world = {
        "orders": [{"id": "ORD-000001", "state": "completed", "failure_reason": None}],
        "lines": [
            {
                "id": "SUB-000001",
                "order_id": "ORD-000001",
                "state": "active",
                "state_reason": None,
                "msisdn": "90000001",
                "iccid": "8965000000000000001",
                "current_period_end": NOW + timedelta(days=20),
            }
        ],
        "payments": [
            {
                "id": "PAY-1",
                "idempotency_key": "order-ORD-000001/activation",
                "purpose": "activation",
                "status": "approved",
                "amount": 10,
            },
            {
                "id": "PAY-2",
                "idempotency_key": "subscription-SUB-000001/renewal/2026-12-21T00:00:00+00:00",
                "purpose": "renewal",
                "status": "approved",
                "amount": 10,
            },
        ],
        "renewals": [
            {
                "subscription_id": "SUB-000001",
                "status": "renewed",
                "idempotency_key": "subscription-SUB-000001/renewal/2026-12-21T00:00:00+00:00",
                "due_at": NOW - timedelta(days=10),
            }
        ],
        "numbers": [
            {
                "msisdn": "90000001",
                "status": "assigned",
                "reserved_for": None,
                "assigned_to_subscription_id": "SUB-000001",
            }
        ],
        "esims": [
            {
                "iccid": "8965000000000000001",
                "profile_state": "prepared",
                "reserved_for": None,
                "assigned_to_subscription_id": "SUB-000001",
            }
        ],
    }
    world.update(changes)
    return world


GATEWAY = {
    "all": [
        ("order-ORD-000001/activation", True),
        ("subscription-SUB-000001/renewal/2026-12-21T00:00:00+00:00", True),
    ],
    "live": ["order-ORD-000001/activation", "subscription-SUB-000001/renewal/2026-12-21T00:00:00+00:00"],
}
WORKFLOWS = {"running_subscriptions": ["subscription-SUB-000001"], "running_other": [], "ended_badly": []}


def _kinds(db, gateway=GATEWAY, workflows=WORKFLOWS) -> set[str]:
    report = Report()
    evaluate(report, db, gateway, workflows, NOW)
    return set(report.violations)


def test_the_checker_passes_a_consistent_world():
    assert _kinds(_state()) == set()


def test_the_checker_sees_each_kind_of_loss():
    world = _state()
    assert _kinds(_state(orders=[{"id": "ORD-000001", "state": "in_progress", "failure_reason": None}])) == {
        "order_not_terminal"
    }
    # A failed order that kept its money and its line.
    failed = _state(orders=[{"id": "ORD-000001", "state": "failed", "failure_reason": "x"}])
    assert {"failed_order_kept_money", "failed_order_gateway", "failed_order_line"} <= _kinds(failed)
    # The gateway charged the activation twice under different keys, or a renewal period twice.
    twice = {**GATEWAY, "live": [*GATEWAY["live"], "order-ORD-000001/activation-retry"]}
    assert "completed_order_gateway" in _kinds(world, gateway=twice)
    double = {**GATEWAY, "live": [*GATEWAY["live"], "subscription-SUB-000001/renewal/2026-12-21T00:00:00Z"]}
    assert {"renewal_charged_twice_gateway", "renewal_charged_not_renewed"} <= _kinds(world, gateway=double)
    # A line left on a period that ended.
    overdue = [{**world["lines"][0], "current_period_end": NOW - timedelta(hours=1)}]
    assert _kinds(_state(lines=overdue)) == {"renewal_missing"}
    # Inventory leaks.
    leak = [
        *world["numbers"],
        {
            "msisdn": "90000002",
            "status": "reserved",
            "reserved_for": "SO-9",
            "assigned_to_subscription_id": None,
        },
    ]
    assert _kinds(_state(numbers=leak)) == {"number_left_reserved"}
    esim = [
        *world["esims"],
        {
            "iccid": "8965000000000000002",
            "profile_state": "reserved",
            "reserved_for": "SO-9",
            "assigned_to_subscription_id": None,
        },
    ]
    assert _kinds(_state(esims=esim)) == {"esim_held_without_line"}
    assert _kinds(_state(numbers=[])) == {"line_number_not_assigned"}
    # Temporal: a line without its workflow, two workflows, a failed workflow.
    assert _kinds(world, workflows={**WORKFLOWS, "running_subscriptions": []}) == {"line_workflows"}
    assert _kinds(
        world,
        workflows={
            **WORKFLOWS,
            "running_subscriptions": ["subscription-SUB-000009", *WORKFLOWS["running_subscriptions"]],
        },
    ) == {"workflow_without_line"}
    assert _kinds(
        world, workflows={**WORKFLOWS, "ended_badly": ["ProductOrderWorkflow:order-ORD-000002:FAILED"]}
    ) == {"workflow_failed"}


# --------------------------------------------------------------------------- the run itself

# Violation kinds the small run checks, grouped by the invariant of issue 8 they belong to.
INVARIANTS = {
    "every order is terminal": ["order_not_terminal", "not_quiescent"],
    "a completed order has one live authorisation and one active line": [
        "completed_order_payment",
        "completed_order_gateway",
        "completed_order_line",
    ],
    "a failed order keeps no money and no line": [
        "failed_order_kept_money",
        "failed_order_gateway",
        "failed_order_line",
    ],
    "each renewal is charged once per period": [
        "renewal_charged_twice",
        "renewal_charged_twice_gateway",
        "renewal_recorded_twice",
        "renewal_without_charge",
        "renewal_charged_not_renewed",
        "renewal_missing",
        "unexplained_authorisation",
    ],
    "no number or eSIM is left reserved; assigned numbers equal live lines": [
        "number_left_reserved",
        "number_assigned_without_line",
        "line_number_not_assigned",
        "esim_held_without_line",
    ],
    "every live line has exactly one running SubscriptionWorkflow": [
        "line_workflows",
        "workflow_without_line",
    ],
    "no workflow of ours ended Failed": ["workflow_failed"],
    "no request is answered 500": ["api_500"],
}

# Invariants that others' unfinished work of issue 8 still breaks: {name: reason}. Each entry names
# what is missing; remove it when that lands.
KNOWN_OPEN: dict[str, str] = {}


@pytest.fixture(scope="module")
def chaos() -> dict[str, Any]:
    from bench.chaos import ChaosConfig, run_chaos

    cfg = ChaosConfig(
        signups=12,
        concurrency=6,
        worker_kill_every=(3.0, 6.0),
        worker_kills_max=4,
        outage_seconds=12,
        settle_timeout=240,
        quiesce_timeout=300,
        api_retry_for=240,
        results=None,
    )
    return asyncio.run(run_chaos(cfg))


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_small_chaos_run_did_what_it_says(chaos: dict[str, Any]):
    kills = chaos["kills"]
    assert kills["worker"] >= 3 and kills["temporal_alone"] == 1 and kills["postgres_alone"] == 1
    assert kills["whole_stack"] == 1
    assert chaos["signups"]["posted"] == 12, chaos["signups"]["failed_to_post"]
    assert chaos["invariants"]["counts"]["orders"] == 12
    assert chaos["renewals"]["lines_due"] > 0, "no line was due at the +30 d renewal"


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("invariant", list(INVARIANTS))
def test_the_invariant_holds_after_the_chaos(chaos: dict[str, Any], invariant: str):
    found = chaos["invariants"]["by_kind"]
    broken = {k: found[k] for k in INVARIANTS[invariant] if k in found}
    if broken and invariant in KNOWN_OPEN:
        pytest.skip(f"{KNOWN_OPEN[invariant]} (seen: {broken})")
    # Strict: a failed service order or eSIM flow completes with a `failed` result (no workflow
    # of ours ends Failed, the failed service order's included).
    assert not broken, f"{invariant}: {broken}\nnotes: {chaos['notes']}\nevents: {chaos['events']}"

"""What the workflows share: search attributes (CONTRACT.md) and call options."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

CUSTOMER_ID = SearchAttributeKey.for_keyword("BssCustomerId")
ORDER_ID = SearchAttributeKey.for_keyword("BssOrderId")
SUBSCRIPTION_ID = SearchAttributeKey.for_keyword("BssSubscriptionId")
MSISDN = SearchAttributeKey.for_keyword("BssMsisdn")
STUCK = SearchAttributeKey.for_bool("BssStuck")

# Database steps: short, local to the worker, retried quickly (a restarted Postgres comes back).
DB_STEP = {
    "start_to_close_timeout": timedelta(seconds=15),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=100), maximum_interval=timedelta(seconds=5)
    ),
}

# Calls to outside systems (card gateway): remote activities, bounded retries for transient faults.
EXTERNAL_CALL = {
    # Short, so an attempt lost with a crashed worker is retried within seconds.
    "start_to_close_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=10,
    ),
}

# Undo steps and refunds must happen: transient failures are retried without a cap on attempts
# (backoff capped at two minutes). Only after `patience` of failing (or at once, for an error no
# retry can fix) does the workflow give up on retrying alone and ask an operator (workflows/
# attention.py), then keep waiting for `bss ticket retry|resolve`.
COMPENSATION_PATIENCE_SECONDS = 30 * 60


def compensation_call(patience_seconds: float = COMPENSATION_PATIENCE_SECONDS) -> dict:
    return {
        "start_to_close_timeout": timedelta(seconds=30),
        "schedule_to_close_timeout": timedelta(seconds=patience_seconds),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(minutes=2),
        ),
    }


# Network provisioning: three attempts, as the reference's simulator budget.
PROVISIONING_ATTEMPTS = 3
# Those three attempts are the network element's: an attempt lost with our worker (SIGKILLed or
# hung, so Temporal times it out start-to-close) must not use them up. A task whose attempts keep
# timing out is run again with a fresh budget (patch `provisioning-task-survives-worker-crashes`,
# workflows/provisioning_tasks.py) for this long at least, or 20 attempt timeouts if longer; after
# that something other than a crash is wrong, and the task goes the stuck path (an operator).
PROVISIONING_CRASH_PATIENCE_SECONDS = 30 * 60


def provisioning_crash_patience(deadline_seconds: float) -> float:
    return max(PROVISIONING_CRASH_PATIENCE_SECONDS, 20 * (deadline_seconds + 10))


def provisioning_options(deadline_seconds: float) -> dict:
    return {
        "start_to_close_timeout": timedelta(seconds=deadline_seconds + 10),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(milliseconds=100),
            backoff_coefficient=2.0,
            maximum_attempts=PROVISIONING_ATTEMPTS,
        ),
    }


def attributes(*updates: SearchAttributeUpdate) -> TypedSearchAttributes:
    """Initial search attributes, written with the same `KEY.value_set(v)` as later upserts."""
    return TypedSearchAttributes([SearchAttributePair(u.key, u.value) for u in updates])


async def condition_or_timeout(condition, seconds: float | None) -> bool:
    """`workflow.wait_condition` that answers False when `seconds` pass, instead of raising."""
    from temporalio import workflow

    try:
        await workflow.wait_condition(condition, timeout=seconds)
        return True
    except TimeoutError:
        return False

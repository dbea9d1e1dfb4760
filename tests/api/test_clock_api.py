"""/bss-api/v1/admin/clock: the business clock of a test stack. Off (the default) it can be read
but never moved; on, bad input and an unreachable Temporal change nothing; on a stack with the
dev server, moving the clock renews the lines that fall due and ends their day passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.clock import clock
from tests.api.order_flow import SUBSCRIPTIONS, error, scalar, until
from tests.api.subscription_flow import balance, line, live_line, payments, workflow_ready

CLOCK = "/bss-api/v1/admin/clock"
WRITES = [
    ("freeze", None),
    ("freeze", {"at": "2031-01-01T00:00:00+00:00"}),
    ("advance", {"duration": "30d"}),
    ("unfreeze", None),
]


@pytest.fixture
def test_clock(settings):
    """This test's process as a test stack's API and worker: the clock in <data dir>/clock.json."""
    settings.test_clock = True
    clock.use_file(settings.clock_file)
    yield settings.clock_file
    clock.reset()


async def clock_events(runtime) -> int:
    return await scalar(runtime, "SELECT count(*) FROM audit.domain_event WHERE aggregate_type = 'clock'")


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_off_the_clock_reads_but_every_move_is_refused_and_changes_nothing(api, runtime, settings):
    r = await api.get(CLOCK)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["testClock"] is False and body["frozen"] is False
    assert abs(_at(body["now"]) - datetime.now(UTC)) < timedelta(seconds=5)

    for action, payload in WRITES:
        refused = error(await api.post(f"{CLOCK}/{action}", json=payload), 422, "clock.test_clock_disabled")
        assert "bss up --test-clock" in refused["message"]
    assert not settings.clock_file.exists()
    assert not clock.frozen and abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
    assert await clock_events(runtime) == 0


@pytest.mark.parametrize("duration", ["30", "thirty days", "-1d", "0d", "P1M", "1.5h", "9999d"])
async def test_a_bad_duration_is_400_and_changes_nothing(test_clock, api, runtime, duration):
    body = error(
        await api.post(f"{CLOCK}/advance", json={"duration": duration}), 400, "clock.duration.invalid"
    )
    assert body["message"]
    assert not test_clock.exists() and await clock_events(runtime) == 0


async def test_bad_bodies_are_400_and_a_freeze_in_the_past_is_refused(test_clock, api, runtime):
    error(await api.post(f"{CLOCK}/advance", json={}), 400, "request.invalid")
    error(await api.post(f"{CLOCK}/advance", json={"duration": "1d", "by": "x"}), 400, "request.invalid")
    error(await api.post(f"{CLOCK}/advance", json={"duration": "1d" * 30}), 400, "request.invalid")
    error(await api.post(f"{CLOCK}/freeze", json={"at": "2031-01-01T00:00:00"}), 400, "request.invalid")
    error(
        await api.post(f"{CLOCK}/freeze", json={"at": "2020-01-01T00:00:00+00:00"}),
        422,
        "clock.cannot_move_back",
    )
    assert not test_clock.exists() and await clock_events(runtime) == 0


async def test_temporal_unreachable_is_503_and_the_clock_stays(test_clock, api, runtime):
    # The `settings` fixture points Temporal at a closed port: the lines cannot be told.
    error(await api.post(f"{CLOCK}/advance", json={"duration": "30d"}), 503, "temporal.unavailable")
    assert not test_clock.exists() and await clock_events(runtime) == 0
    r = await api.get(CLOCK)
    assert r.json()["testClock"] is True and abs(r.json()["offsetSeconds"]) < 5


async def test_advance_30d_renews_a_line_at_once(test_clock, saga, api):
    sub_id, cust = await live_line(saga, api)
    before = await line(api, sub_id)

    r = await api.post(f"{CLOCK}/advance", json={"duration": "30d"})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["testClock"] is True and moved["frozen"] is False
    assert moved["workflowsSignalled"] >= 1
    assert abs(moved["offsetSeconds"] - 30 * 86400) < 5
    assert abs(_at(moved["now"]) - datetime.now(UTC) - timedelta(days=30)) < timedelta(seconds=5)

    async def renewals() -> int:
        return await scalar(
            saga.runtime,
            "SELECT count(*) FROM payment.payment WHERE customer_id = :c AND status = 'approved'",
            c=cust,
        )

    assert await until(renewals, lambda n: n >= 2, timeout=15) == 2  # activation + one renewal
    assert await payments(saga.runtime, cust, "renewal") == 1
    # The renewal activity read the moved clock too: it is on record 30 days from now.
    paid_at = await scalar(
        saga.runtime,
        "SELECT attempted_at FROM payment.payment WHERE customer_id = :c AND purpose = 'renewal'",
        c=cust,
    )
    assert abs(paid_at - datetime.now(UTC) - timedelta(days=30)) < timedelta(minutes=1)
    after = await until(
        lambda: line(api, sub_id), lambda v: v["currentPeriodEnd"] != before["currentPeriodEnd"], timeout=10
    )
    assert _at(after["currentPeriodEnd"]) == _at(before["currentPeriodEnd"]) + timedelta(days=30)
    assert after["state"] == "active" and balance(after)["consumed"] == 0
    status = await until(lambda: workflow_ready(saga, sub_id), lambda s: s.periods_renewed == 1, timeout=10)
    assert status.periods_renewed == 1 and _at(status.current_period_end) == _at(after["currentPeriodEnd"])

    audit = await scalar(
        saga.runtime,
        "SELECT payload->>'duration' FROM audit.domain_event WHERE event_type = 'clock.advanced'",
    )
    assert audit == "30d"


async def test_advance_25h_ends_a_day_pass(test_clock, saga, api):
    sub_id, _ = await live_line(saga, api)
    r = await api.post(f"{SUBSCRIPTIONS}/{sub_id}/vas", json={"vasOfferingId": "VAS_UNLIMITED_DAY"})
    assert r.status_code == 200, r.text
    assert r.json()["dayPasses"] and balance(r.json())["total"] == -1

    r = await api.post(f"{CLOCK}/advance", json={"duration": "25h"})
    assert r.status_code == 200, r.text
    assert r.json()["workflowsSignalled"] >= 1

    after = await until(lambda: line(api, sub_id), lambda v: not v["dayPasses"], timeout=15)
    assert not after["dayPasses"]
    assert balance(after)["total"] == 5120 and after["state"] == "active"

"""`bss clock` against the in-process API: refused off a test stack, bad usage is exit 2 before any
request, and on a test stack with the real workflows `advance` renews a line and says how many
lines it told."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from core.clock import clock
from tests.api.order_flow import until
from tests.api.subscription_flow import payments, workflow_ready
from tests.cli.saga_cli import bss_on_saga, run
from tests.cli_harness import Bss, bss_cli
from tests.saga_harness import Saga


@pytest.fixture
def saga_bss(saga: Saga, settings, temporal_dev) -> Iterator[Bss]:
    settings.test_clock = True  # read by the harness app's Runtime, which shares the clock file
    try:
        yield from bss_on_saga(settings, temporal_dev)
    finally:
        clock.reset()


def test_off_a_test_stack_now_answers_and_moves_are_refused(settings):
    with bss_cli(settings) as bss:
        shown = bss("clock", "now")
        assert shown.exit_code == 0, shown.output
        assert "Business clock" in shown.stdout and "off" in shown.stdout
        as_json = json.loads(bss("clock", "now", "--json").stdout)
        assert as_json["testClock"] is False and as_json["frozen"] is False

        for args in (("advance", "30d"), ("freeze",), ("unfreeze",)):
            refused = bss("clock", *args)
            assert refused.exit_code == 1, refused.output
            assert "bss up --test-clock" in refused.stderr and refused.stderr.count("\n") == 1
    assert not settings.clock_file.exists()


def test_bad_usage_is_exit_2_with_one_sentence(settings):
    with bss_cli(settings) as bss:
        for args in (("advance", "30x"), ("advance", "P1M"), ("freeze", "--at", "tomorrow")):
            r = bss("clock", *args)
            assert r.exit_code == 2, r.output
            assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
        r = bss("clock", "freeze", "--at", "2031-01-01T09:00:00")
        assert r.exit_code == 2 and "zone" in r.stderr


async def test_freeze_advance_unfreeze_renews_a_line_and_counts_the_lines_told(saga: Saga, saga_bss: Bss):
    cust = await saga.customer()
    order = await saga.order(cust)
    result = await saga.handle(order.id).result()
    assert result.state == "completed", result.reason
    sub_id = result.subscription_id
    await workflow_ready(saga, sub_id)

    frozen = await run(saga_bss, "clock", "freeze")
    assert frozen.exit_code == 0, frozen.output
    at = json.loads((await run(saga_bss, "clock", "now", "--json")).stdout)
    assert at["frozen"] is True and at["testClock"] is True

    moved = await run(saga_bss, "clock", "advance", "30d")
    assert moved.exit_code == 0, moved.output
    later = json.loads((await run(saga_bss, "clock", "now", "--json")).stdout)
    assert later["frozen"] is True
    assert f"Business time is now {later['now'][:19].replace('T', ' ')} UTC" in moved.stdout
    assert "1 subscription workflow(s) told" in moved.stdout
    assert "30 d ahead of wall-clock time" in moved.stdout

    assert await until(lambda: payments(saga.runtime, cust, "renewal"), lambda n: n >= 1, timeout=15) == 1
    status = await until(lambda: workflow_ready(saga, sub_id), lambda s: s.periods_renewed >= 1, timeout=10)
    assert status.periods_renewed == 1 and status.state == "active"

    running = await run(saga_bss, "clock", "unfreeze", "--json")
    assert running.exit_code == 0, running.output
    body = json.loads(running.stdout)
    assert body["frozen"] is False and body["workflowsSignalled"] == 1
    assert abs(body["offsetSeconds"] - 30 * 86400) < 10

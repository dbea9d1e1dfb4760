"""`bss subscription` and `bss admin catalog migrate-price` against the in-process API with the
real saga and subscription workflows running on the Temporal dev server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from tests.api.order_flow import scalar
from tests.api.subscription_flow import footprint, payments, workflow_ready
from tests.cli.saga_cli import bss_on_saga, run
from tests.cli_harness import Bss, bss_cli
from tests.saga_harness import Saga
from tests.usage_harness import active_line


@pytest.fixture
def saga_bss(saga: Saga, settings, temporal_dev) -> Iterator[Bss]:
    yield from bss_on_saga(settings, temporal_dev)


async def sold_line(saga: Saga, offering_id: str) -> tuple[str, str]:
    """A line sold by the real saga, its workflow answering. -> (SUB id, CUST id)"""
    cust = await saga.customer()
    order = await saga.order(cust, offering_id)
    result = await saga.handle(order.id).result()
    assert result.state == "completed", result.reason
    await workflow_ready(saga, result.subscription_id)
    return result.subscription_id, cust


async def test_show_draws_a_card_with_one_bar_per_allowance_and_list_finds_the_line(
    saga: Saga, saga_bss: Bss
):
    sub_id, cust = await sold_line(saga, "PLAN_M")
    shown = await run(saga_bss, "subscription", "show", sub_id)
    assert shown.exit_code == 0, shown.output
    card = shown.stdout
    line = json.loads((await run(saga_bss, "subscription", "show", sub_id, "--json")).stdout)
    for part in (f"Subscription {sub_id}", "active", line["msisdn"], "PLAN_M at SGD 25.00", "Pending change"):
        assert part in card, card
    assert line["currentPeriodEnd"][:16].replace("T", " ") in card
    assert "30 GB of 30 GB left" in card  # data in GB
    assert "500 MB of 500 MB left" in card  # roaming in MB
    assert card.count("∞ unlimited") == 2  # voice and SMS
    assert "█" in card and "100%" in card

    listed = await run(saga_bss, "subscription", "list", "--customer", cust)
    assert listed.exit_code == 0, listed.output
    assert sub_id in listed.stdout and "PLAN_M" in listed.stdout and "30 GB" in listed.stdout
    as_json = json.loads((await run(saga_bss, "subscription", "list", "--customer", cust, "--json")).stdout)
    assert [x["id"] for x in as_json] == [sub_id]


async def test_vas_renew_and_plan_change_from_the_cli(saga: Saga, saga_bss: Bss):
    sub_id, cust = await sold_line(saga, "PLAN_S")

    topped = await run(saga_bss, "subscription", "vas", sub_id, "VAS_DATA_1GB", "--idempotency-key", "cli-1")
    assert topped.exit_code == 0, topped.output
    assert "VAS_DATA_1GB added" in topped.stdout and "6 GB of 6 GB left" in topped.stdout
    again = await run(
        saga_bss, "subscription", "vas", sub_id, "VAS_DATA_1GB", "--idempotency-key", "cli-1", "--json"
    )
    data = next(b for b in json.loads(again.stdout)["balances"] if b["allowanceType"] == "data")
    assert data["total"] == 6144 and await payments(saga.runtime, cust, "vas") == 1

    renewed = await run(saga_bss, "subscription", "renew", sub_id)
    assert renewed.exit_code == 0, renewed.output
    assert f"{sub_id} renewed until" in renewed.stdout
    assert await payments(saga.runtime, cust, "renewal") == 1

    changed = await run(saga_bss, "subscription", "plan-change", sub_id, "PLAN_M")
    assert changed.exit_code == 0, changed.output
    assert "moves to PLAN_M" in changed.stdout and "→ PLAN_M" in changed.stdout
    same = await run(saga_bss, "subscription", "plan-change", sub_id, "PLAN_S")
    assert same.exit_code == 1 and "subscription.plan_change.same_offering" in same.stderr
    cancelled = await run(saga_bss, "subscription", "cancel-plan-change", sub_id, "--json")
    assert cancelled.exit_code == 0, cancelled.output
    assert json.loads(cancelled.stdout)["pendingChange"] is None


async def test_terminate_needs_yes_then_ends_the_line(saga: Saga, saga_bss: Bss):
    sub_id, cust = await sold_line(saga, "PLAN_S")
    before = await footprint(saga.runtime, sub_id)
    refused = await run(saga_bss, "subscription", "terminate", sub_id)
    assert refused.exit_code == 2
    assert "add --yes" in refused.stderr and refused.stderr.count("\n") == 1
    assert await footprint(saga.runtime, sub_id) == before

    ended = await run(saga_bss, "subscription", "terminate", sub_id, "--reason", "lost phone", "--yes")
    assert ended.exit_code == 0, ended.output
    assert f"{sub_id} terminated" in ended.stdout and "quarantine" in ended.stdout
    state = await scalar(saga.runtime, "SELECT state FROM subscription.subscription WHERE id = :s", s=sub_id)
    assert state == "terminated"

    twice = await run(saga_bss, "subscription", "terminate", sub_id, "--yes")
    assert twice.exit_code == 1 and "subscription.terminate.invalid_state" in twice.stderr
    vas = await run(saga_bss, "subscription", "vas", sub_id, "VAS_DATA_1GB")
    assert vas.exit_code == 1 and "subscription.vas_purchase.not_if_terminated" in vas.stderr
    assert await payments(saga.runtime, cust, "vas") == 0

    unknown = await run(saga_bss, "subscription", "show", "SUB-999999")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("error: ")


def test_admin_migrate_price_reports_the_lines_scheduled(settings):
    sub_ids = [asyncio.run(_line_on_fresh_loop(settings)) for _ in range(2)]
    with bss_cli(settings, actor="ops-carol") as bss:
        price = bss(
            "admin",
            "catalog",
            "add-price",
            "--offering",
            "PLAN_S",
            "--price-id",
            "PRICE_S_NEW",
            "--amount",
            "11.00",
        )
        assert price.exit_code == 0, price.output
        done = bss(
            "admin",
            "catalog",
            "migrate-price",
            "--offering",
            "PLAN_S",
            "--new-price-id",
            "PRICE_S_NEW",
            "--notice-days",
            "40",
        )
        assert done.exit_code == 0, done.output
        assert "2 line(s) of PLAN_S move to PRICE_S_NEW" in done.stdout and "40 days" in done.stdout
        shown = json.loads(bss("subscription", "show", sub_ids[0], "--json").stdout)
        assert shown["pendingPriceMigration"]["priceId"] == "PRICE_S_NEW"
        card = bss("subscription", "show", sub_ids[0]).stdout
        assert "SGD 11.00 from" in card
        bad = bss(
            "admin",
            "catalog",
            "migrate-price",
            "--offering",
            "PLAN_S",
            "--new-price-id",
            "PRICE_PLAN_M",
            "--json",
        )
        assert bad.exit_code == 1 and "price_not_on_offering" in bad.stderr


async def _line_on_fresh_loop(settings) -> str:
    from ops.runtime import Runtime

    rt = Runtime.create(settings, pool_size=1)
    try:
        return (await active_line(rt, "PLAN_S"))[0]
    finally:
        await rt.close()

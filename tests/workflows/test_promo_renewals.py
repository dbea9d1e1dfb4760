"""A line's promotion across its renewals, on the time-skipping server and a real Postgres: a
3-period promotion discounts the activation and the next two renewals, then the line pays full
price; a perpetual one discounts every renewal; a plan change ends the promotion.

BSS_EXPORT_HISTORIES=1 writes SubscriptionWorkflow/promo_renewals.json (patch line-promo-periods)."""

from __future__ import annotations

import os
from decimal import Decimal

from core.context import RequestContext
from core.db import transaction
from tests.domains.test_subscription_lifecycle import payments, sql
from tests.workflows.test_subscription_workflow import Lines
from tests.workflows.test_subscription_workflow import lines as lines  # noqa: F401, F811 - the fixture
from workflows.subscription import SchedulePlanChange, SubscriptionWorkflow

ADMIN = RequestContext(actor="admin-ann", channel="cli")


async def with_promotion(lines: Lines, sub_id: str, customer: str, code: str, **terms) -> None:
    """The line was sold with `code`: the order snapshotted it, its claim was taken and redeemed
    (as the order saga does; tests/workflows/test_promo_claims.py runs that part)."""
    from domains.catalog import promotions
    from domains.ordering import services as ordering

    async with transaction(lines.runtime.db) as s:
        await promotions.create_promotion(s, ADMIN, code=code, name=code, code_kind="multi_use", **terms)
        order = await ordering.create_order(
            s, ADMIN, customer_id=customer, offering_id="PLAN_S", promo_code=code
        )
    async with transaction(lines.runtime.db) as s:
        assert (await promotions.claim_for_order(s, ADMIN, order.id)).state == "claimed"
        await promotions.redeem_for_order(s, ADMIN, order.id, sub_id)


async def renewals(lines: Lines, customer: str) -> list[str]:
    return [
        str(amount)
        for purpose, amount, state in await payments(lines.runtime, customer)
        if purpose == "renewal"
    ]


async def test_twelve_renewals_three_period_and_perpetual_promotions(lines: Lines):
    sub_a, cust_a, line_a = await lines.start("PLAN_S")
    sub_b, cust_b, line_b = await lines.start("PLAN_S")
    await with_promotion(
        lines, sub_a, cust_a, "HALF3", discount_type="percent", discount_value=Decimal(50), periods=3
    )
    await with_promotion(
        lines, sub_b, cust_b, "ALWAYS", discount_type="absolute", discount_value=Decimal("2.50"), periods=None
    )
    for month in range(1, 13):
        await lines.next_period(line_a, month)
        status = await lines.until(line_b, lambda s, m=month: s.periods_renewed >= m)
        assert status.state == "active"
    # the activation was the first discounted period: two discounted renewals, then full price
    assert await renewals(lines, cust_a) == ["5.00", "5.00"] + ["10.00"] * 10
    assert await renewals(lines, cust_b) == ["7.50"] * 12
    rows = await sql(
        lines.runtime,
        "SELECT subscription_id, periods_remaining FROM catalog.promotion_claim ORDER BY subscription_id",
    )
    assert sorted(rows) == sorted([(sub_a, 0), (sub_b, -1)])
    # the line keeps its full snapshot price; the discount lives on the claim
    assert await sql(
        lines.runtime, "SELECT price_amount FROM subscription.subscription WHERE id = :s", s=sub_a
    ) == [(Decimal("10.00"),)]
    await lines.export(line_a, "promo_renewals_in_one_task")


async def test_a_plan_change_ends_the_promotion(lines: Lines):
    sub_id, customer, handle = await lines.start("PLAN_S")
    await with_promotion(
        lines, sub_id, customer, "FOREVER", discount_type="percent", discount_value=Decimal(20), periods=None
    )
    await handle.execute_update(SubscriptionWorkflow.schedule_plan_change, SchedulePlanChange("PLAN_M"))
    status = await lines.next_period(handle, 1)
    assert status.offering_id == "PLAN_M"
    status = await lines.next_period(handle, 2)
    assert await renewals(lines, customer) == ["25.00", "25.00"]  # PLAN_M at full price, from the pivot on
    assert await sql(
        lines.runtime,
        "SELECT periods_remaining FROM catalog.promotion_claim WHERE subscription_id = :s",
        s=sub_id,
    ) == [(0,)]
    ended = await sql(
        lines.runtime,
        "SELECT payload->>'reason' FROM audit.domain_event WHERE event_type = 'promotion.ended' AND aggregate_id = 'FOREVER'",
    )
    assert ended == [("plan_change",)]


async def test_a_free_period_renews_without_a_charge(lines: Lines):
    sub_id, customer, handle = await lines.start("PLAN_S")
    await with_promotion(
        lines, sub_id, customer, "FREE2", discount_type="percent", discount_value=Decimal(100), periods=2
    )
    await lines.next_period(handle, 1)
    status = await lines.next_period(handle, 2)
    assert (status.state, status.periods_renewed) == ("active", 2)
    assert await renewals(lines, customer) == ["10.00"]  # the free renewal charged nothing
    free = await sql(
        lines.runtime,
        "SELECT amount, payment_id FROM subscription.subscription_renewal WHERE subscription_id = :s ORDER BY id",
        s=sub_id,
    )
    assert [(str(a), p is None) for a, p in free] == [("0.00", True), ("10.00", False)]


async def test_a_claim_whose_order_never_says_settles_by_the_order_state(lines: Lines):
    """The order's run was terminated (no revoke signal): the claim looks the order up each day
    and gives the use back once the order is failed."""
    from datetime import timedelta

    from domains.catalog import promotions
    from domains.ordering import services as ordering
    from tests.domains.test_subscription_lifecycle import new_customer
    from workflows.promo_claim import PromoClaimInput, PromoClaimWorkflow, promo_claim_workflow_id

    customer = await new_customer(lines.runtime)
    async with transaction(lines.runtime.db) as s:
        await promotions.create_promotion(
            s,
            ADMIN,
            code="LOST",
            name="Lost",
            discount_type="percent",
            discount_value=Decimal(10),
            periods=1,
            code_kind="multi_use",
            max_uses=1,
        )
        order = await ordering.create_order(
            s, ADMIN, customer_id=customer, offering_id="PLAN_S", promo_code="LOST"
        )
        await ordering.start_order(s, ADMIN, order.id)
    handle = await lines.env.client.start_workflow(
        PromoClaimWorkflow.run,
        PromoClaimInput(order.id, customer, "LOST", f"order-{order.id}"),  # no such order workflow
        id=promo_claim_workflow_id(order.id),
        task_queue=lines.task_queue,
    )
    lines.started.append(handle)
    await lines.env.sleep(timedelta(days=1, hours=1))  # the order is still in progress: it keeps waiting
    assert await sql(lines.runtime, "SELECT uses FROM catalog.promotion WHERE code = 'LOST'") == [(1,)]
    async with transaction(lines.runtime.db) as s:
        await ordering.fail_order(s, ADMIN, order.id, "its workflow was terminated")
    await lines.env.sleep(timedelta(days=1))
    result = await handle.result()
    assert result.state == "revoked"
    assert await sql(lines.runtime, "SELECT uses, state FROM catalog.promotion WHERE code = 'LOST'") == [
        (0, "active")
    ]
    if os.environ.get("BSS_EXPORT_HISTORIES") == "1":
        from tests.workflows.test_promo_claims import HISTORIES

        (HISTORIES / "PromoClaimWorkflow" / "order_gone_revoked.json").write_text(
            (await handle.fetch_history()).to_json()
        )

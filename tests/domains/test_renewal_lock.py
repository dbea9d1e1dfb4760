"""The renewal does not hold the line's row lock while the gateway answers (issue 8, item 11):
a slow gateway must not stall rating, top-ups or a termination of the same line."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import text
from temporalio.testing import ActivityEnvironment

from activities.subscription import RenewRequest, SubscriptionActivities
from core.clock import clock
from tests.domains.test_subscription_lifecycle import line, new_line, payments
from tests.workflows.line_faults import LedgerGateway


async def test_the_line_is_not_locked_while_the_gateway_is_slow_and_the_period_is_charged_once(runtime):
    clock.freeze(clock.now())
    sub_id = await new_line(runtime, "PLAN_S")
    sub = await line(runtime, sub_id)
    gateway = LedgerGateway()
    gateway.hold = asyncio.Event()
    activities = SubscriptionActivities(runtime, gateway)
    start = sub.current_period_end.isoformat()
    request = RenewRequest(sub_id, start, f"subscription-{sub_id}/renewal/{start}")
    renewing = asyncio.create_task(ActivityEnvironment().run(activities.renew, request))
    await asyncio.wait_for(gateway.entered.wait(), 10)

    # The gateway is thinking: another session can lock the line at once (NOWAIT would raise).
    async with runtime.engine.connect() as conn, conn.begin():
        locked = await conn.execute(
            text("SELECT id FROM subscription.subscription WHERE id = :s FOR UPDATE NOWAIT"), {"s": sub_id}
        )
        assert locked.scalar_one() == sub_id
    assert not renewing.done()

    gateway.hold.set()
    outcome = await asyncio.wait_for(renewing, 10)
    assert outcome.status == "renewed"
    after = await line(runtime, sub_id)
    assert after.current_period_end == sub.current_period_end + timedelta(days=30)
    # Asked again (a retry after a lost answer): the same answer, no second charge.
    again = await ActivityEnvironment().run(activities.renew, request)
    assert again == outcome
    assert [p for p in await payments(runtime, sub.customer_id) if p[0] == "renewal"] == [
        ("renewal", outcome_amount(outcome), "approved")
    ]
    assert gateway.approved("/renewal/") == 1


def outcome_amount(outcome):
    from decimal import Decimal

    return Decimal(outcome.amount)

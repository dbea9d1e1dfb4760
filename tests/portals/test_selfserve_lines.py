"""A line's actions on the self-serve portal are the same updates of the line's real workflow as on
the API (`saga`: Temporal dev server), audited under the customer's name and the portal's channel;
each money-moving or destructive one does nothing without a fresh step-up code."""

from __future__ import annotations

import httpx
import pytest_asyncio

from tests.api.order_flow import scalar
from tests.api.subscription_flow import footprint, live_line, payments
from tests.portals.test_selfserve import ask_code, codes_sent_to, csrf_of, enter_code
from tests.portals.test_selfserve_account import step_up_codes


@pytest_asyncio.fixture
async def portal(saga, settings, runtime):
    from portals.selfserve.app import create_app

    app = create_app(settings, runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
            yield client


async def test_top_up_plan_change_and_terminate_on_the_portal(saga, api, portal, runtime, settings):
    from ops.crm import get_customer
    from ops.subscriptions import status

    sub_id, cust = await live_line(saga, api)
    address = (await get_customer(runtime, cust)).active("email")
    await ask_code(portal, address)
    [code] = codes_sent_to(settings, address)
    assert (await enter_code(portal, code)).headers["location"] == "/dashboard"
    line_url = f"/lines/{sub_id}"

    # Top-up: the confirm page says what is charged to which card; without a step-up nothing happens.
    confirm = await portal.get(f"{line_url}/topup?vas=VAS_DATA_1GB")
    assert confirm.status_code == 200
    assert (
        "Charge SGD" in confirm.text and "•••• 4242 now" in confirm.text and "Email me a code" in confirm.text
    )
    key = csrf_of(confirm)
    form = {"vas": "VAS_DATA_1GB", "key": "k-1", "csrf_token": key}
    before = await footprint(runtime, sub_id)
    refused = await portal.post(f"{line_url}/topup", data=form)
    assert refused.status_code == 403 and "one-time code" in refused.text
    assert await footprint(runtime, sub_id) == before and await payments(runtime, cust, "vas") == 0

    sent = await portal.post(
        "/step-up", data={"next": f"{line_url}/topup?vas=VAS_DATA_1GB", "purpose": "topup", "csrf_token": key}
    )
    assert sent.status_code == 303
    [step_code] = step_up_codes(settings, address)
    bought = await portal.post(f"{line_url}/topup", data={**form, "code": step_code})
    assert bought.status_code == 303 and bought.headers["location"] == line_url
    again = await portal.post(f"{line_url}/topup", data=form)  # a double submit of the same form
    assert again.status_code == 303
    after = await portal.get(line_url)
    assert "Top-up added." in after.text and "6 GB left of 6 GB" in after.text  # 5 GB + 1 GB, bought once
    assert await payments(runtime, cust, "vas") == 1

    # Renew now: the confirm page names the price and the card; the period starts again.
    confirm = await portal.get(f"{line_url}/renew")
    assert "Charge SGD" in confirm.text and "•••• 4242 now for a new 30-day period" in confirm.text
    renewed = await portal.post(f"{line_url}/renew", data={"key": "r-1", "csrf_token": key})
    assert renewed.status_code == 303 and await payments(runtime, cust, "renewal") == 1
    assert "Line renewed." in (await portal.get(line_url)).text

    # Plan change at renewal, shown with its price then; and its cancellation.
    confirm = await portal.get(f"{line_url}/plan?offering=PLAN_M")
    assert (
        confirm.status_code == 200
        and "at its next renewal" in confirm.text
        and "Nothing is charged now" in confirm.text
    )
    changed = await portal.post(f"{line_url}/plan", data={"offering": "PLAN_M", "csrf_token": key})
    assert changed.status_code == 303  # still stepped up (five minutes)
    assert (await status(runtime, sub_id))["pendingChange"]["offeringId"] == "PLAN_M"
    page = await portal.get(line_url)
    assert "Moves to <strong>" in page.text and "Cancel the plan change" in page.text
    cancelled = await portal.post(f"{line_url}/plan/cancel", data={"csrf_token": key})
    assert cancelled.status_code == 303
    assert (await status(runtime, sub_id))["pendingChange"] is None

    # Terminate: the box must be ticked, and it needs a step-up like the rest.
    confirm = await portal.get(f"{line_url}/terminate")
    assert "cannot be brought back" in confirm.text and 'name="confirm"' in confirm.text
    unticked = await portal.post(f"{line_url}/terminate", data={"csrf_token": key})
    assert unticked.status_code == 422 and "Tick the box" in unticked.text
    assert (await status(runtime, sub_id))["state"] == "active"
    ended = await portal.post(f"{line_url}/terminate", data={"csrf_token": key, "confirm": "yes"})
    assert ended.status_code == 303
    assert (await status(runtime, sub_id))["state"] == "terminated"
    again = await portal.post(f"{line_url}/terminate", data={"csrf_token": key, "confirm": "yes"})
    assert again.status_code == 422 and "already terminated" in again.text  # a sentence, not a 500

    rows = await scalar(
        runtime,
        "SELECT string_agg(event_type || ' ' || actor || ' ' || channel, ',' ORDER BY id) FROM audit.domain_event"
        " WHERE aggregate_id = :s AND event_type IN ('subscription.vas_purchased', 'subscription.renewed',"
        " 'subscription.plan_change_scheduled', 'subscription.plan_change_cancelled', 'subscription.terminated')",
        s=sub_id,
    )
    assert rows.split(",") == [
        f"subscription.vas_purchased {cust} portal-self-serve",
        f"subscription.renewed {cust} portal-self-serve",
        f"subscription.plan_change_scheduled {cust} portal-self-serve",
        f"subscription.plan_change_cancelled {cust} portal-self-serve",
        f"subscription.terminated {cust} portal-self-serve",
    ]
    # The order that made the line is on the customer's orders page.
    orders = await portal.get("/orders")
    order_id = await scalar(runtime, "SELECT id FROM ordering.product_order WHERE customer_id = :c", c=cust)
    assert order_id in orders.text
    detail = await portal.get(f"/orders/{order_id}")
    assert detail.status_code == 200 and "completed" in detail.text

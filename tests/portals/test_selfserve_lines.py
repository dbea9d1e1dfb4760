"""A top-up bought on the self-serve portal is the same update of the line's real workflow as on
the API (`saga`: Temporal dev server), audited under the customer's name and the portal's channel."""

from __future__ import annotations

import httpx
import pytest_asyncio

from tests.api.order_flow import scalar
from tests.api.subscription_flow import live_line
from tests.portals.test_selfserve import ask_code, codes_sent_to, csrf_of, enter_code


@pytest_asyncio.fixture
async def portal(saga, settings, runtime):
    from portals.selfserve.app import create_app

    app = create_app(settings, runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
            yield client


async def test_a_top_up_on_the_portal_updates_the_line_as_the_customer(saga, api, portal, runtime, settings):
    from ops.crm import get_customer

    sub_id, cust = await live_line(saga, api)
    address = (await get_customer(runtime, cust)).active("email")
    await ask_code(portal, address)
    [code] = codes_sent_to(settings, address)
    assert (await enter_code(portal, code)).headers["location"] == "/dashboard"

    page = await portal.get(f"/lines/{sub_id}")
    key = csrf_of(page)
    form = {"vas": "VAS_DATA_1GB", "key": "k-1", "csrf_token": key}
    bought = await portal.post(f"/lines/{sub_id}/topup", data=form)
    assert bought.status_code == 303 and bought.headers["location"] == f"/lines/{sub_id}"
    again = await portal.post(f"/lines/{sub_id}/topup", data=form)  # a double submit of the same form
    assert again.status_code == 303
    after = await portal.get(f"/lines/{sub_id}")
    assert "Top-up added." in after.text and "6 GB left of 6 GB" in after.text  # 5 GB + 1 GB, bought once

    actor, channel = (
        await scalar(
            runtime,
            "SELECT actor || ' ' || channel FROM audit.domain_event"
            " WHERE event_type = 'subscription.vas_purchased' AND aggregate_id = :s",
            s=sub_id,
        )
    ).split()
    assert (actor, channel) == (cust, "portal-self-serve")

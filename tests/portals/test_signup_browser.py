"""The signup funnel in a real browser: Playwright drives the system's Chromium headless (phone-sized)
from the landing page's plan card through the emailed code, number, details, KYC, card and promo code
to the order, its live progress (htmx polling the order workflow) and the eSIM QR code, while the
real order saga runs on the Temporal dev server. Screenshots of each page go to
<repo>/test-artifacts/portal/signup-*.png (not committed)."""

from __future__ import annotations

import re
from decimal import Decimal

from core.context import RequestContext
from tests.api.order_flow import scalar
from tests.portals.browser import BROWSER, PHONE, DoorServer, artifacts, chromium
from tests.portals.test_signup import signup_codes_sent_to

pytestmark = BROWSER
ADMIN = RequestContext(actor="ops-admin", channel="scenario", service_identity="test")


async def test_a_visitor_signs_up_from_a_plan_card_to_the_esim_qr_code(saga, temporal_dev, runtime, settings):
    from ops.promotions import NewPromotion, create
    from portals.selfserve.app import create_app

    await create(
        runtime, ADMIN, NewPromotion("WELCOME10", "Welcome", "percent", Decimal("10"), 3, "multi_use")
    )
    # The door runs in its own thread and event loop with its own runtime: point it at the dev server.
    settings.temporal_address = temporal_dev.client.service_client.config.target_host
    address = "newcomer@example.com"
    shots = artifacts("portal")
    n = iter(range(1, 100))

    async def shot(page, name: str) -> None:
        await page.screenshot(path=str(shots / f"signup-{next(n):02d}-{name}.png"), full_page=True)

    with DoorServer(create_app(settings)) as base:
        async with chromium() as browser:
            page = await browser.new_page(viewport=PHONE)
            await page.goto(f"{base}/")
            await shot(page, "landing")
            await page.get_by_role("link", name="Choose Standard").click()
            await page.wait_for_url(re.compile(r"/signup\?plan="))
            await shot(page, "plan")
            assert await page.get_by_role("radio", name=re.compile("Standard")).is_checked()
            await page.get_by_role("button", name="Continue").click()

            await page.wait_for_url(f"{base}/login")
            await page.get_by_label("Email address").fill(address)
            await shot(page, "email")
            await page.get_by_role("button", name="Email me a code").click()
            await page.wait_for_url(f"{base}/login/verify")
            [code] = signup_codes_sent_to(settings, address)
            await page.get_by_label("Code").fill(code)
            await shot(page, "code")
            await page.get_by_role("button", name="Sign in").click()

            await page.wait_for_url(f"{base}/signup/number")
            choice = page.get_by_role("radio").first
            msisdn = await choice.get_attribute("value")
            await choice.check()
            await shot(page, "number")
            await page.get_by_role("button", name="Hold this number").click()

            await page.wait_for_url(f"{base}/signup/details")
            await page.get_by_label("First name").fill("Nia")
            await page.get_by_label("Last name").fill("Rahman")
            await shot(page, "details")
            await page.get_by_role("button", name="Continue").click()

            await page.wait_for_url(f"{base}/signup/kyc")
            await page.get_by_label("Document", exact=True).select_option("passport")
            await page.get_by_label("Document number").fill("K1234567")
            await shot(page, "kyc")
            await page.get_by_role("button", name="Verify my identity").click()

            await page.wait_for_url(f"{base}/signup/card")
            await page.get_by_label("Card number").fill("4242 4242 4242 4242")
            await page.get_by_label("Expiry month (MM)").fill("12")
            await page.get_by_label("Expiry year (YYYY)").fill("2035")
            await shot(page, "card")
            await page.get_by_role("button", name="Save card").click()

            await page.wait_for_url(f"{base}/signup/promo")
            await page.get_by_label("Promo code (optional)").fill("welcome10")
            await shot(page, "promo")
            await page.get_by_role("button", name="Apply code").click()

            await page.wait_for_url(f"{base}/signup/review")
            assert await page.get_by_text(msisdn).first.is_visible()
            assert await page.get_by_text("instead of").is_visible()  # the code's discount, shown beforehand
            await shot(page, "review")
            await page.get_by_role("button", name="Place order and pay").click()

            await page.wait_for_url(re.compile(r"/signup/orders/ORD-\d+$"))
            await shot(page, "progress")
            # htmx polls the order's status fragment and moves on when the order completes.
            await page.wait_for_url(re.compile(r"/signup/orders/ORD-\d+/done$"), timeout=30_000)
            qr = page.get_by_role("img", name=f"eSIM QR code for {msisdn}")
            await qr.wait_for()
            # The PNG loaded (the owner's QR route answered with an image the browser could decode).
            await page.wait_for_function(
                "() => { const i = document.querySelector('img.qr'); return i.complete && i.naturalWidth > 0 }"
            )
            activation = await page.locator("#activation-code").inner_text()
            await shot(page, "esim")

    assert activation.startswith("LPA:1$")
    customer = await scalar(
        runtime,
        "SELECT c.id FROM crm.customer c JOIN crm.contact_medium m ON m.party_id = c.party_id"
        " WHERE m.value = :a",
        a=address,
    )
    assert (
        await scalar(
            runtime,
            "SELECT count(*) FROM ordering.product_order WHERE customer_id = :c AND state = 'completed'"
            " AND promo_amount IS NOT NULL",
            c=customer,
        )
        == 1
    )

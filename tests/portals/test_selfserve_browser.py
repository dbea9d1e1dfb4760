"""The self-serve portal in a real browser: Playwright drives the system's Chromium headless through
login by emailed code to the dashboard and a line. Screenshots of each page go to
<repo>/test-artifacts/portal/ (BSS_TEST_ARTIFACTS overrides; not committed)."""

from __future__ import annotations

from tests.portals.browser import BROWSER, PHONE, DoorServer, artifacts, chromium
from tests.portals.test_selfserve import codes_sent_to, new_customer, new_line

pytestmark = BROWSER


async def test_a_customer_signs_in_with_the_emailed_code_and_sees_their_lines(runtime, settings):
    customer, address = await new_customer(runtime, "Grace")
    sub, msisdn = await new_line(runtime, customer, "PLAN_M")
    from portals.selfserve.app import create_app

    shots = artifacts("portal")
    with DoorServer(create_app(settings)) as base:
        async with chromium() as browser:
            page = await browser.new_page(viewport=PHONE)
            await page.goto(f"{base}/")
            assert await page.get_by_role("heading", name="Standard").is_visible()
            await page.screenshot(path=str(shots / "01-landing.png"), full_page=True)

            await page.get_by_role("link", name="Sign in", exact=True).first.click()
            await page.get_by_label("Email address").fill(address)
            await page.screenshot(path=str(shots / "02-login.png"))
            await page.get_by_role("button", name="Email me a code").click()
            await page.wait_for_url(f"{base}/login/verify")
            await page.screenshot(path=str(shots / "03-verify.png"))

            [code] = codes_sent_to(settings, address)
            await page.get_by_label("Code").fill(code)
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url(f"{base}/dashboard")
            assert await page.get_by_role("heading", name="Hello Grace").is_visible()
            assert await page.get_by_role("link", name=msisdn).is_visible()
            await page.screenshot(path=str(shots / "04-dashboard.png"), full_page=True)

            await page.get_by_role("link", name=msisdn).click()
            await page.wait_for_url(f"{base}/lines/{sub}")
            assert await page.get_by_role("heading", name="Balances").is_visible()
            await page.screenshot(path=str(shots / "05-line.png"), full_page=True)

            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url(f"{base}/")
            await page.goto(f"{base}/dashboard")
            assert page.url == f"{base}/login"

"""The self-serve portal in a real browser: Playwright drives the system's Chromium headless at phone
width, in one walk (Chromium is costly to start): sign in with the emailed code, step up and buy a
top-up, change plan and end the line on its real workflow (Temporal dev server); then another
customer's line, order and case by URL (404), a forged CSRF token (refused) and a brute-forced login
code (burned). Screenshots
of each page go to <repo>/test-artifacts/portal/ (BSS_TEST_ARTIFACTS overrides; not committed)."""

from __future__ import annotations

from typing import Any

from tests.api.subscription_flow import live_line
from tests.portals.browser import BROWSER, PHONE, DoorServer, artifacts, chromium
from tests.portals.test_selfserve import codes_sent_to
from tests.portals.test_selfserve_account import bobs_things, step_up_codes

pytestmark = BROWSER


async def sign_in(page: Any, base: str, settings: Any, address: str, shots: Any = None) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label("Email address").fill(address)
    if shots:
        await page.screenshot(path=str(shots / "02-login.png"))
    await page.get_by_role("button", name="Email me a code").click()
    await page.wait_for_url(f"{base}/login/verify")
    code = codes_sent_to(settings, address)[-1]
    await page.get_by_label("Code").fill(code)
    if shots:
        await page.screenshot(path=str(shots / "03-verify.png"))
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/dashboard")


async def test_a_customer_walks_the_portal_and_cannot_reach_anothers_things(
    saga, api, runtime, settings, temporal_dev
):
    from ops.crm import get_customer
    from ops.ownership import own_cases
    from ops.subscriptions import status
    from portals.selfserve.app import create_app

    bob = await bobs_things(runtime)
    sub_id, cust = await live_line(saga, api)
    address = (await get_customer(runtime, cust)).active("email")
    msisdn = (await status(runtime, sub_id))["msisdn"]
    # The door runs its own runtime in its own thread: point it at the dev server the saga uses.
    target = temporal_dev.client.service_client.config.target_host
    door_settings = settings.model_copy(update={"temporal_address": target})
    shots = artifacts("portal")
    with DoorServer(create_app(door_settings)) as base:
        async with chromium() as browser:
            page = await browser.new_page(viewport=PHONE)
            await page.goto(f"{base}/")
            await page.screenshot(path=str(shots / "01-landing.png"))
            await sign_in(page, base, settings, address, shots)
            assert await page.get_by_role("link", name=msisdn).is_visible()
            await page.screenshot(path=str(shots / "04-dashboard.png"))

            await page.get_by_role("link", name=msisdn).click()
            await page.wait_for_url(f"{base}/lines/{sub_id}")
            await page.screenshot(path=str(shots / "05-line.png"))

            # Top-up: what is charged to which card, then a code, then it is done.
            await page.get_by_label("Top-up").select_option("VAS_DATA_1GB")
            await page.get_by_role("button", name="Continue").first.click()
            await page.wait_for_url(f"{base}/lines/{sub_id}/topup?vas=VAS_DATA_1GB")
            effects = await page.locator("#effects").inner_text()
            assert "Charge SGD" in effects and "•••• 4242" in effects and msisdn in effects
            await page.get_by_role("button", name="Email me a code").click()
            await page.wait_for_selector("text=We emailed a 6-digit code")
            await page.get_by_label("Code from the email").fill(step_up_codes(settings, address)[-1])
            await page.screenshot(path=str(shots / "06-topup-confirm.png"))
            await page.get_by_role("button", name="Buy for").click()
            await page.wait_for_url(f"{base}/lines/{sub_id}")
            assert await page.get_by_text("Top-up added.").is_visible()
            assert await page.get_by_text("6 GB left of 6 GB").is_visible()
            await page.screenshot(path=str(shots / "07-topup-done.png"))

            # Plan change at the next renewal (still stepped up: no new code).
            await page.locator("input[name=offering][value=PLAN_M]").check()
            await page.locator("form[action$='/plan'] button").click()
            await page.wait_for_url(f"{base}/lines/{sub_id}/plan?offering=PLAN_M")
            assert "Nothing is charged now" in await page.locator("#effects").inner_text()
            await page.screenshot(path=str(shots / "08-plan-confirm.png"))
            await page.get_by_role("button", name="Change plan at renewal").click()
            await page.wait_for_url(f"{base}/lines/{sub_id}")
            assert await page.locator("#pending-change").is_visible()
            assert (await status(runtime, sub_id))["pendingChange"]["offeringId"] == "PLAN_M"

            # Terminate: two steps (the page, the tick box) and the step-up.
            await page.get_by_role("link", name="End this line…").click()
            await page.wait_for_url(f"{base}/lines/{sub_id}/terminate")
            await page.get_by_label(f"I understand that {msisdn} stops working now").check()
            await page.screenshot(path=str(shots / "09-terminate-confirm.png"))
            await page.get_by_role("button", name="End this line now").click()
            await page.wait_for_url(f"{base}/lines/{sub_id}")
            assert await page.get_by_text(f"Line {msisdn} has ended.").is_visible()
            await page.screenshot(path=str(shots / "10-terminated.png"))
            assert (await status(runtime, sub_id))["state"] == "terminated"

            # Another customer's line, order and case by URL: 404, as if they did not exist.
            for n, path in enumerate(
                (f"/lines/{bob['sub_id']}", f"/orders/{bob['order_id']}", f"/cases/{bob['case_id']}")
            ):
                answer = await page.goto(f"{base}{path}")
                assert answer.status == 404, path
                assert await page.get_by_role("heading", name="Not found").is_visible()
                body = await page.content()
                assert bob["msisdn"] not in body and "Bob's secret trouble" not in body
                await page.screenshot(path=str(shots / f"11-not-found-{n}.png"))

            # A form posted with a wrong CSRF token is refused, and nothing is done.
            await page.goto(f"{base}/cases/new")
            await page.get_by_label("Subject").fill("Forged")
            await page.locator("form[action='/cases'] input[name=csrf_token]").evaluate(
                "e => e.value = 'forged'"
            )
            await page.get_by_role("button", name="Open the case").click()
            assert await page.get_by_role("heading", name="Form expired").is_visible()
            await page.screenshot(path=str(shots / "12-csrf-refused.png"))
            assert await own_cases(runtime, cust) == []

            # Brute force of a login code: the fifth wrong try burns it.
            await page.goto(f"{base}/dashboard")
            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url(f"{base}/")
            await page.goto(f"{base}/login")
            await page.get_by_label("Email address").fill(address)
            await page.get_by_role("button", name="Email me a code").click()
            await page.wait_for_url(f"{base}/login/verify")
            right = codes_sent_to(settings, address)[-1]
            wrong = f"{(int(right) + 1) % 1_000_000:06d}"
            for _ in range(5):
                await page.get_by_label("Code").fill(wrong)
                await page.get_by_role("button", name="Sign in").click()
                await page.wait_for_load_state()
            assert await page.get_by_text("no longer works").is_visible()
            assert await page.get_by_label("Code").count() == 0  # nothing left to try
            await page.screenshot(path=str(shots / "13-code-burned.png"))
            await page.goto(f"{base}/dashboard")
            assert page.url == f"{base}/login"

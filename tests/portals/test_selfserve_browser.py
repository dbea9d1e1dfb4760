"""The self-serve portal in a real browser: Playwright drives the system's Chromium headless through
login by emailed code to the dashboard and a line. Screenshots of each page go to
<repo>/test-artifacts/portal/ (BSS_TEST_ARTIFACTS overrides; not committed)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from stack import postgres
from tests.portals.test_selfserve import codes_sent_to, new_customer, new_line

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("BSS_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "portal"
# Flags that keep Chromium off the network it cannot reach here, and runnable as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (.ci/run installs it)"
    ),
]


class PortalServer:
    """The portal app under uvicorn on a free port, in a thread with its own event loop."""

    def __init__(self, settings) -> None:
        import uvicorn

        from portals.selfserve.app import create_app

        self.port = postgres.free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the portal did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


async def test_a_customer_signs_in_with_the_emailed_code_and_sees_their_lines(runtime, settings):
    playwright = pytest.importorskip("playwright.async_api")
    customer, address = await new_customer(runtime, "Grace")
    sub, msisdn = await new_line(runtime, customer, "PLAN_M")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with PortalServer(settings) as base:
        async with playwright.async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
                await page.goto(f"{base}/")
                assert await page.get_by_role("heading", name="Standard").is_visible()
                await page.screenshot(path=str(ARTIFACTS / "01-landing.png"), full_page=True)

                await page.get_by_role("link", name="Sign in", exact=True).first.click()
                await page.get_by_label("Email address").fill(address)
                await page.screenshot(path=str(ARTIFACTS / "02-login.png"))
                await page.get_by_role("button", name="Email me a code").click()
                await page.wait_for_url(f"{base}/login/verify")
                await page.screenshot(path=str(ARTIFACTS / "03-verify.png"))

                [code] = codes_sent_to(settings, address)
                await page.get_by_label("Code").fill(code)
                await page.get_by_role("button", name="Sign in").click()
                await page.wait_for_url(f"{base}/dashboard")
                assert await page.get_by_role("heading", name="Hello Grace").is_visible()
                assert await page.get_by_role("link", name=msisdn).is_visible()
                await page.screenshot(path=str(ARTIFACTS / "04-dashboard.png"), full_page=True)

                await page.get_by_role("link", name=msisdn).click()
                await page.wait_for_url(f"{base}/lines/{sub}")
                assert await page.get_by_role("heading", name="Balances").is_visible()
                await page.screenshot(path=str(ARTIFACTS / "05-line.png"), full_page=True)

                await page.get_by_role("button", name="Sign out").click()
                await page.wait_for_url(f"{base}/")
                await page.goto(f"{base}/dashboard")
                assert page.url == f"{base}/login"
            finally:
                await browser.close()

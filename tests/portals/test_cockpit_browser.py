"""The cockpit in a real browser: Playwright drives the system's Chromium headless. A supervisor
signs in, finds a stuck order first in the order queue, resolves its stuck step through the
confirm page and the order completes; a csr is refused the admin catalogue with a 403 page.
Screenshots go to <repo>/test-artifacts/cockpit/ (BSS_TEST_ARTIFACTS overrides; not committed)."""

from __future__ import annotations

import asyncio

import pytest

from tests.portals.browser import BROWSER, DoorServer, artifacts, chromium
from tests.portals.cockpit_harness import cheap_hashes, operator  # noqa: F401 (fixture)

pytestmark = [*BROWSER, pytest.mark.usefixtures("cheap_hashes")]
WIDE = {"width": 1280, "height": 900}


async def _sign_in(page, base: str, email: str, then: str) -> None:
    await page.goto(f"{base}{then}")
    assert page.url.startswith(f"{base}/login")  # no page without sign-in
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill("a long enough password")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}{then}")


async def test_a_supervisor_resolves_a_stuck_order_and_a_csr_is_refused_an_admin_page(
    saga, settings, temporal_dev
):
    from ops import cockpit
    from portals.cockpit.app import create_app

    runtime = saga.runtime
    saga.fault("OCS_BALANCE_INIT", "stuck")
    order = await saga.order(await saga.customer())
    await operator(runtime, "sup@example.com", "supervisor")
    await operator(runtime, "csr@example.com", "csr")
    for _ in range(400):
        stuck = next(
            (r for r in await cockpit.order_queue(runtime) if r.stuck and r.order.id == order.id), None
        )
        if stuck is not None and stuck.ticket_id:
            break
        await asyncio.sleep(0.1)
    # The door runs in its own thread and event loop, with its own runtime on the same cluster.
    settings.temporal_address = temporal_dev.client.service_client.config.target_host
    shots = artifacts("cockpit")
    with DoorServer(create_app(settings)) as base:
        async with chromium() as browser:
            page = await browser.new_page(viewport=WIDE)
            await _sign_in(page, base, "sup@example.com", "/orders")
            row = page.locator(f"#order-{order.id}")
            assert await row.get_attribute("class") == "stuck"
            assert "OCS_BALANCE_INIT stuck" in await row.inner_text()
            await page.screenshot(path=str(shots / "01-order-queue.png"), full_page=True)
            await page.get_by_role("link", name="Tickets").click()
            await page.wait_for_url(f"{base}/tickets")
            assert await page.locator(
                f"#ticket-{stuck.ticket_id}"
            ).is_visible()  # its ticket, in the workbench
            await page.screenshot(path=str(shots / "02-ticket-queue.png"), full_page=True)
            # The ticket of the stuck step is answered through the step's workflow, after a confirm.
            await page.get_by_role("link", name=f"OCS_BALANCE_INIT stuck for order {order.id}").click()
            await page.wait_for_url(f"{base}/tickets/{stuck.ticket_id}")
            assert "OCS_BALANCE_INIT after" in await page.locator("dl.facts").inner_text()
            await page.get_by_role("button", name="Retry the step…").click()
            await page.get_by_role("heading", name=f"Confirm: retry ticket {stuck.ticket_id}").wait_for()
            assert await page.get_by_text("run the stuck step OCS_BALANCE_INIT").is_visible()
            await page.screenshot(path=str(shots / "03-confirm-ticket-retry.png"), full_page=True)
            await page.get_by_role("link", name="Cancel").click()
            await page.get_by_role("link", name="Orders").click()
            await page.wait_for_url(f"{base}/orders")
            row = page.locator(f"#order-{order.id}")
            await row.get_by_label("Note (required to resolve)").fill("balance set by hand in the OCS")
            await row.get_by_role("button", name="Resolve…").click()
            await page.get_by_role("heading", name=f"Confirm: resolve {order.id}").wait_for()
            assert await page.get_by_text("balance set by hand in the OCS").is_visible()
            await page.screenshot(path=str(shots / "04-confirm-resolve.png"), full_page=True)
            await page.get_by_role("button", name="Yes, resolve").click()
            await page.wait_for_url(f"{base}/orders?done=*")
            assert await page.get_by_role("status").is_visible()
            await page.screenshot(path=str(shots / "05-resolved.png"), full_page=True)

            result = await asyncio.wait_for(saga.handle(order.id).result(), 60)
            assert result.state == "completed", result.reason
            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url(f"{base}/login")

            await _sign_in(page, base, "csr@example.com", "/")
            assert await page.get_by_role("link", name="Edit catalogue").count() == 0
            refused = await page.goto(f"{base}/admin/catalog")
            assert refused is not None and refused.status == 403
            assert await page.get_by_role("heading", name="Not allowed").is_visible()
            assert await page.get_by_text("cockpit.role.forbidden").is_visible()
            await page.screenshot(path=str(shots / "06-csr-refused-admin.png"), full_page=True)
            await page.goto(f"{base}/catalog")
            assert await page.locator("#plan-PLAN_S").is_visible()
            await page.screenshot(path=str(shots / "07-catalogue-read-only.png"), full_page=True)
    async with runtime.engine.connect() as c:
        from sqlalchemy import text

        actors = (
            await c.execute(
                text(
                    "select actor, channel from audit.domain_event where event_type = 'provisioning.task.resolved'"
                )
            )
        ).all()
    assert [tuple(a) for a in actors] == [("sup@example.com", "cockpit")]

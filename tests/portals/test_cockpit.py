"""The operator cockpit over HTTP (the app in-process, real Postgres): no page without sign-in,
wrong passwords and the lockout, roles, search and the 360, CSRF, and an operator resolving a
stuck order through the two-step confirm, audited under their name."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import text

from core.db import transaction
from tests.portals.cockpit_harness import (
    ADMIN_CTX,
    PASSWORD,
    cheap_hashes,  # noqa: F401 (fixture)
    cockpit_client,
    csrf_of,
    form_post,
    operator,
    sign_in,
)

pytestmark = pytest.mark.usefixtures("cheap_hashes")
PAGES = ("/", "/customers", "/customers/CUST-00000000", "/orders", "/admin/operators")


async def _events(runtime, sql: str, **params) -> list[tuple]:
    async with runtime.engine.connect() as c:
        return [tuple(r) for r in (await c.execute(text(sql), params)).all()]


async def test_no_page_without_sign_in_and_a_wrong_password_is_refused(settings, runtime):
    await operator(runtime, "ana@example.com", "csr")
    async with cockpit_client(settings, runtime) as client:
        for path in PAGES:
            r = await client.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), (path, r.status_code)
        wrong = await sign_in(client, "ana@example.com", "not the password")
        assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
        unknown = await sign_in(client, "nobody@example.com")
        assert unknown.status_code == 401 and unknown.text.count("Wrong email or password") == 1
        assert (await client.get("/")).status_code == 303  # still nobody signed in
        ok = await sign_in(client, "ana@example.com")
        assert ok.status_code == 303 and ok.headers["location"] == "/"
        home = await client.get("/")
        assert home.status_code == 200 and 'id="orders-completed"' in home.text
        out = await form_post(client, "/", "/logout", {})
        assert out.status_code == 303
        assert (await client.get("/")).status_code == 303
    events = await _events(
        runtime,
        "select event_type, actor, channel from audit.domain_event where aggregate_type = 'operator' "
        "and event_type like 'operator.log%' order by id",
    )
    assert events == [
        ("operator.login_failed", "ana@example.com", "cockpit"),
        ("operator.logged_in", "ana@example.com", "cockpit"),
        ("operator.logged_out", "ana@example.com", "cockpit"),
    ]


async def test_five_wrong_passwords_lock_the_account_and_a_disabled_operator_is_signed_out(settings, runtime):
    from ops import staff

    await operator(runtime, "bo@example.com", "csr")
    await operator(runtime, "cy@example.com", "csr")
    async with cockpit_client(settings, runtime) as client:
        for _ in range(5):
            assert (await sign_in(client, "bo@example.com", "wrong password!")).status_code == 401
        locked = await sign_in(client, "bo@example.com")  # the right password, too late
        assert locked.status_code == 401
        assert (await client.get("/")).status_code == 303
        assert (await sign_in(client, "cy@example.com")).status_code == 303
        assert (await client.get("/customers")).status_code == 200
        await staff.disable_operator(runtime, ADMIN_CTX, "cy@example.com")
        assert (await client.get("/customers")).status_code == 303  # the open session no longer works
    refused = await _events(
        runtime,
        "select payload->>'reason' from audit.domain_event where event_type = 'operator.login_refused'",
    )
    assert refused == [("locked",)]


async def test_one_address_spraying_passwords_over_many_emails_is_stopped(settings, runtime):
    from ops.staff import WRONG_PER_IP

    await operator(runtime, "dee@example.com", "csr")
    async with cockpit_client(settings, runtime) as client:
        for i in range(WRONG_PER_IP):
            assert (await sign_in(client, f"guess{i}@example.com", "password123")).status_code == 401
        stopped = await sign_in(client, "dee@example.com")  # even the right password, from here
        assert stopped.status_code == 429 and "staff.login.rate_limited" in stopped.text
        assert (await client.get("/")).status_code == 303


async def test_a_csr_is_refused_the_admin_page_and_an_admin_sees_it(settings, runtime):
    await operator(runtime, "csr@example.com", "csr")
    await operator(runtime, "sup@example.com", "supervisor")
    await operator(runtime, "root@example.com", "admin")
    for email, status in (("csr@example.com", 403), ("sup@example.com", 403), ("root@example.com", 200)):
        async with cockpit_client(settings, runtime) as client:
            await sign_in(client, email)
            r = await client.get("/admin/operators")
            assert r.status_code == status, (email, r.status_code)
            catalogue = await client.get("/admin/catalog")
            assert catalogue.status_code == status and ('id="plan-PLAN_S"' in catalogue.text) is (
                status == 200
            )
            if status == 403:
                assert "cockpit.role.forbidden" in r.text and "root@example.com" not in r.text
            else:
                assert "csr@example.com" in r.text and "sup@example.com" in r.text
                made = await form_post(
                    client,
                    "/admin/operators",
                    "/admin/operators",
                    {"email": "new@example.com", "role": "csr"},
                )
                password = made.text.split('<code id="new-password">')[1].split("</code>")[0]
                async with cockpit_client(settings, runtime) as newcomer:
                    assert (await sign_in(newcomer, "new@example.com", password)).status_code == 303
            assert ('href="/admin/operators"' in (await client.get("/")).text) is (status == 200)


async def test_search_finds_the_customer_by_name_email_msisdn_and_id_and_the_360_shows_theirs(
    settings, runtime
):
    from domains.crm.services import create_customer
    from domains.payment.services import add_payment_method
    from tests.usage_harness import active_line

    async with transaction(runtime.db) as s:
        ada = await create_customer(
            s,
            ADMIN_CTX,
            given_name="Ada",
            family_name="Lovelace",
            email="ada@example.com",
            phone="+6591234567",
        )
        bob = await create_customer(
            s, ADMIN_CTX, given_name="Bob", family_name="Byron", email="bob@example.com"
        )
        await add_payment_method(
            s, ADMIN_CTX, customer_id=ada.id, card_number="4242424242424242", exp_month=12, exp_year=2035
        )
    sub_id, msisdn = await active_line(runtime)
    bob_sub, bob_msisdn = await active_line(runtime)
    async with runtime.engine.begin() as c:
        await c.execute(
            text("update subscription.subscription set customer_id = :c where id = :s"),
            {"c": ada.id, "s": sub_id},
        )
        await c.execute(
            text("update subscription.subscription set customer_id = :c where id = :s"),
            {"c": bob.id, "s": bob_sub},
        )
    await operator(runtime, "ana@example.com", "csr")
    async with cockpit_client(settings, runtime) as client:
        await sign_in(client, "ana@example.com")
        for q in ("lovelace", "ADA@example.com", msisdn, ada.id, "91234567"):
            r = await client.get("/customers", params={"q": q})
            assert r.status_code == 200
            assert f'href="/customers/{ada.id}"' in r.text and f"/customers/{bob.id}" not in r.text, q
        nobody = await client.get("/customers", params={"q": "zzz-nobody"})
        assert "Nobody matches" in nobody.text
        page = await client.get(f"/customers/{ada.id}")
        assert page.status_code == 200
        assert "Ada Lovelace" in page.text and f'id="line-{sub_id}"' in page.text and msisdn in page.text
        assert "<progress" in page.text and "4242" in page.text
        assert bob_sub not in page.text and bob_msisdn not in page.text
        assert "No interactions." not in page.text  # the customer's creation is on their file
        # Each section once, in the page's body; the tab's title is the customer's name alone.
        assert page.text.count("<h2>Interactions</h2>") == 1
        assert re.search(r"<title>Ada Lovelace · [^<]*</title>", page.text)
        assert (await client.get("/customers/CUST-00000000")).status_code == 404


async def test_the_ticket_queue_puts_overdue_first_and_an_operator_notes_and_resolves_under_their_name(
    settings, runtime
):
    from datetime import timedelta

    from core.clock import clock
    from domains.crm import tickets

    async with transaction(runtime.db) as s:
        later = await tickets.open_ticket(
            s, ADMIN_CTX, ticket_type="information_request", subject="Later one", description=""
        )
        late = await tickets.open_ticket(
            s, ADMIN_CTX, ticket_type="information_request", subject="Overdue one", description=""
        )
        later.sla_due_at, late.sla_due_at = clock.now() + timedelta(hours=4), clock.now() - timedelta(hours=1)
        s.add(later)
        s.add(late)
    await operator(runtime, "ana@example.com", "csr")
    async with cockpit_client(settings, runtime) as client:
        await sign_in(client, "ana@example.com")
        queue = await client.get("/tickets")
        assert queue.text.index(f'id="ticket-{late.id}"') < queue.text.index(f'id="ticket-{later.id}"')
        assert "past SLA" in queue.text.split(f'id="ticket-{later.id}"')[0]
        token = csrf_of(queue.text)
        for action, text in (("note", "called the customer"), ("resolve", "fixed by hand")):
            r = await client.post(
                f"/tickets/{late.id}", data={"action": action, "text": text, "csrf_token": token}
            )
            assert r.status_code == 303, r.text
        no_notes = await client.post(f"/tickets/{later.id}", data={"action": "resolve", "csrf_token": token})
        assert no_notes.status_code in (400, 422)  # the rule's refusal, on a page
        assert f'id="ticket-{late.id}"' not in (await client.get("/tickets")).text
    events = await _events(
        runtime,
        "select event_type, actor, channel from audit.domain_event where aggregate_id = :t "
        "and actor <> 'test-admin' order by id",
        t=late.id,
    )
    assert [e[0] for e in events] == ["ticket.note_added", "ticket.resolved"]
    assert {e[1:] for e in events} == {("ana@example.com", "cockpit")}


async def test_a_form_without_its_csrf_token_is_refused(settings, runtime):
    await operator(runtime, "ana@example.com", "csr")
    async with cockpit_client(settings, runtime) as client:
        form = await client.get("/login")
        no_token = await client.post("/login", data={"email": "ana@example.com", "password": PASSWORD})
        assert no_token.status_code == 403 and "web.csrf.refused" in no_token.text
        assert (await client.get("/")).status_code == 303  # not signed in
        await client.post(
            "/login",
            data={"email": "ana@example.com", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        )
        assert (await client.get("/")).status_code == 200
        forged = await client.post(
            "/orders/ORD-000001/stuck", data={"action": "retry", "confirmed": "yes", "csrf_token": "forged"}
        )
        assert forged.status_code == 403 and "web.csrf.refused" in forged.text
        cross = await client.post(
            "/logout", data={"csrf_token": csrf_of(form.text)}, headers={"Origin": "http://evil.test"}
        )
        assert cross.status_code == 403
        assert (await client.get("/")).status_code == 200  # still signed in


async def test_an_operator_resolves_a_stuck_order_and_terminates_its_line_after_confirming_audited_under_their_name(
    saga, settings
):
    runtime = saga.runtime
    saga.fault("OCS_BALANCE_INIT", "stuck")
    order = await saga.order(await saga.customer())
    await operator(runtime, "sup@example.com", "supervisor")
    async with cockpit_client(settings, runtime) as client:
        await sign_in(client, "sup@example.com")

        async def queue_shows_it_stuck():
            html = (await client.get("/orders")).text
            return html if f'<tr id="order-{order.id}" class="stuck">' in html else None

        queue = await _eventually(queue_shows_it_stuck)
        assert "OCS_BALANCE_INIT stuck" in queue
        assert f"/namespaces/default/workflows/order-{order.id}" in queue
        home = await client.get("/")
        assert '<dd id="orders-stuck"><a href="/orders">1</a>' in home.text
        token = csrf_of(queue)
        step1 = await client.post(
            f"/orders/{order.id}/stuck",
            data={"action": "resolve", "note": "balance set by hand", "csrf_token": token},
        )
        assert (
            step1.status_code == 200 and "Confirm: resolve" in step1.text and "OCS_BALANCE_INIT" in step1.text
        )
        # Nothing was sent yet: the task is still stuck.
        assert (
            await _scalar(
                runtime, "select count(*) from service_ordering.provisioning_task where state = 'stuck'"
            )
            == 1
        )
        step2 = await client.post(
            f"/orders/{order.id}/stuck",
            data={
                "action": "resolve",
                "note": "balance set by hand",
                "confirmed": "yes",
                "csrf_token": token,
            },
        )
        assert step2.status_code == 303
    result = await asyncio.wait_for(saga.handle(order.id).result(), 60)
    assert result.state == "completed", result.reason
    async with cockpit_client(settings, runtime) as client:
        await sign_in(client, "sup@example.com")
        c360 = await client.get(f"/customers/{order.customer_id}")
        assert "OCS_BALANCE_INIT <strong>" in c360.text and "HLR_PROVISION <strong>" in c360.text  # steps
        assert f'href="/lines/{result.subscription_id}"' in c360.text
    events = await _events(
        runtime,
        "select actor, channel from audit.domain_event where event_type = 'provisioning.task.resolved'",
    )
    assert events == [("sup@example.com", "cockpit")]
    await _terminate_the_line_in_two_steps(settings, runtime, result.subscription_id)


async def _terminate_the_line_in_two_steps(settings, runtime, sub_id: str) -> None:
    """A csr may look and is shown a top-up's charge, but terminating is a supervisor's, after a confirm."""
    await operator(runtime, "csr@example.com", "csr")
    line = f"/lines/{sub_id}"
    async with cockpit_client(settings, runtime) as client:
        await sign_in(client, "csr@example.com")
        page = await client.get(line)
        assert page.status_code == 200 and "Terminate…" in page.text
        topup = await form_post(client, line, f"{line}/act", {"action": "topup", "vas": "VAS_DATA_1GB"})
        assert topup.status_code == 200 and "Confirm: top-up VAS_DATA_1GB" in topup.text
        assert "•••• 4242" in topup.text and 'name="key"' in topup.text  # the charge and the card, named
        refused = await form_post(client, line, f"{line}/act", {"action": "terminate", "confirmed": "yes"})
        assert refused.status_code == 403
    async with cockpit_client(settings, runtime) as client:
        await sign_in(client, "sup@example.com")
        step1 = await form_post(
            client, line, f"{line}/act", {"action": "terminate", "reason": "customer asked"}
        )
        assert step1.status_code == 200 and "cannot be brought back" in step1.text
        state = f"select state from subscription.subscription where id = '{sub_id}'"
        assert await _scalar(runtime, state) == "active"
        step2 = await client.post(
            f"{line}/act",
            data={
                "action": "terminate",
                "reason": "customer asked",
                "confirmed": "yes",
                "csrf_token": csrf_of(step1.text),
            },
        )
        assert step2.status_code == 303
    assert await _scalar(runtime, state) == "terminated"
    assert await _events(
        runtime, "select actor, channel from audit.domain_event where event_type = 'subscription.terminated'"
    ) == [("sup@example.com", "cockpit")]


async def _scalar(runtime, sql: str):
    async with runtime.engine.connect() as c:
        return (await c.execute(text(sql))).scalar()


async def _eventually(check, seconds: float = 40):
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        if result := await check():
            return result
        assert asyncio.get_running_loop().time() < deadline, "never true"
        await asyncio.sleep(0.2)

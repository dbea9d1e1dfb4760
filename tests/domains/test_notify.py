"""Notifications from audit events, against the real Postgres with the business clock moved:
renewal reminders (the scan), receipts and declines from real renewals, data at 80 / 100 % once
each from real rating, messages for recorded port / ticket / promo / inventory events, email faults
retried without loss, and no message twice however often the dispatcher runs."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from domains.payment.mock_gateway import MockGateway
from ops import notify
from tests.domains.test_subscription_lifecycle import DECLINED_CARD, line, new_line, renew

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
CTX = RequestContext(actor="test", channel="scenario", service_identity="test")


@pytest.fixture(autouse=True)
def _frozen() -> None:
    clock.freeze(T0)


async def rows(runtime, sql: str, **params: Any) -> list[Any]:
    async with runtime.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def outbox(runtime, **where: str) -> list[Any]:
    cond = " AND ".join(f"{k} = :{k}" for k in where) or "true"
    return await rows(
        runtime,
        "SELECT id, template, recipient, customer_id, state, attempts, subject, body, mailbox_file "
        f"FROM notify.outbox WHERE {cond} ORDER BY created_at, source_event_id, id",
        **where,
    )


def eml(path: str) -> email.message.EmailMessage:
    return email.message_from_bytes(Path(path).read_bytes(), policy=policy.default)


async def customer_email(runtime, customer_id: str) -> str:
    from domains.notify.services import customer_email as lookup

    async with runtime.db() as s:
        address, _ = await lookup(s, customer_id)
    assert address
    return address


async def test_renewal_reminder_receipt_and_decline(runtime, settings):
    good, declined = await new_line(runtime), await new_line(runtime, card=DECLINED_CARD)
    end = (await line(runtime, good)).current_period_end
    cust = (await line(runtime, good)).customer_id

    clock.freeze(end - timedelta(days=4))
    await notify.dispatch_pending(runtime)
    assert await outbox(runtime, template="renewal_reminder") == []  # not yet: four days ahead

    clock.freeze(end - timedelta(days=2, hours=23))
    first = await notify.dispatch_pending(runtime)
    reminders = await outbox(runtime, template="renewal_reminder")
    assert {r.state for r in reminders} == {"sent"} and len(reminders) == 2
    mine = next(r for r in reminders if r.customer_id == cust)
    mail = eml(mine.mailbox_file)
    assert mail["To"] == await customer_email(runtime, cust)
    assert mail["From"] == settings.mail_from
    assert "Lite" in mail.get_content() and end.date().isoformat() in mail["Subject"]
    assert len(first.sent) == 2

    clock.freeze(end - timedelta(days=1))  # a later pass in the same period: no second reminder
    again = await notify.dispatch_pending(runtime)
    assert again.queued == again.sent == []
    assert len(await outbox(runtime, template="renewal_reminder")) == 2

    clock.freeze(end)
    gateway = MockGateway(runtime.db)
    assert (await renew(runtime, gateway, good)).status == "renewed"
    assert (await renew(runtime, gateway, declined)).status == "declined"
    await notify.dispatch_pending(runtime)
    receipt = (await outbox(runtime, template="renewal_receipt"))[0]
    assert receipt.customer_id == cust and receipt.state == "sent"
    assert "SGD 10.00" in receipt.body and (end + timedelta(days=30)).date().isoformat() in receipt.body
    refused = await outbox(runtime, template="renewal_declined")
    assert len(refused) == 1 and refused[0].customer_id == (await line(runtime, declined)).customer_id
    assert "paused" in refused[0].body
    assert len(await outbox(runtime, template="renewal_receipt")) == 1


async def test_a_batch_of_receipts_is_read_and_written_in_four_statements(runtime):
    """Issue 12: the messages of a batch of events read the lines and customers they name in two
    statements and are written in one, not six reads, an insert and a read back per event."""
    from sqlalchemy import event

    subs = [await new_line(runtime) for _ in range(3)]
    await notify.queue_from_events(runtime)  # the signups' messages
    clock.freeze(T0 + timedelta(days=30))
    gateway = MockGateway(runtime.db)
    for sub_id in subs:
        assert (await renew(runtime, gateway, sub_id)).status == "renewed"
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_) -> None:
        statements.append(statement)

    engine = runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        result = await notify.queue_from_events(runtime)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(result.queued) == 3
    # The events, the lines, the customers, and the messages.
    assert len(statements) == 4, [s[:60] for s in statements]
    receipts = await outbox(runtime, template="renewal_receipt")
    assert len(receipts) == 3 and {r.state for r in receipts} == {"queued"}
    assert {r.customer_id for r in receipts} == {(await line(runtime, s)).customer_id for s in subs}


async def _use(runtime, msisdn: str, mb: int, n: int) -> None:
    from domains.usage.rules import RawUsage
    from domains.usage.services import rate_usage

    async with transaction(runtime.db) as s:
        result = await rate_usage(
            s, CTX, [RawUsage(0, f"notify-test-{n}", "data", msisdn, mb, "MB", False, None)]
        )
    assert result.rated and not result.rejections, result.rejections


async def test_data_at_80_and_100_percent_once_each(runtime):
    sub_id = await new_line(runtime)  # PLAN_S: 5,120 MB
    msisdn = (await line(runtime, sub_id)).msisdn
    await _use(runtime, msisdn, 4000, 1)  # 78 %
    await _use(runtime, msisdn, 96, 2)  # 80 % exactly: crossed
    await _use(runtime, msisdn, 400, 3)  # 88 %: nothing new
    await _use(runtime, msisdn, 624, 4)  # 100 %: crossed, the line is blocked
    events = await rows(
        runtime,
        "SELECT payload FROM audit.domain_event WHERE event_type = 'balance.threshold_reached' ORDER BY id",
    )
    assert [e.payload["percent"] for e in events] == [80, 100]
    assert {e.payload["subscription_id"] for e in events} == {sub_id}
    assert events[0].payload["customer_id"] == (await line(runtime, sub_id)).customer_id
    await notify.dispatch_pending(runtime)
    await notify.dispatch_pending(runtime)
    sent = await outbox(runtime, template="data_usage")
    assert [r.subject for r in sent] == [
        f"You have used 80 % of your data on {msisdn}",
        f"You have used all your data on {msisdn}",
    ]
    assert {r.state for r in sent} == {"sent"}


async def test_an_email_fault_keeps_the_message_queued_until_a_retry_sends_it(runtime, settings):
    from domains.provisioning.services import set_fault

    async with transaction(runtime.db) as s:
        await set_fault(s, CTX, task_type="EMAIL_SEND", fault_type="fail_always")
    msg = await notify.send(runtime, "login_code", "ada@example.com", {"code": "482913"}, key="otp-1")
    assert (msg.state, msg.attempts) == ("queued", 1) and "fault" in msg.last_error
    assert not settings.mailbox_dir.exists() or not list(settings.mailbox_dir.iterdir())
    # Not due yet (backoff), and still failing when it is: queued, never dropped.
    assert (await notify.dispatch_pending(runtime)).retrying == []
    later = datetime.now(UTC) + timedelta(hours=1)
    assert (await notify.dispatch_pending(runtime, now=later)).retrying == [msg.id]
    assert [(r.state, r.attempts) for r in await outbox(runtime)] == [("queued", 2)]

    async with transaction(runtime.db) as s:
        await set_fault(s, CTX, task_type="EMAIL_SEND", fault_type="fail_always", enabled=False)
    done = await notify.dispatch_pending(runtime, now=later + timedelta(hours=1))
    assert done.sent == [msg.id]
    files = list(settings.mailbox_dir.glob("*.eml"))
    assert [f.name for f in files] == [f"{msg.id}.eml"]
    mail = eml(str(files[0]))
    assert mail["To"] == "ada@example.com" and "482913" in mail["Subject"]
    # Sent once: another pass, and the same key sent again, change nothing.
    assert (await notify.dispatch_pending(runtime, now=later + timedelta(hours=2))).sent == []
    again = await notify.send(runtime, "login_code", "ada@example.com", {"code": "482913"}, key="otp-1")
    assert again.id == msg.id and again.state == "sent" and again.attempts == 3
    assert len(list(settings.mailbox_dir.glob("*.eml"))) == 1


async def test_recorded_port_ticket_promo_and_inventory_events_reach_their_recipients(runtime, settings):
    from domains.audit.services import record
    from tests.domains.test_subscription_lifecycle import new_customer

    cust = await new_customer(runtime)
    async with transaction(runtime.db) as s:
        payload = {"customer_id": cust, "msisdn": "98007777", "direction": "port_in"}
        record(s, CTX, "port.approved", "port_request", "PORT-1a2b3c4d", payload)
        record(
            s, CTX, "port.rejected", "port_request", "PORT-1a2b3c4d", {**payload, "reason": "number_locked"}
        )
        record(
            s,
            CTX,
            "ticket.escalated",
            "ticket",
            "TKT-0a0b0c0d",
            {"customer_id": cust, "priority": "high", "state": "in_progress"},
        )
        record(s, CTX, "ticket.opened", "ticket", "TKT-99999999", {"priority": "low", "state": "open"})
        record(
            s,
            CTX,
            "order.promo_rejected",
            "product_order",
            "ORD-999999",
            {"customer_id": cust, "code": "SPRING50", "reason": "expired"},
        )
        record(
            s,
            CTX,
            "inventory.low_watermark",
            "inventory",
            "esim",
            {"resource": "esim", "available": 4, "threshold": 10},
        )
        record(s, CTX, "customer.updated", "customer", cust, {})  # not a message
        # A malformed event (no percent) cannot be written: kept as skipped, the others still go.
        record(s, CTX, "balance.threshold_reached", "Subscription", "SUB-999999", {"customer_id": cust})
    clock.freeze(T0 + timedelta(days=30))  # business time jumped (a test stack) before the pass: still sent
    await notify.dispatch_pending(runtime)
    address = await customer_email(runtime, cust)
    got = {(r.template, r.recipient, r.state): r for r in await outbox(runtime)}
    assert set(got) == {
        ("port_update", address, "sent"),
        ("ticket_update", address, "sent"),
        ("ticket_update", None, "skipped"),  # an internal ticket: no customer to tell
        ("promo_rejected", address, "sent"),
        ("inventory_low", settings.operators_email, "sent"),
        ("data_usage", None, "skipped"),
    }
    ports = await outbox(runtime, template="port_update")
    assert sorted(r.subject for r in ports) == [
        "Number transfer PORT-1a2b3c4d: approved",
        "Number transfer PORT-1a2b3c4d: rejected",
    ]
    assert "number_locked" in next(r.body for r in ports if "rejected" in r.subject)
    assert "SPRING50" in got[("promo_rejected", address, "sent")].subject
    assert "4 esim left" in got[("inventory_low", settings.operators_email, "sent")].subject
    assert "TKT-0a0b0c0d" in got[("ticket_update", address, "sent")].subject
    (broken,) = await outbox(runtime, template="data_usage")
    assert (
        "could not be written"
        in (await rows(runtime, f"SELECT last_error FROM notify.outbox WHERE id = '{broken.id}'"))[0][0]
    )
    # A second pass finds every event handled.
    second = await notify.dispatch_pending(runtime)
    assert second.queued == second.skipped == second.sent == []


async def test_a_price_migration_tells_each_line_once_thirty_days_ahead(runtime):
    from decimal import Decimal

    from domains.catalog.services import add_price
    from domains.subscription import lifecycle
    from tests.domains.test_subscription_lifecycle import OPERATOR, run

    sub_id = await new_line(runtime, "PLAN_M")
    await run(runtime, add_price, OPERATOR, "PLAN_M", "PRICE_PLAN_M_N", Decimal("29.00"), T0, None)
    args = {"offering_id": "PLAN_M", "new_price_id": "PRICE_PLAN_M_N"}
    assert await run(runtime, lifecycle.schedule_price_migration, OPERATOR, **args) == 1
    await notify.dispatch_pending(runtime)
    await run(runtime, lifecycle.schedule_price_migration, OPERATOR, **args)  # a rerun: no second notice
    await notify.dispatch_pending(runtime)
    (notice,) = await outbox(runtime, template="price_migration")
    sub = await line(runtime, sub_id)
    assert notice.customer_id == sub.customer_id and notice.state == "sent"
    assert sub.msisdn in notice.subject
    assert "SGD 29.00" in notice.body and (T0 + timedelta(days=30)).date().isoformat() in notice.body


class _SmtpServer:
    """A minimal SMTP server on a thread: enough of RFC 5321 for smtplib, keeping what it got."""

    def __init__(self) -> None:
        import socketserver
        import threading

        self.received: list[tuple[str, list[str], bytes]] = []
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                def say(line: str) -> None:
                    self.wfile.write(line.encode() + b"\r\n")

                say("220 test ESMTP")
                sender, rcpts = "", []
                while line := self.rfile.readline():
                    cmd = line.decode().strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        say("250 test")
                    elif verb == "MAIL":
                        sender = cmd.split(":", 1)[1].strip(" <>")
                        say("250 ok")
                    elif verb == "RCPT":
                        rcpts.append(cmd.split(":", 1)[1].strip(" <>"))
                        say("250 ok")
                    elif verb == "DATA":
                        say("354 go on")
                        data = b""
                        while (chunk := self.rfile.readline()) != b".\r\n":
                            data += chunk
                        server.received.append((sender, rcpts, data))
                        say("250 queued")
                    elif verb == "QUIT":
                        say("221 bye")
                        return
                    else:
                        say("250 ok")

        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.tcp.daemon_threads = True
        self.port = self.tcp.server_address[1]
        threading.Thread(target=self.tcp.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.tcp.shutdown()
        self.tcp.server_close()


async def test_with_an_smtp_url_mail_goes_to_the_server_and_waits_while_it_is_down(runtime, settings):
    from pydantic import SecretStr

    server = _SmtpServer()
    try:
        settings.smtp_url = SecretStr(f"smtp://127.0.0.1:{server.port}")
        sent = await notify.send(runtime, "login_code", "grace@example.com", {"code": "777000"})
        assert sent.state == "sent"
        ((sender, rcpts, data),) = server.received
        assert sender == "no-reply@bss.local" and rcpts == ["grace@example.com"]
        assert b"777000" in data and b"To: grace@example.com" in data
        assert (settings.mailbox_dir / f"{sent.id}.eml").exists()  # the mailbox keeps a copy
    finally:
        server.close()
    # The server is gone: the next message waits, queued, and no copy pretends it was sent.
    waiting = await notify.send(runtime, "login_code", "grace@example.com", {"code": "777001"})
    assert waiting.state == "queued" and waiting.last_error.startswith("SMTP:")
    assert not (settings.mailbox_dir / f"{waiting.id}.eml").exists()


async def test_real_ticket_promo_and_low_watermark_flows_send_their_messages(runtime, settings):
    from domains.crm.tickets import open_ticket
    from domains.inventory.services import check_low_watermark
    from domains.ordering.services import create_order
    from tests.domains.test_subscription_lifecycle import new_customer

    cust = await new_customer(runtime)
    async with transaction(runtime.db) as s:
        ticket = await open_ticket(
            s,
            CTX,
            ticket_type="information_request",
            subject="Roaming in Japan?",
            description="Does my plan roam?",
            customer_id=cust,
            priority="normal",
        )
        order = await create_order(s, CTX, customer_id=cust, offering_id="PLAN_S", promo_code="NO-SUCH-CODE")
        assert await check_low_watermark(s, CTX, resource="esim", threshold=10**9)
    await notify.dispatch_pending(runtime)
    address = await customer_email(runtime, cust)
    got = {(r.template, r.recipient, r.state) for r in await outbox(runtime)}
    assert got == {
        ("ticket_update", address, "sent"),  # the customer's ticket
        ("promo_rejected", address, "sent"),
        ("inventory_low", settings.operators_email, "sent"),
        ("ticket_update", None, "skipped"),  # the operators' inventory ticket: no customer
    }
    (told,) = await outbox(runtime, template="ticket_update", state="sent")
    assert told.subject == f"Your ticket {ticket.id}: open"
    (promo,) = await outbox(runtime, template="promo_rejected")
    assert "NO-SUCH-CODE" in promo.subject and order.id in promo.body

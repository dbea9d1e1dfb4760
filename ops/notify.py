"""Notifications: audit events become outbox messages, and queued messages are sent.

`dispatch_pending(rt)` is one pass of the worker's notifier loop (run_notifier, started by
worker.py): (1) every recent audit event of a mapped type (domains/notify/rules.EVENT_TEMPLATES)
without a message gets one, keyed by the event's uuid; (2) active lines whose period ends within
three days get a renewal reminder, keyed by line and period end; (3) queued messages that are due
are sent through the sender adapter. No bare cursor over audit ids: BIGSERIAL ids can commit out
of order, so each pass rescans a window of ids below the highest one handled (LOOKBACK_IDS in
domains/notify/services.py) and the outbox's unique source key makes queuing idempotent. A send
that fails (an injected `EMAIL_SEND` fault, an SMTP outage) leaves the message queued with a
growing backoff; it is never dropped. Retry backoff runs on the wall clock, not business time: a frozen test clock must not
stop mail.

`send(rt, template, to, context, customer_id=None)` is the direct door (the portal's login code).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.clock import clock
from core.db import transaction
from core.errors import InvalidInput
from ops.runtime import Runtime

log = logging.getLogger("bss.notify")


@dataclass
class DispatchResult:
    queued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _wall_now() -> datetime:
    return datetime.now(UTC)


def sender_for(rt: Runtime, *, fresh: bool = False) -> Any:
    """One sender per runtime: the mailbox directory, SMTP if configured, the fault rules.
    `fresh`: the fault rules are read again at its next message (then kept for a second), so a
    pass of sends reads them once rather than once per message."""
    sender = rt.extras.get("mail_sender")
    if sender is None:
        from domains.notify.sender import MailSender
        from simulators.faults import FaultRules

        s = rt.settings
        smtp = s.smtp_url.get_secret_value() if s.smtp_url is not None else None
        sender = rt.extras["mail_sender"] = MailSender(
            s.mailbox_dir, smtp_url=smtp, faults=FaultRules(rt.db, ttl=1.0)
        )
    if fresh:
        sender.faults.invalidate()
    return sender


async def queue_from_events(rt: Runtime, result: DispatchResult | None = None) -> DispatchResult:
    from domains.notify.models import SKIPPED

    result = result or DispatchResult()
    while True:
        # A batch's messages are written in one statement, without a savepoint per event (two round
        # trips each); if any event of it fails, the batch rolls back and is written again event by
        # event with one, so that event alone is kept with its reason and the others get theirs.
        try:
            events, rows = await _queue_batch(rt, careful=False)
        except Exception:  # noqa: BLE001 - written again event by event below
            events, rows = await _queue_batch(rt, careful=True)
        for row in rows:
            (result.skipped if row.state == SKIPPED else result.queued).append(row.id)
        if len(events) < 200:
            return result


async def _queue_batch(rt: Runtime, *, careful: bool) -> tuple[list[Any], list[Any]]:
    """One batch of audit events made messages in one transaction: (the events, the rows queued)."""
    from domains.notify import services as notify
    from domains.notify.rules import EVENT_TEMPLATES, OPERATOR_TEMPLATES, event_key

    rows: list[Any] = []
    async with transaction(rt.db) as s:
        events = await notify.unnotified_events(s)
        # The lines and customers of the whole batch, read at once (two statements, not six per event).
        lookups, subs, customers = notify.Lookups(), set(), set()
        for event in events:
            if EVENT_TEMPLATES[event.event_type] not in OPERATOR_TEMPLATES:
                named_subs, named_customers = notify.names_of(event)
                subs |= named_subs
                customers |= named_customers
        await lookups.prefetch(s, subs, customers)
        if not careful:  # every message of the batch in one statement
            drafts = [
                (
                    await notify.draft_for_event(s, event, rt.settings.operators_email, lookups),
                    event_key(event.event_id),
                    event.id,
                )
                for event in events
            ]
            queued = await notify.enqueue_all(s, drafts, sender=rt.settings.mail_from, wall_now=_wall_now())
            return events, queued
        # Event by event, each in a savepoint: an event whose message fails is kept skipped alone.
        for event in events:
            key = event_key(event.event_id)
            try:
                async with s.begin_nested():
                    draft = await notify.draft_for_event(s, event, rt.settings.operators_email, lookups)
                    row = await notify.enqueue(
                        s,
                        draft,
                        source_key=key,
                        sender=rt.settings.mail_from,
                        source_event_id=event.id,
                        wall_now=_wall_now(),
                    )
            except Exception as exc:  # noqa: BLE001 - one bad event must not stop every other message
                log.exception("no message could be written for audit event %s", event.id)
                template = EVENT_TEMPLATES[event.event_type]
                reason = f"the message could not be written: {type(exc).__name__}: {exc}"[:400]
                row = await notify.enqueue(
                    s,
                    notify.Draft(template, None, None, {}, skip_reason=reason),
                    source_key=key,
                    sender=rt.settings.mail_from,
                    source_event_id=event.id,
                    wall_now=_wall_now(),
                )
            if row is not None:
                rows.append(row)
    return events, rows


async def queue_renewal_reminders(rt: Runtime, result: DispatchResult | None = None) -> DispatchResult:
    """One reminder per line and period, RENEWAL_REMINDER_DAYS before the period ends."""
    from domains.notify import services as notify
    from domains.notify.models import SKIPPED
    from domains.notify.rules import reminder_key

    result = result or DispatchResult()
    async with transaction(rt.db) as s:
        lines = await notify.lines_due_for_reminder(s, clock.now())
        keys = {sub.id: reminder_key(sub.id, sub.current_period_end.isoformat()) for sub in lines}
        done = await notify.reminded_keys(s, list(keys.values()))
        due = [sub for sub in lines if keys[sub.id] not in done]
        lookups = notify.Lookups()
        await lookups.prefetch(s, {sub.id for sub in due}, {sub.customer_id for sub in due})
        for sub in due:
            draft = await notify.reminder_draft(s, sub, lookups)
            row = await notify.enqueue(
                s, draft, source_key=keys[sub.id], sender=rt.settings.mail_from, wall_now=_wall_now()
            )
            if row is not None:
                (result.skipped if row.state == SKIPPED else result.queued).append(row.id)
    return result


async def send_due(
    rt: Runtime, *, now: datetime | None = None, result: DispatchResult | None = None
) -> DispatchResult:
    """Send every queued message whose attempt is due at `now` (the wall clock by default)."""
    from domains.notify import services as notify

    result = result or DispatchResult()
    wall = now or _wall_now()
    seen: set[str] = set()
    sender_for(rt, fresh=True)  # the fault rules as they are now
    while True:
        async with transaction(rt.db) as s:
            batch = await notify.claim_due(s, wall, exclude=seen)
            for message in batch:
                seen.add(message.id)
                await _attempt(rt, message, result)
        if not batch:
            return result


async def _attempt(rt: Runtime, message: Any, result: DispatchResult) -> None:
    from domains.notify import services as notify
    from domains.notify.sender import InvalidAddress, SendFailed

    try:
        path = await sender_for(rt).send(message)
    except InvalidAddress as exc:
        notify.mark_failed(message, str(exc))
        result.failed.append(message.id)
        log.warning("message %s to %s cannot be sent: %s", message.id, message.recipient, exc)
    except SendFailed as exc:
        notify.mark_attempt_failed(message, str(exc), _wall_now())
        result.retrying.append(message.id)
        log.warning("message %s: attempt %d failed (%s); it stays queued", message.id, message.attempts, exc)
    else:
        notify.mark_sent(message, path)
        result.sent.append(message.id)


async def dispatch_pending(rt: Runtime, *, now: datetime | None = None) -> DispatchResult:
    """One pass of the notifier: queue messages for new events and due reminders, send the due ones.
    `now` (wall clock) lets a test send retries without waiting out their backoff."""
    result = DispatchResult()
    await queue_from_events(rt, result)
    await queue_renewal_reminders(rt, result)
    await send_due(rt, now=now, result=result)
    return result


async def run_notifier(rt: Runtime, stop: asyncio.Event) -> None:
    """The worker's loop: a dispatch pass every `notify_dispatch_seconds`, until `stop`."""
    while not stop.is_set():
        try:
            result = await dispatch_pending(rt)
            if result.sent or result.retrying or result.failed:
                log.info(
                    "notify: sent %d, retrying %d, failed %d",
                    len(result.sent),
                    len(result.retrying),
                    len(result.failed),
                )
        except Exception:  # noqa: BLE001 - the database may be down: next round
            log.exception("notification dispatch failed")
        try:
            await asyncio.wait_for(stop.wait(), rt.settings.notify_dispatch_seconds)
        except TimeoutError:
            pass


async def send(
    rt: Runtime,
    template: str,
    to: str,
    context: dict[str, Any],
    customer_id: str | None = None,
    *,
    key: str | None = None,
) -> Any:
    """Queue one message that no event stands for (a login code) and try to send it at once; when
    that attempt fails it stays queued and the notifier retries it. `key` makes a resend a no-op."""
    from domains.notify import rules
    from domains.notify import services as notify

    if template not in rules.TEMPLATES:
        raise InvalidInput("notify.template.unknown", f"No message template {template!r}.", template=template)
    if not to or "@" not in to or len(to) > 254:
        raise InvalidInput("notify.recipient.invalid", f"Not an email address: {to!r}.")
    source_key = key or f"direct:{uuid.uuid4()}"
    draft = notify.Draft(template, to.strip(), customer_id, dict(context))
    async with transaction(rt.db) as s:
        row = await notify.enqueue(
            s, draft, source_key=source_key, sender=rt.settings.mail_from, wall_now=_wall_now()
        )
        message_id = row.id if row is not None else None
    if message_id is None:  # that key was sent (or queued) before
        from sqlmodel import select

        from domains.notify.models import OutboxMessage

        async with rt.db() as s:
            return (await s.exec(select(OutboxMessage).where(OutboxMessage.source_key == source_key))).one()
    async with transaction(rt.db) as s:
        message = await notify.claim(s, message_id)
        if message is not None:
            sender_for(rt, fresh=True)
            await _attempt(rt, message, DispatchResult())
    async with rt.db() as s:
        return await notify.get_message(s, message_id)


# ---- reads (API, CLI) --------------------------------------------------------------------------


async def list_messages(rt: Runtime, **filters: Any) -> tuple[int, list[Any]]:
    from domains.notify import services as notify

    async with rt.db() as s:
        return await notify.list_messages(s, **filters)


async def get_message(rt: Runtime, message_id: str) -> Any:
    from domains.notify import services as notify

    async with rt.db() as s:
        return await notify.get_message(s, message_id)

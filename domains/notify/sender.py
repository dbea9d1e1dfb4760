"""The sender adapter: turn an outbox row into an RFC 5322 message and deliver it.

Every message is written to `<BSS_DATA_DIR>/mailbox/` as an `.eml` file (the development mailbox,
and the copy of record); with `BSS_SMTP_URL` it is also handed to that SMTP server first (smtplib,
in a thread). Email faults come from the same fault rules as the network simulators (task type
`EMAIL_SEND`): `fail_always` and `stuck` fail every attempt, `fail_first_attempt` the first one.
A failed send raises `SendFailed`; the caller keeps the message queued and tries again later.
"""

from __future__ import annotations

import asyncio
import os
import random
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from domains.notify.models import OutboxMessage

EMAIL_TASK = "EMAIL_SEND"
SMTP_TIMEOUT_SECONDS = 10.0


class SendFailed(Exception):
    """This attempt did not deliver the message; a later one may."""


class InvalidAddress(SendFailed):
    """The recipient can never be delivered to: retrying is pointless."""


def build_email(message: OutboxMessage) -> EmailMessage:
    from core.clock import clock

    mail = EmailMessage()
    mail["From"] = message.sender
    mail["To"] = message.recipient or ""
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(message.created_at or clock.now())
    domain = message.sender.rsplit("@", 1)[-1].strip(" >") or "bss.local"
    mail["Message-ID"] = make_msgid(idstring=message.id, domain=domain)
    mail["X-BSS-Message-Id"] = message.id
    mail["X-BSS-Template"] = message.template
    if message.customer_id:
        mail["X-BSS-Customer-Id"] = message.customer_id
    mail.set_content(message.body)
    return mail


class MailSender:
    def __init__(self, mailbox: Path, *, smtp_url: str | None = None, faults: Any = None) -> None:
        self.mailbox = Path(mailbox)
        self.smtp_url = smtp_url
        self.faults = faults  # an object with `async for_task(task_type)` (simulators.faults)
        self.rng = random.Random()

    async def send(self, message: OutboxMessage) -> str:
        """Deliver; returns the mailbox file's path. Raises SendFailed."""
        if not message.recipient or "@" not in message.recipient:
            raise InvalidAddress(f"Not an email address: {message.recipient!r}.")
        await self._inject_faults(message.attempts + 1)
        try:
            mail = build_email(message)
        except (ValueError, TypeError) as exc:  # a header the email package refuses
            raise InvalidAddress(f"The message cannot be written: {exc}.") from None
        if self.smtp_url:
            try:
                await asyncio.to_thread(_smtp_send, self.smtp_url, mail)
            except smtplib.SMTPRecipientsRefused as exc:
                raise InvalidAddress(f"The SMTP server refused {message.recipient}: {exc}.") from None
            except (smtplib.SMTPException, OSError) as exc:
                raise SendFailed(f"SMTP: {type(exc).__name__}: {exc}") from None
        try:
            return await asyncio.to_thread(self._write, message.id, mail)
        except OSError as exc:
            raise SendFailed(f"mailbox: {exc}") from None

    def _write(self, message_id: str, mail: EmailMessage) -> str:
        self.mailbox.mkdir(parents=True, exist_ok=True)
        target = self.mailbox / f"{message_id}.eml"
        tmp = target.with_suffix(".eml.tmp")
        tmp.write_bytes(bytes(mail))
        os.replace(tmp, target)  # a reader never sees half a message
        return str(target)

    async def _inject_faults(self, attempt: int) -> None:
        if self.faults is None:
            return
        for fault in await self.faults.for_task(EMAIL_TASK):
            if self.rng.random() >= fault.probability:
                continue
            if fault.fault_type in ("fail_always", "stuck"):
                raise SendFailed(f"email provider unavailable (fault {fault.rule_id})")
            if fault.fault_type == "fail_first_attempt" and attempt <= 1:
                raise SendFailed(f"email provider failed attempt {attempt} (fault {fault.rule_id})")


def _smtp_send(url: str, mail: EmailMessage) -> None:
    """smtp://[user:password@]host[:port] (STARTTLS when offered), smtps:// (implicit TLS)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    implicit_tls = parts.scheme == "smtps"
    port = parts.port or (465 if implicit_tls else 587 if parts.username else 25)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if implicit_tls:
        smtp = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS)
    with smtp:
        if not implicit_tls:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(mail)

"""One-time email login codes for the web doors (the self-serve portal's `/login`).

`request_code` sends a 6-digit code through the notification outbox (ops/notify.py `send`, so in
development it lands in <data dir>/mailbox/). On the self-serve portal a new customer signs up
through the same door: an address that belongs to no customer gets a code too, in a mail that says
it is for creating an account (template `signup_code`); the door answers the same way for both, so
the form tells nobody who is a customer. `verify_code` checks it; with `signup=True` a right code for
an address without a customer answers None (a verified email, no customer yet: the signup funnel).
Codes are stored as an HMAC under the server secret (BSS_PORTAL_SECRET, or
<data dir>/portal-secret generated for development), expire after 10 minutes of business time, and
the fifth wrong try burns the code. Limits: 5 codes an hour per address, 20 per client address, and
20 wrong codes an hour per client address (across addresses); over a limit is a 429
`login.rate_limited` and sends nothing.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

from sqlalchemy import func
from sqlmodel import col, select

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from core.errors import DomainError, InvalidInput, PolicyViolation
from core.settings import Settings
from ops.runtime import Runtime

SECRET_FILE = "portal-secret"
WINDOW = timedelta(hours=1)
CODES_PER_EMAIL = 5
CODES_PER_IP = 20
WRONG_PER_IP = 20
SELFSERVE = "selfserve"


class TooManyAttempts(DomainError):
    status = 429
    kind = "TOO_MANY_REQUESTS"


def portal_secret(settings: Settings) -> bytes:
    if settings.portal_secret is not None:
        return settings.portal_secret.get_secret_value().encode()
    path = Path(settings.data_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_hex(32).encode())
    secret = path.read_bytes().strip()
    if not secret:  # another process created it a moment ago and is still writing
        import time

        time.sleep(0.05)
        secret = path.read_bytes().strip()
    return secret


def normalize_email(value: str) -> str:
    from domains.crm.rules import normalize_email as crm_normalize

    try:
        return crm_normalize(value or "").lower()
    except InvalidInput:
        raise InvalidInput("login.email.invalid", "That is not an email address.") from None


async def customer_for_email(session, email: str) -> str | None:
    """The customer who may sign in with this address: an active (not ended) email medium of a
    customer who is not closed."""
    from domains.crm.models import ContactMedium, Customer

    found = await session.exec(
        select(Customer.id)
        .join(ContactMedium, col(ContactMedium.party_id) == col(Customer.party_id))
        .where(
            ContactMedium.medium_type == "email",
            col(ContactMedium.valid_to).is_(None),
            func.lower(ContactMedium.value) == email.lower(),
            Customer.status != "closed",
        )
        .limit(1)
    )
    return found.first()


async def request_code(
    rt: Runtime, ctx: RequestContext, email: str, ip: str | None, *, portal: str = SELFSERVE
) -> bool:
    """Send a code to `email`: a login code when it belongs to a customer (True), on the self-serve
    portal a signup code otherwise (False); the door must not tell the visitor which."""
    from domains.web import services as web
    from ops import notify

    email = normalize_email(email)
    now = clock.now()
    ip_key = ip or "unknown"
    async with transaction(rt.db) as s:
        by_email = await web.count_recent(s, "code_email", email, now - WINDOW)
        by_ip = await web.count_recent(s, "code_ip", ip_key, now - WINDOW)
        if by_email >= CODES_PER_EMAIL or by_ip >= CODES_PER_IP:
            raise TooManyAttempts(
                "login.rate_limited", "Too many codes were asked for; wait a while and try again."
            )
        await web.count_event(s, "code_email", email, now, WINDOW)
        await web.count_event(s, "code_ip", ip_key, now, WINDOW)
        customer_id = await customer_for_email(s, email)
        if customer_id is None and portal != SELFSERVE:
            return False  # only the self-serve portal signs new customers up
        code, row = await web.issue_code(
            s, portal_secret(rt.settings), portal, email, now, subject=customer_id, ip=ip
        )
        row_id = row.id
    minutes = int(web.CODE_TTL.total_seconds() // 60)
    await notify.send(
        rt,
        "login_code" if customer_id is not None else "signup_code",
        email,
        {"code": code, "minutes": minutes},
        customer_id,
        key=f"login:{portal}:{row_id}",
    )
    return customer_id is not None


async def verify_code(
    rt: Runtime,
    ctx: RequestContext,
    email: str,
    code: str,
    ip: str | None,
    *,
    portal: str = SELFSERVE,
    signup: bool = False,
) -> str | None:
    """The customer id a right code logs in; a wrong, expired or burned code is a 422 with
    `login.code.invalid|expired|burned`; too many wrong codes from one client address, a 429.
    A right signup code (the address had no customer) answers None when `signup` (the email is
    verified, the customer is still to be created), the customer's id when one was created with
    this address since, and otherwise is refused like a wrong code."""
    from domains.audit.services import record
    from domains.web import services as web

    email = normalize_email(email)
    now = clock.now()
    ip_key = ip or "unknown"
    async with transaction(rt.db) as s:
        if await web.count_recent(s, "verify_ip", ip_key, now - WINDOW) >= WRONG_PER_IP:
            raise TooManyAttempts(
                "login.rate_limited", "Too many wrong codes from this address; wait a while and try again."
            )
        check = await web.check_code(s, portal_secret(rt.settings), portal, email, code, now)
        subject = check.subject
        if not check.ok:
            await web.count_event(s, "verify_ip", ip_key, now, WINDOW)
        elif subject is None and portal == SELFSERVE:
            # A signup code: the address may have become a customer's since (another browser).
            subject = await customer_for_email(s, email)
        if check.ok and subject is not None:
            record(
                s, ctx, "customer.logged_in", "customer", subject, {"customer_id": subject, "portal": portal}
            )
    if check.ok and subject is not None:
        return subject
    if check.ok and signup and portal == SELFSERVE:
        return None
    refuse_code(check, "login", "No code is waiting for that address; ask for a new one.")


def refuse_code(check, prefix: str, none_waiting: str) -> NoReturn:
    """Raise why a one-time code was not accepted (`check` from web.check_code), as `<prefix>.code.*`;
    `none_waiting` is the message when no code was waiting. Shared by login and step-up."""
    if check.reason == "expired":
        raise PolicyViolation(f"{prefix}.code.expired", "That code has expired; ask for a new one.")
    if check.reason == "burned":
        raise PolicyViolation(
            f"{prefix}.code.burned", "Too many wrong tries: that code no longer works; ask for a new one."
        )
    if check.reason == "wrong":
        raise PolicyViolation(
            f"{prefix}.code.invalid",
            f"That code is not right; {check.tries_left} tries left.",
            tries_left=check.tries_left,
        )
    raise PolicyViolation(f"{prefix}.code.invalid", none_waiting)

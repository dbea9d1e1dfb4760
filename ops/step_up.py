"""Step-up: a fresh one-time code before a money-moving or destructive action of a signed-in
customer (a top-up charge, renew now, a plan change, terminate, adding, removing or choosing a card).

Built on the login code's primitives (ops/login.py, domains/web): the code is 6 digits, sent through
the notification outbox (ops/notify.send, template `step_up_code`), stored only as an HMAC under the
server secret, expires after 10 minutes of business time, and the fifth wrong try burns it. It is
bound to one browser session: the code's key is `<CUST id>:<session key>` (the door passes its
server-side session id), so a code asked for in one session proves nothing in another. A right code
makes the session "stepped up" for FRESH_FOR (5 minutes); the grant is the used code row itself, so
nothing new is stored and a logout (a new session) ends it.

Limits: 5 codes an hour per customer, and the login's 20 codes an hour per client address; 10 wrong
codes an hour per customer and the login's 20 wrong codes an hour per client address. Over a limit
is a 429 `step_up.rate_limited` and sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from core.errors import Forbidden, PolicyViolation
from ops.login import CODES_PER_IP, WINDOW, WRONG_PER_IP, TooManyAttempts, portal_secret, refuse_code
from ops.runtime import Runtime

PORTAL = "stepup"  # login_code.portal of step-up codes
FRESH_FOR = timedelta(minutes=5)
CODES_PER_CUSTOMER = 5
WRONG_PER_CUSTOMER = 10


class StepUpRequired(Forbidden):
    """The action needs a fresh one-time code first; nothing was done."""


@dataclass(frozen=True)
class StepUpState:
    fresh_until: datetime | None  # the session is stepped up until then
    code_sent: bool  # a code for this session is waiting to be typed

    @property
    def fresh(self) -> bool:
        return self.fresh_until is not None


def _key(customer_id: str, session_key: str) -> str:
    return f"{customer_id}:{session_key}".lower()[:254]  # stored lower-case, like an address


def mask_email(address: str) -> str:
    name, _, domain = address.partition("@")
    return f"{name[:1]}{'•' * max(len(name) - 1, 1)}@{domain}"


async def _customer_email(session, customer_id: str) -> str | None:
    from domains.crm.models import ContactMedium, Customer

    found = await session.exec(
        select(ContactMedium.value)
        .join(Customer, col(ContactMedium.party_id) == col(Customer.party_id))
        .where(
            Customer.id == customer_id,
            ContactMedium.medium_type == "email",
            col(ContactMedium.valid_to).is_(None),
        )
        .limit(1)
    )
    return found.first()


async def request_code(
    rt: Runtime,
    ctx: RequestContext,
    customer_id: str,
    session_key: str,
    ip: str | None,
    *,
    purpose: str = "",
) -> str:
    """Email a step-up code to the customer's address on file for this session; returns the
    address masked (for the page to say where it went)."""
    from domains.web import services as web
    from ops import notify

    if not customer_id or not session_key:
        raise StepUpRequired("step_up.no_session", "Sign in first.")
    now = clock.now()
    ip_key = ip or "unknown"
    async with transaction(rt.db) as s:
        by_customer = await web.count_recent(s, "stepup_code", customer_id, now - WINDOW)
        by_ip = await web.count_recent(s, "code_ip", ip_key, now - WINDOW)
        if by_customer >= CODES_PER_CUSTOMER or by_ip >= CODES_PER_IP:
            raise TooManyAttempts(
                "step_up.rate_limited", "Too many codes were asked for; wait a while and try again."
            )
        email = await _customer_email(s, customer_id)
        if email is None:
            raise PolicyViolation(
                "step_up.no_email",
                "There is no email address on your account to send a code to; contact us to add one.",
            )
        await web.count_event(s, "stepup_code", customer_id, now, WINDOW)
        await web.count_event(s, "code_ip", ip_key, now, WINDOW)
        code, row = await web.issue_code(
            s,
            portal_secret(rt.settings),
            PORTAL,
            _key(customer_id, session_key),
            now,
            subject=customer_id,
            ip=ip,
        )
        row_id = row.id
    minutes = int(web.CODE_TTL.total_seconds() // 60)
    await notify.send(
        rt,
        "step_up_code",
        email,
        {"code": code, "minutes": minutes, "purpose": purpose[:200]},
        customer_id,
        key=f"stepup:{row_id}",
    )
    return mask_email(email)


async def verify(
    rt: Runtime, ctx: RequestContext, customer_id: str, session_key: str, code: str, ip: str | None
) -> datetime:
    """Check the code typed in this session; a right one steps the session up until the returned
    time. Wrong, expired, burned: a 422 `step_up.code.invalid|expired|burned`; over a limit, 429."""
    from domains.audit.services import record
    from domains.web import services as web

    if not customer_id or not session_key:
        raise StepUpRequired("step_up.no_session", "Sign in first.")
    now = clock.now()
    ip_key = ip or "unknown"
    async with transaction(rt.db) as s:
        if (
            await web.count_recent(s, "stepup_wrong", customer_id, now - WINDOW) >= WRONG_PER_CUSTOMER
            or await web.count_recent(s, "verify_ip", ip_key, now - WINDOW) >= WRONG_PER_IP
        ):
            raise TooManyAttempts("step_up.rate_limited", "Too many wrong codes; wait a while and try again.")
        check = await web.check_code(
            s, portal_secret(rt.settings), PORTAL, _key(customer_id, session_key), (code or "")[:12], now
        )
        ok = check.ok and check.subject == customer_id
        if not ok:
            await web.count_event(s, "stepup_wrong", customer_id, now, WINDOW)
            await web.count_event(s, "verify_ip", ip_key, now, WINDOW)
        else:
            record(s, ctx, "customer.stepped_up", "customer", customer_id, {"customer_id": customer_id})
    if ok:
        return now + FRESH_FOR
    refuse_code(check, "step_up", "No code is waiting for this session; ask for a new one.")


async def state(rt: Runtime, customer_id: str, session_key: str) -> StepUpState:
    """Is this session stepped up (a code used within FRESH_FOR), and is a code waiting?"""
    from domains.web.models import ACTIVE, USED, LoginCode

    if not customer_id or not session_key:
        return StepUpState(None, False)
    now = clock.now()
    key = _key(customer_id, session_key)
    async with rt.db() as s:
        used = (
            await s.exec(
                select(LoginCode.used_at)
                .where(
                    LoginCode.portal == PORTAL,
                    LoginCode.email == key,
                    LoginCode.state == USED,
                    col(LoginCode.used_at) > now - FRESH_FOR,
                )
                .order_by(col(LoginCode.used_at).desc())
                .limit(1)
            )
        ).first()
        waiting = (
            await s.exec(
                select(LoginCode.id)
                .where(
                    LoginCode.portal == PORTAL,
                    LoginCode.email == key,
                    LoginCode.state == ACTIVE,
                    col(LoginCode.expires_at) > now,
                )
                .limit(1)
            )
        ).first()
    fresh_until = used + FRESH_FOR if used is not None and used <= now else None
    return StepUpState(fresh_until, waiting is not None)


async def require(rt: Runtime, customer_id: str, session_key: str) -> None:
    """Nothing to do unless this session is stepped up now."""
    if not (await state(rt, customer_id, session_key)).fresh:
        raise StepUpRequired(
            "step_up.required", "This needs a fresh one-time code: ask for one and enter it first."
        )


async def confirm(
    rt: Runtime,
    ctx: RequestContext,
    customer_id: str,
    session_key: str,
    code: str | None,
    ip: str | None,
) -> None:
    """What a door calls before the action: stepped up already, or a right `code` now; else raise
    (StepUpRequired, a wrong code's PolicyViolation, TooManyAttempts) and the action is not done."""
    if (await state(rt, customer_id, session_key)).fresh:
        return
    if not (code or "").strip():
        await require(rt, customer_id, session_key)
    await verify(rt, ctx, customer_id, session_key, code or "", ip)

"""The outbox: queue a message once (by its source key), pick the due ones, record each attempt;
and what an audit event says to whom (the customer's email, or the operators' address)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.errors import NotFound
from core.ids import random_id
from domains.notify import rules
from domains.notify.models import FAILED, QUEUED, SENT, SKIPPED, OutboxMessage

MAX_BACKOFF_SECONDS = 600


@dataclass
class Draft:
    """A message before it is queued: who gets it and what it says (rendered when queued)."""

    template: str
    recipient: str | None
    customer_id: str | None
    context: dict[str, Any] = field(default_factory=dict)
    skip_reason: str | None = None  # no one to send it to: kept as `skipped`, never retried


@dataclass(frozen=True)
class Queued:
    """A message `enqueue` wrote: its id and state (queued or skipped)."""

    id: str
    state: str


async def enqueue(
    session: AsyncSession,
    draft: Draft,
    *,
    source_key: str,
    sender: str,
    source_event_id: int | None = None,
    wall_now: datetime,
) -> Queued | None:
    """Queue `draft` under `source_key`; None when that key was queued before (nothing changes).
    A skipped draft that cannot even be written is kept with its reason and no text."""
    values = _outbox_values(draft, source_key, sender, source_event_id, wall_now)
    stmt = (
        insert(OutboxMessage)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["source_key"])
        .returning(col(OutboxMessage.id))
    )
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    if new_id is None:
        return None
    return Queued(new_id, values["state"])


async def enqueue_all(
    session: AsyncSession,
    drafts: list[tuple[Draft, str, int | None]],
    *,
    sender: str,
    wall_now: datetime,
) -> list[Queued]:
    """`enqueue` of each (draft, source key, source event id), in one statement: the messages
    written, in the order given (a key queued before is left out)."""
    rows = [_outbox_values(draft, key, sender, event_id, wall_now) for draft, key, event_id in drafts]
    if not rows:
        return []
    params = {column: [row[column] for row in rows] for column in _OUTBOX_COLUMNS}
    params["context"] = [json.dumps(context) for context in params["context"]]
    written = {key: message_id for key, message_id in await session.execute(_ENQUEUE_ALL, params)}
    return [Queued(written[row["source_key"]], row["state"]) for row in rows if row["source_key"] in written]


def _outbox_values(
    draft: Draft, source_key: str, sender: str, source_event_id: int | None, wall_now: datetime
) -> dict[str, Any]:
    try:
        subject, body = rules.render(draft.template, draft.context)
    except Exception:
        if not draft.skip_reason:
            raise
        subject, body = "", ""
    now = clock.now()
    return {
        "id": random_id("MSG"),
        "source_key": source_key[:200],
        "source_event_id": source_event_id,
        "template": draft.template,
        "recipient": draft.recipient,
        "sender": sender,
        "subject": subject,
        "body": body,
        "customer_id": draft.customer_id,
        "context": _jsonable(draft.context),
        "state": SKIPPED if draft.skip_reason or not draft.recipient else QUEUED,
        "attempts": 0,
        "last_error": (draft.skip_reason or ("no recipient" if not draft.recipient else None)),
        "created_at": now,
        "next_attempt_at": wall_now,
        "updated_at": now,
    }


_OUTBOX_TYPES = {
    "source_event_id": "integer",
    "context": "text",
    "attempts": "integer",
    "created_at": "timestamptz",
    "next_attempt_at": "timestamptz",
    "updated_at": "timestamptz",
}
_OUTBOX_COLUMNS = (
    "id",
    "source_key",
    "source_event_id",
    "template",
    "recipient",
    "sender",
    "subject",
    "body",
    "customer_id",
    "context",
    "state",
    "attempts",
    "last_error",
    "created_at",
    "next_attempt_at",
    "updated_at",
)
_ENQUEUE_ALL = text(
    f"""
    INSERT INTO notify.outbox ({", ".join(_OUTBOX_COLUMNS)})
    SELECT {", ".join("CAST(m.context AS jsonb)" if c == "context" else f"m.{c}" for c in _OUTBOX_COLUMNS)}
    FROM unnest({", ".join(f"CAST(:{c} AS {_OUTBOX_TYPES.get(c, 'text')}[])" for c in _OUTBOX_COLUMNS)})
        WITH ORDINALITY AS m({", ".join(_OUTBOX_COLUMNS)}, n)
    ORDER BY m.n
    ON CONFLICT (source_key) DO NOTHING
    RETURNING source_key, id
    """
)


async def claim_due(
    session: AsyncSession, wall_now: datetime, *, exclude: set[str] | None = None, limit: int = 20
) -> list[OutboxMessage]:
    """Queued messages whose attempt is due, locked for this transaction; another dispatcher skips
    them. `exclude`: those this pass has tried already."""
    stmt = select(OutboxMessage).where(
        OutboxMessage.state == QUEUED, col(OutboxMessage.next_attempt_at) <= wall_now
    )
    if exclude:
        stmt = stmt.where(col(OutboxMessage.id).not_in(list(exclude)))
    rows = await session.exec(
        stmt.order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(rows)


async def claim(session: AsyncSession, message_id: str) -> OutboxMessage | None:
    """One queued message, locked; None when it is gone, sent, or being sent by someone else."""
    rows = await session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.state == QUEUED)
        .with_for_update(skip_locked=True)
    )
    return rows.first()


def mark_sent(message: OutboxMessage, mailbox_file: str | None) -> None:
    message.attempts += 1
    message.state = SENT
    message.sent_at = message.updated_at = clock.now()
    message.mailbox_file = mailbox_file
    message.last_error = None


def mark_attempt_failed(message: OutboxMessage, error: str, wall_now: datetime) -> None:
    """The message stays queued; the next attempt waits longer each time (up to ten minutes)."""
    message.attempts += 1
    message.last_error = error[:500]
    message.updated_at = clock.now()
    backoff = min(MAX_BACKOFF_SECONDS, 15 * 2 ** min(message.attempts - 1, 10))
    message.next_attempt_at = wall_now + timedelta(seconds=backoff)


def mark_failed(message: OutboxMessage, error: str) -> None:
    """Given up for good: only for a message that can never be sent (an invalid address)."""
    message.attempts += 1
    message.state = FAILED
    message.last_error = error[:500]
    message.updated_at = clock.now()


# ---- reads -------------------------------------------------------------------------------------


async def get_message(session: AsyncSession, message_id: str) -> OutboxMessage:
    message = await session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound("notify.message.not_found", f"No message {message_id}.", id=message_id)
    return message


async def list_messages(
    session: AsyncSession,
    *,
    customer_id: str | None = None,
    recipient: str | None = None,
    state: str | None = None,
    template: str | None = None,
    attempted: bool | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[OutboxMessage]]:
    """Newest first. `attempted`: only messages tried at least once (True) or never (False)."""
    stmt = select(OutboxMessage)
    if customer_id is not None:
        stmt = stmt.where(OutboxMessage.customer_id == customer_id)
    if recipient is not None:
        stmt = stmt.where(func.lower(OutboxMessage.recipient) == recipient.strip().lower())
    if state is not None:
        stmt = stmt.where(OutboxMessage.state == state)
    if template is not None:
        stmt = stmt.where(OutboxMessage.template == template)
    if attempted is not None:
        stmt = stmt.where(col(OutboxMessage.attempts) > 0 if attempted else col(OutboxMessage.attempts) == 0)
    total = (await session.exec(select(func.count()).select_from(stmt.subquery()))).one()
    rows = await session.exec(
        stmt.order_by(col(OutboxMessage.created_at).desc(), col(OutboxMessage.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return total, list(rows)


# ---- from audit events to drafts ---------------------------------------------------------------

_CANDIDATES = text(
    """
    SELECT e.id, e.event_id, e.event_type, e.aggregate_type, e.aggregate_id, e.occurred_at, e.payload
    FROM audit.domain_event AS e
    WHERE e.event_type = ANY(CAST(:types AS varchar[]))
      AND e.id > coalesce(
          (SELECT max(source_event_id) FROM notify.outbox),
          (SELECT max(id) FROM audit.domain_event)  -- a new outbox: from the recent past on
      ) - :lookback
      AND NOT EXISTS (SELECT 1 FROM notify.outbox AS o WHERE o.source_key = 'event:' || e.event_id::text)
    ORDER BY e.id
    LIMIT :limit
    """
)


@dataclass
class EventRow:
    id: int
    event_id: Any
    event_type: str
    aggregate_type: str
    aggregate_id: str
    occurred_at: datetime
    payload: dict[str, Any]


# Audit ids are handed out when an event is written but become visible when its transaction
# commits, so a low id can appear after higher ones were handled. Every pass rescans this many ids
# below the highest one handled: far more than the events written while one transaction is open.
# No time window: business time jumps on a test stack, and a message is late rather than lost.
LOOKBACK_IDS = 10_000


async def unnotified_events(session: AsyncSession, limit: int = 200) -> list[EventRow]:
    """Events that should become a message and have none yet. No bare cursor: ids can commit out
    of order, so a recent window is rescanned and the outbox's unique key says what is done."""
    rows = await session.execute(
        _CANDIDATES, {"types": sorted(rules.EVENT_TEMPLATES), "limit": limit, "lookback": LOOKBACK_IDS}
    )
    return [EventRow(*r) for r in rows]


class Lookups:
    """What drafts read of lines and customers, for a batch of them: `prefetch` reads it for every
    line and customer the batch names in two statements (instead of six per message); what was
    not prefetched is read when asked, by the same statements."""

    def __init__(self) -> None:
        self.lines: dict[str, Any] = {}  # subscription id -> _LINE row, None when there is none
        self.customers: dict[str, tuple[str | None, str | None]] = {}  # id -> (email, given name)

    async def prefetch(
        self, session: AsyncSession, subscription_ids: set[str], customer_ids: set[str]
    ) -> None:
        wanted = sorted(subscription_ids - self.lines.keys())
        if wanted:
            found = {r.id: r for r in await session.execute(_LINES, {"ids": wanted})}
            self.lines.update({sub_id: found.get(sub_id) for sub_id in wanted})
            customer_ids = customer_ids | {r.customer_id for r in found.values()}
        wanted = sorted(customer_ids - self.customers.keys())
        if wanted:
            found = {
                r.id: (r.email, r.given_name) for r in await session.execute(_CUSTOMERS, {"ids": wanted})
            }
            self.customers.update({c: found.get(c, (None, None)) for c in wanted})

    async def line(self, session: AsyncSession, subscription_id: str) -> Any:
        if subscription_id not in self.lines:
            await self.prefetch(session, {subscription_id}, set())
        return self.lines[subscription_id]

    async def customer(self, session: AsyncSession, customer_id: str) -> tuple[str | None, str | None]:
        if customer_id not in self.customers:
            await self.prefetch(session, set(), {customer_id})
        return self.customers[customer_id]


# A line as a message shows it: its plan's name (its offering id when the offering is gone) and its
# eSIM's activation code (None without a profile).
_LINES = text(
    """
    SELECT s.id, s.customer_id, s.msisdn, s.iccid, coalesce(o.name, s.offering_id) AS plan,
        s.price_currency, s.price_amount, s.current_period_end, e.activation_code, e.iccid AS profile
    FROM subscription.subscription AS s
    LEFT JOIN catalog.product_offering AS o ON o.id = s.offering_id
    LEFT JOIN inventory.esim_profile AS e ON e.iccid = s.iccid
    WHERE s.id = ANY(CAST(:ids AS text[]))
    """
)
# A customer's current email (the primary one first, then the newest) and given name.
_CUSTOMERS = text(
    """
    SELECT c.id, i.given_name,
        (SELECT m.value FROM crm.contact_medium AS m
         WHERE m.party_id = c.party_id AND m.medium_type = 'email' AND m.valid_to IS NULL
         ORDER BY m.is_primary DESC, m.valid_from DESC LIMIT 1) AS email
    FROM crm.customer AS c
    LEFT JOIN crm.individual AS i ON i.party_id = c.party_id
    WHERE c.id = ANY(CAST(:ids AS text[]))
    """
)


def names_of(event: EventRow) -> tuple[set[str], set[str]]:
    """The lines and customers a draft of `event` may read (for Lookups.prefetch)."""
    p = event.payload or {}
    agg = event.aggregate_type.lower().replace("_", "")
    subs = {event.aggregate_id} if agg == "subscription" else set()
    subs |= {v for v in (p.get("subscriptionId"), p.get("subscription_id")) if isinstance(v, str) and v}
    customers = {v for v in (p.get("customer_id"), p.get("customerId")) if isinstance(v, str) and v}
    return subs, customers


async def draft_for_event(
    session: AsyncSession, event: EventRow, operators: str, lookups: Lookups | None = None
) -> Draft:
    lookups = lookups or Lookups()
    template = rules.EVENT_TEMPLATES[event.event_type]
    p = event.payload or {}
    ctx: dict[str, Any] = {
        **{k: v for k, v in p.items() if isinstance(k, str)},
        "event_type": event.event_type,
        "occurred_at": event.occurred_at.isoformat(),
        "state": event.event_type.split(".", 1)[1],
    }
    if template in rules.OPERATOR_TEMPLATES:
        return Draft(template, operators, None, ctx)
    agg = event.aggregate_type.lower().replace("_", "")
    customer_id = p.get("customer_id") or p.get("customerId")
    if agg == "productorder":
        ctx["order_id"] = event.aggregate_id
        customer_id = await _order_context(session, event.aggregate_id, ctx) or customer_id
        sub_id = p.get("subscriptionId") or p.get("subscription_id")
        if sub_id:
            await _subscription_context(session, sub_id, ctx, lookups)
    elif agg == "subscription":
        customer_id = await _subscription_context(session, event.aggregate_id, ctx, lookups) or customer_id
    else:
        sub_id = p.get("subscription_id") or p.get("subscriptionId")
        if sub_id:
            customer_id = await _subscription_context(session, sub_id, ctx, lookups) or customer_id
        if agg in ("portrequest", "port"):
            ctx["port_id"] = event.aggregate_id
            if p.get("msisdn"):
                ctx["msisdn"] = p["msisdn"]  # the number being moved, not the line's current one
        if agg == "ticket":
            ctx["ticket_id"] = event.aggregate_id
    _normalise(event.event_type, p, ctx)
    if not customer_id:
        return Draft(template, None, None, ctx, skip_reason="no customer on the event")
    email, name = await lookups.customer(session, customer_id)
    ctx["name"] = name or "there"
    ctx["customer_id"] = customer_id
    if email is None:
        return Draft(template, None, customer_id, ctx, skip_reason="the customer has no email address")
    return Draft(template, email, customer_id, ctx)


def _normalise(event_type: str, p: dict[str, Any], ctx: dict[str, Any]) -> None:
    """Payload keys in the names the templates use."""
    for src, dst in (
        ("periodStart", "period_start"),
        ("periodEnd", "period_end"),
        ("effectiveAt", "effective_at"),
        ("paymentId", "payment_id"),
        ("newAmount", "new_amount"),
        ("fromAmount", "from_amount"),
        ("case_id", "case_id"),
        ("caseId", "case_id"),
    ):
        if src in p:
            ctx[dst] = p[src]
    for key in ("period_start", "period_end", "effective_at"):
        if isinstance(ctx.get(key), str):
            ctx[f"{key.removesuffix('_at')}_date"] = ctx[key][:10]
    if "percent" in p:
        try:
            ctx["percent"] = int(p["percent"])
        except (TypeError, ValueError):
            ctx["percent"] = 0
    if event_type.startswith(("port.", "ticket.")) and p.get("state"):
        ctx["state"] = p["state"]
    ctx.setdefault("currency", "SGD")


async def _order_context(session: AsyncSession, order_id: str, ctx: dict[str, Any]) -> str | None:
    from domains.ordering.models import ProductOrder

    order = await session.get(ProductOrder, order_id)
    if order is None:
        return None
    promo_amount = getattr(order, "promo_amount", None)  # the discounted activation price, if any
    ctx.setdefault("amount", str(promo_amount if promo_amount is not None else order.price_amount))
    ctx["currency"] = order.price_currency
    ctx["plan"] = await _plan_name(session, order.offering_id)
    if order.failure_reason and not ctx.get("reason"):
        ctx["reason"] = order.failure_reason
    return order.customer_id


async def _subscription_context(
    session: AsyncSession, sub_id: str, ctx: dict[str, Any], lookups: Lookups
) -> str | None:
    sub = await lookups.line(session, sub_id)
    if sub is None:
        return None
    ctx.update(
        subscription_id=sub.id,
        msisdn=sub.msisdn,
        iccid=sub.iccid,
        plan=sub.plan,
        currency=sub.price_currency,
        period_end=sub.current_period_end.isoformat(),
        period_end_date=sub.current_period_end.date().isoformat(),
    )
    ctx.setdefault("amount", str(sub.price_amount))
    if sub.profile is not None:
        ctx["activation_code"] = sub.activation_code
    return sub.customer_id


async def _plan_name(session: AsyncSession, offering_id: str) -> str:
    from domains.catalog.models import ProductOffering

    offering = await session.get(ProductOffering, offering_id)
    return offering.name if offering is not None else offering_id


async def customer_email(session: AsyncSession, customer_id: str) -> tuple[str | None, str | None]:
    """The customer's current email (the primary one first) and given name."""
    return await Lookups().customer(session, customer_id)


# ---- scheduled: renewal reminders --------------------------------------------------------------


async def lines_due_for_reminder(session: AsyncSession, now: datetime) -> list[Any]:
    """Active lines whose period ends within RENEWAL_REMINDER_DAYS (and has not ended yet)."""
    from domains.subscription.models import Subscription

    rows = await session.exec(
        select(Subscription)
        .where(
            Subscription.state == "active",
            col(Subscription.current_period_end) > now,
            col(Subscription.current_period_end) <= now + timedelta(days=rules.RENEWAL_REMINDER_DAYS),
        )
        .order_by(col(Subscription.current_period_end))
        .limit(1000)
    )
    return list(rows)


async def reminder_draft(session: AsyncSession, sub: Any, lookups: Lookups | None = None) -> Draft:
    lookups = lookups or Lookups()
    ctx: dict[str, Any] = {}
    await _subscription_context(session, sub.id, ctx, lookups)
    email, name = await lookups.customer(session, sub.customer_id)
    ctx["name"] = name or "there"
    ctx["customer_id"] = sub.customer_id
    if email is None:
        return Draft(
            "renewal_reminder", None, sub.customer_id, ctx, skip_reason="the customer has no email address"
        )
    return Draft("renewal_reminder", email, sub.customer_id, ctx)


async def reminded_keys(session: AsyncSession, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    rows = await session.exec(select(OutboxMessage.source_key).where(col(OutboxMessage.source_key).in_(keys)))
    return set(rows)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)

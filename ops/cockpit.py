"""What the operator cockpit reads: today's figures, customer search and the 360 view, and the
order queue with the stuck work an operator can retry or resolve.

Reads only; every action the cockpit takes goes through the existing operations (ops/orders.py
resolve_task / retry_task, ops/attention.py decide), so it is audited like the API's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import col, select

from core.clock import clock
from core.context import RequestContext
from core.errors import NotFound, PolicyViolation
from ops.runtime import Runtime

CUSTOMER_ID = re.compile(r"^CUST-[0-9a-f]{8}$", re.IGNORECASE)
MSISDN = re.compile(r"^\+?\d{6,15}$")
IN_FLIGHT = ("acknowledged", "in_progress")
SEARCH_MAX = 100


def order_workflow_id(order_id: str) -> str:
    return f"order-{order_id}"


def temporal_ui_link(port: int, workflow_id: str) -> str:
    return f"http://127.0.0.1:{port}/namespaces/default/workflows/{workflow_id}"


# ---------------------------------------------------------------------------------------- home


async def today_figures(rt: Runtime) -> dict[str, Any]:
    """Since midnight (UTC, business clock): orders completed and failed, revenue (approved
    charges, refunds excluded); right now: orders stuck, lines active and blocked, open tickets
    past their SLA."""
    from domains.crm.models import Ticket
    from domains.crm.rules import OPEN_TICKET_STATES
    from domains.ordering.models import ProductOrder
    from domains.payment.charges import Payment
    from domains.subscription.models import Subscription

    now = clock.now()
    since = now.replace(hour=0, minute=0, second=0, microsecond=0)
    async with rt.db() as s:

        async def count(stmt: Any) -> int:
            return int((await s.exec(stmt)).one() or 0)

        completed = await count(
            select(func.count())
            .select_from(ProductOrder)
            .where(ProductOrder.state == "completed", col(ProductOrder.completed_at) >= since)
        )
        failed = await count(
            select(func.count())
            .select_from(ProductOrder)
            .where(ProductOrder.state == "failed", col(ProductOrder.updated_at) >= since)
        )
        lines = dict(
            (await s.exec(select(Subscription.state, func.count()).group_by(Subscription.state))).all()  # type: ignore[call-overload]
        )
        revenue = (
            await s.exec(
                select(func.coalesce(func.sum(Payment.amount), 0)).where(
                    Payment.status == "approved", col(Payment.attempted_at) >= since
                )
            )
        ).one()
        past_sla = await count(
            select(func.count())
            .select_from(Ticket)
            .where(col(Ticket.state).in_(OPEN_TICKET_STATES), col(Ticket.sla_due_at) < now)
        )
        stuck = len([row for row in await _in_flight(s) if row.stuck])
    return {
        "since": since,
        "ordersCompleted": completed,
        "ordersFailed": failed,
        "ordersStuck": stuck,
        "linesActive": int(lines.get("active", 0)),
        "linesBlocked": int(lines.get("blocked", 0)),
        "revenue": Decimal(revenue).quantize(Decimal("0.01")),
        "ticketsPastSla": past_sla,
    }


async def orders_by_hour(rt: Runtime, hours: int = 12) -> list[tuple[datetime, int, int]]:
    """(hour, completed, failed) for the last `hours` hours: the home page's small chart."""
    from domains.ordering.models import ProductOrder

    now = clock.now().replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=hours - 1)
    hour = func.date_trunc("hour", func.coalesce(ProductOrder.completed_at, ProductOrder.updated_at))
    async with rt.db() as s:
        rows = (
            await s.exec(
                select(hour, ProductOrder.state, func.count())  # type: ignore[call-overload]
                .where(
                    col(ProductOrder.state).in_(("completed", "failed")),
                    col(ProductOrder.updated_at) >= start,
                )
                .group_by(hour, ProductOrder.state)
            )
        ).all()
    seen = {(h, state): n for h, state, n in rows}
    out = []
    for i in range(hours):
        h = start + timedelta(hours=i)
        out.append((h, int(seen.get((h, "completed"), 0)), int(seen.get((h, "failed"), 0))))
    return out


# ---------------------------------------------------------------------------------------- search


async def search_customers(rt: Runtime, query: str, limit: int = 50) -> list[Any]:
    """Customers by id (CUST-…), email, MSISDN (any line's, past ones too) or part of the name."""
    from domains.crm import services as crm
    from domains.crm.models import ContactMedium, Customer
    from domains.subscription.models import Subscription

    q = query.strip()[:SEARCH_MAX]
    if not q:
        return []
    limit = max(1, min(limit, 100))
    async with rt.db() as s:
        if CUSTOMER_ID.match(q):
            stmt = select(Customer).where(Customer.id == q[:5].upper() + q[5:].lower())
        elif "@" in q:
            stmt = crm.customer_query(email=q)
        elif MSISDN.match(q):
            digits = q.lstrip("+")
            owners = select(Subscription.customer_id).where(
                or_(Subscription.msisdn == digits, Subscription.msisdn == digits[-8:])
            )
            # A contact number matches with or without its country code (the last 8 digits).
            by_phone = select(ContactMedium.party_id).where(
                ContactMedium.medium_type == "mobile",
                func.right(func.regexp_replace(ContactMedium.value, r"\D", "", "g"), 8) == digits[-8:],
            )
            stmt = select(Customer).where(
                or_(col(Customer.id).in_(owners), col(Customer.party_id).in_(by_phone))
            )
        else:
            stmt = crm.customer_query(name_contains=q)
        rows = list((await s.exec(stmt.limit(limit))).all())
        return await crm.load_customer_views(s, rows)


@dataclass
class Customer360:
    view: Any  # domains.crm.services.CustomerView
    lines: list[dict[str, Any]] = field(default_factory=list)
    orders: list[Any] = field(default_factory=list)
    cases: list[Any] = field(default_factory=list)
    tickets: list[Any] = field(default_factory=list)
    payments: list[Any] = field(default_factory=list)
    payment_methods: list[Any] = field(default_factory=list)
    interactions: list[Any] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)  # notify.OutboxMessage sent or queued to them
    steps: dict[str, list[Any]] = field(default_factory=dict)  # order id -> its provisioning tasks


async def customer_360(rt: Runtime, customer_id: str, limit: int = 20) -> Customer360:
    """Everything about one customer on one page: lines with balances (live first), latest orders
    with their provisioning steps, cases, tickets, payments, cards on file, interactions and the
    messages sent to them."""
    from domains.crm import services as crm
    from domains.crm.models import Interaction, SupportCase, Ticket
    from domains.notify.models import OutboxMessage
    from domains.ordering.models import ProductOrder
    from domains.payment.charges import Payment
    from domains.payment.models import PaymentMethod
    from domains.service_ordering.models import ProvisioningTask
    from domains.subscription import lifecycle
    from domains.subscription.models import Subscription
    from ops.ownership import STATE_ORDER

    if len(customer_id) > 64:
        raise NotFound("customer.not_found", "No such customer.")
    async with rt.db() as s:
        view = await crm.customer_view(s, customer_id)  # NotFound for an unknown id
        sub_ids = list(
            await s.exec(
                select(Subscription.id)
                .where(Subscription.customer_id == customer_id)
                .order_by(col(Subscription.created_at), col(Subscription.id))
            )
        )
        lines = sorted(
            [await lifecycle.status_view(s, sub_id) for sub_id in sub_ids],
            key=lambda v: STATE_ORDER.get(v["state"], 9),
        )

        async def latest(model: Any, when: Any, *where: Any) -> list[Any]:
            return list(
                (await s.exec(select(model).where(*where).order_by(col(when).desc()).limit(limit))).all()
            )

        orders = await latest(ProductOrder, ProductOrder.created_at, ProductOrder.customer_id == customer_id)
        steps: dict[str, list[Any]] = {}
        by_so = {o.service_order_id: o.id for o in orders if o.service_order_id}
        if by_so:
            tasks = await s.exec(
                select(ProvisioningTask)
                .where(col(ProvisioningTask.service_order_id).in_(list(by_so)))
                .order_by(col(ProvisioningTask.created_at), col(ProvisioningTask.id))
            )
            for t in tasks.all():
                steps.setdefault(by_so[t.service_order_id], []).append(t)
        return Customer360(
            view=view,
            lines=lines,
            orders=orders,
            steps=steps,
            interactions=await latest(
                Interaction, Interaction.occurred_at, Interaction.customer_id == customer_id
            ),
            messages=await latest(
                OutboxMessage, OutboxMessage.created_at, OutboxMessage.customer_id == customer_id
            ),
            cases=await latest(SupportCase, SupportCase.opened_at, SupportCase.customer_id == customer_id),
            tickets=await latest(Ticket, Ticket.opened_at, Ticket.customer_id == customer_id),
            payments=await latest(Payment, Payment.attempted_at, Payment.customer_id == customer_id),
            payment_methods=await latest(
                PaymentMethod,
                PaymentMethod.created_at,
                PaymentMethod.customer_id == customer_id,
                col(PaymentMethod.removed_at).is_(None),
            ),
        )


# ---------------------------------------------------------------------------------------- order queue


@dataclass
class QueueRow:
    order: Any  # ProductOrder
    workflow_id: str
    stuck: bool = False
    reason: str | None = None
    task_id: str | None = None  # a stuck provisioning task (ops.orders.resolve_task / retry_task)
    task_type: str | None = None
    ticket_id: str | None = None  # the ticket the stuck work waits on


async def _in_flight(s: Any, limit: int = 200) -> list[QueueRow]:
    from domains.crm.models import Ticket
    from domains.crm.rules import OPEN_TICKET_STATES
    from domains.ordering.models import ProductOrder
    from domains.service_ordering.models import ProvisioningTask

    orders = list(
        (
            await s.exec(
                select(ProductOrder)
                .where(col(ProductOrder.state).in_(IN_FLIGHT))
                .order_by(col(ProductOrder.created_at))
                .limit(limit)
            )
        ).all()
    )
    rows = {o.id: QueueRow(o, order_workflow_id(o.id)) for o in orders}
    by_so = {o.service_order_id: o.id for o in orders if o.service_order_id}
    if by_so:
        tasks = await s.exec(
            select(ProvisioningTask)
            .where(col(ProvisioningTask.service_order_id).in_(list(by_so)), ProvisioningTask.state == "stuck")
            .order_by(col(ProvisioningTask.updated_at))
        )
        for t in tasks.all():
            row = rows[by_so[t.service_order_id]]
            if not row.stuck:
                row.stuck, row.task_id, row.task_type, row.ticket_id = True, t.id, t.task_type, t.ticket_id
                row.reason = (
                    f"{t.task_type} stuck after {t.attempts} attempt(s): {t.last_error or 'no answer'}"
                )
    if rows:
        waiting = await s.exec(
            select(Ticket).where(
                col(Ticket.state).in_(OPEN_TICKET_STATES),
                col(Ticket.waiting_workflow_id).in_([r.workflow_id for r in rows.values()]),
            )
        )
        for t in waiting.all():
            row = rows[t.waiting_workflow_id.removeprefix("order-")]
            if not row.stuck:
                row.stuck, row.ticket_id, row.reason = True, t.id, t.subject
    return list(rows.values())


async def order_queue(rt: Runtime) -> list[QueueRow]:
    """Orders still running, stuck ones first (oldest first within each group)."""
    async with rt.db() as s:
        rows = await _in_flight(s)
    return sorted(rows, key=lambda r: (not r.stuck, r.order.created_at))


async def stuck_work(rt: Runtime, order_id: str) -> QueueRow:
    """The order's stuck work, read again now (never trusted from a form)."""
    from domains.ordering.models import ProductOrder

    async with rt.db() as s:
        order = await s.get(ProductOrder, order_id[:20])
        if order is None:
            raise NotFound("order.not_found", f"No order {order_id}.")
        row = next((r for r in await _in_flight(s) if r.order.id == order.id), None)
    if row is None or not row.stuck:
        raise PolicyViolation("order.not_stuck", f"Order {order.id} has no stuck work to retry or resolve.")
    return row


async def decide_stuck(rt: Runtime, ctx: RequestContext, order_id: str, action: str, note: str) -> QueueRow:
    """Retry or resolve the order's stuck work: a stuck provisioning task, else the ticket its
    workflow waits on. The same operations as `bss som task …` and `bss ticket retry|resolve`."""
    from ops import attention, orders

    row = await stuck_work(rt, order_id)
    if action not in ("retry", "resolve"):
        raise PolicyViolation("order.stuck.action_invalid", "Retry or resolve.")
    if row.task_id is not None:
        if action == "retry":
            await orders.retry_task(rt, ctx, row.task_id)
        else:
            await orders.resolve_task(rt, ctx, row.task_id, note)
    else:
        await attention.decide(rt, ctx, row.ticket_id or "", action, note)
    return row


# ---------------------------------------------------------------------------------------- tickets


async def ticket_queue(rt: Runtime, limit: int = 100) -> list[Any]:
    """Open tickets by SLA due time (overdue first; those without one last), then oldest first."""
    from domains.crm.models import Ticket
    from domains.crm.rules import OPEN_TICKET_STATES

    async with rt.db() as s:
        rows = await s.exec(
            select(Ticket)
            .where(col(Ticket.state).in_(OPEN_TICKET_STATES))
            .order_by(col(Ticket.sla_due_at).asc().nulls_last(), col(Ticket.opened_at), col(Ticket.id))
            .limit(limit)
        )
        return list(rows.all())


async def work_ticket(rt: Runtime, ctx: RequestContext, ticket_id: str, action: str, text: str = "") -> Any:
    """A note, a resolve (with notes) or a close on a ticket. A ticket a workflow waits on is
    answered through the workflow instead (ops/attention.py: retry or resolve), which resolves it."""
    from ops import attention, crm

    ticket = await attention.get_ticket(rt, ticket_id[:16])
    text = text.strip()
    if action == "note":
        return await crm.change_ticket(rt, ctx, ticket.id, notes=[text])
    if ticket.waiting_workflow_id is not None and action in ("retry", "resolve"):
        return await attention.decide(rt, ctx, ticket.id, action, text)
    if action == "resolve":
        return await crm.change_ticket(rt, ctx, ticket.id, trigger="resolve", resolution_notes=text)
    if action == "close":
        return await crm.change_ticket(rt, ctx, ticket.id, trigger="close")
    raise PolicyViolation(
        "ticket.action_invalid", f"{action!r} is not something to do with ticket {ticket.id}."
    )


# ---------------------------------------------------------------------------------------- line actions


@dataclass
class LinePlan:
    """A lifecycle action on a line, spelled out before it is done (the cockpit's confirm step)."""

    sub_id: str
    action: str
    title: str
    effects: list[str]
    fields: dict[str, str]  # what the confirmed post carries again
    key: str | None = None  # idempotency key of a charge: a double submit charges once


async def line_action_plan(rt: Runtime, sub_id: str, action: str, form: dict[str, str]) -> LinePlan:
    """What `action` would do to the line now: the charge, the card, what ends. Refuses what the
    line's state does not allow before anything is shown."""
    import secrets

    from ops import catalog, payment, subscriptions

    line = await subscriptions.status(rt, sub_id)  # NotFound for an unknown line
    sub_id = line["id"]
    if line["state"] == "terminated":
        raise PolicyViolation("subscription.terminated", f"{sub_id} is terminated; nothing more can be done.")
    key = (form.get("key") or "").strip()[:64] or secrets.token_urlsafe(12)
    card = await payment.default_payment_method(rt, line["customerId"])
    card_text = f"{card.brand} •••• {card.last4}" if card else "no card on file (it will be refused)"
    who = f"line {line['msisdn']} ({sub_id}) of {line['customerId']}"
    if action == "topup":
        vas_id = (form.get("vas") or "").strip()[:64]
        if not vas_id:
            raise PolicyViolation("cockpit.topup.vas_missing", "Choose a top-up.")
        vas = await catalog.get_vas(rt, vas_id)
        return LinePlan(
            sub_id,
            action,
            f"top-up {vas.id}",
            [
                f"Charge {vas.currency} {vas.price_amount:.2f} to {card_text}.",
                f"Add {vas.name} ({vas.allowance_quantity} {vas.allowance_unit} of {vas.allowance_type}) to {who}.",
            ],
            {"vas": vas.id},
            key,
        )
    if action == "renew":
        price = line["price"]
        return LinePlan(
            sub_id,
            action,
            "renew now",
            [
                f"Charge {price['currency']} {price['amount']} to {card_text} for the next period now.",
                f"Start a new 30-day period on {who}, with fresh allowances; a blocked line is unblocked.",
            ],
            {},
            key,
        )
    if action == "plan_change":
        offering_id = (form.get("offering") or "").strip()[:64]
        if not offering_id:
            raise PolicyViolation("cockpit.plan_change.offering_missing", "Choose a plan.")
        details = await catalog.offering_details(rt, offering_id)
        price = details.active_price
        at = line["currentPeriodEnd"][:10]
        return LinePlan(
            sub_id,
            action,
            f"plan change to {offering_id}",
            [
                f"Move {who} from {line['offeringId']} to {details.offering.id} at its renewal on {at}.",
                f"From then it renews at {price.currency} {price.amount:.2f}; nothing is charged now."
                if price
                else "That plan has no price on sale now; the change will be refused.",
            ],
            {"offering": details.offering.id},
        )
    if action == "cancel_plan_change":
        return LinePlan(
            sub_id, action, "cancel the plan change", [f"Keep {who} on {line['offeringId']}."], {}
        )
    reason = (form.get("reason") or "").strip()[:200]
    return LinePlan(
        sub_id,
        "terminate",
        "terminate",
        [
            f"End {who} now: it stops working at once and cannot be brought back.",
            f"Its number {line['msisdn']} rests 90 days in quarantine; its eSIM goes back to the pool.",
            "Nothing is refunded." + (f" Reason recorded: {reason}" if reason else ""),
        ],
        {"reason": reason},
    )


async def do_line_action(rt: Runtime, ctx: RequestContext, plan: LinePlan) -> dict[str, Any]:
    from ops import subscriptions

    key = f"cockpit-{plan.key}" if plan.key else None
    if plan.action == "topup":
        return await subscriptions.purchase_vas(rt, ctx, plan.sub_id, plan.fields["vas"], key)
    if plan.action == "renew":
        return await subscriptions.renew_now(rt, ctx, plan.sub_id, key)
    if plan.action == "plan_change":
        return await subscriptions.schedule_plan_change(rt, ctx, plan.sub_id, plan.fields["offering"])
    if plan.action == "cancel_plan_change":
        return await subscriptions.cancel_plan_change(rt, ctx, plan.sub_id)
    return await subscriptions.terminate(rt, ctx, plan.sub_id, plan.fields.get("reason") or None)


# ---------------------------------------------------------------------------------------- catalogue


async def all_offerings(rt: Runtime) -> list[Any]:
    """Every plan, retired ones too, each with all its price rows and its allowances."""
    from domains.catalog import services as catalog

    async with rt.db() as s:
        offerings = list(await s.exec(catalog.offerings_query()))
        return await catalog.details(s, offerings, None)

"""The confirm steps of the cockpit (and the agent's proposals): for tickets, cases, port requests,
promotions and the catalogue, a Plan says exactly what the action will do before anything is done,
from the thing as it is now, and refuses what the action itself would refuse.

Reads only; the confirmed action goes through the existing operations (ops/crm.py, ops/attention.py,
ops/porting.py, ops/promotions.py, ops/catalog.py). ops/workbench.py re-exports these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.errors import Conflict, InvalidInput, NotFound, PolicyViolation
from ops.queues import stuck_task_of
from ops.runtime import Runtime

# ---------------------------------------------------------------------------------------- tickets


@dataclass
class Plan:
    """An action spelled out before it is done (a cockpit confirm step)."""

    title: str
    effects: list[str]
    fields: dict[str, str] = field(default_factory=dict)  # what the confirmed post carries again


async def ticket_plan(rt: Runtime, ticket_id: str, action: str, text: str) -> Plan:
    """The confirm step of a ticket's final or workflow-moving actions: close, and retry / resolve
    of a ticket a workflow waits on."""
    from domains.crm.rules import OPEN_TICKET_STATES
    from ops import attention

    ticket = await attention.get_ticket(rt, ticket_id[:16])
    text = text.strip()
    if action == "close":
        if ticket.state != "resolved":
            raise PolicyViolation(
                "ticket.transition.valid_from_state",
                f"Ticket {ticket.id} is {ticket.state}; only a resolved ticket can be closed.",
            )
        return Plan(
            f"close ticket {ticket.id}",
            [
                f"Close ticket {ticket.id} ({ticket.subject}) for good: a closed ticket cannot be reopened.",
                f"Its resolution stays as written: {ticket.resolution_notes or '(none)'}.",
            ],
            {"action": "close"},
        )
    task = await stuck_task_of(rt, ticket.id)
    if (ticket.waiting_workflow_id is None and task is None) or action not in ("retry", "resolve"):
        raise PolicyViolation("ticket.action_invalid", f"{action!r} needs no confirm on {ticket.id}.")
    if ticket.state not in OPEN_TICKET_STATES:
        raise PolicyViolation("ticket.transition.valid_from_state", f"Ticket {ticket.id} is {ticket.state}.")
    if action == "resolve" and not text:
        raise PolicyViolation(
            "ticket.resolve.requires_resolution_notes", "Say what was done by hand: a note is required."
        )
    if task is not None:
        step = f"the stuck step {task.task_type} (task {task.id}, {task.attempts} attempt(s))"
        if action == "retry":
            effects = [f"Ask the provisioning workflow to run {step} again now."]
        else:
            effects = [
                f"Tell the provisioning workflow that {step} was done by hand, with the note: {text}",
                "The order carries on from there.",
            ]
        effects.append(f"Ticket {ticket.id} is resolved by the workflow once the step is done.")
        return Plan(f"{action} ticket {ticket.id}", effects, {"action": action, "text": text})
    if action == "retry":
        effects = [
            f"Ask the workflow {ticket.waiting_workflow_id} to run its waiting step "
            f"({ticket.waiting_topic or 'the step'}) again now.",
            f"The workflow resolves ticket {ticket.id} itself once it has acted.",
        ]
    else:
        effects = [
            f"Tell the workflow {ticket.waiting_workflow_id} that its waiting step "
            f"({ticket.waiting_topic or 'the step'}) was done by hand, with the note: {text}",
            f"The workflow carries on from there and resolves ticket {ticket.id}.",
        ]
    return Plan(f"{action} ticket {ticket.id}", effects, {"action": action, "text": text})


# ---------------------------------------------------------------------------------------- cases


async def case_close_plan(rt: Runtime, case_id: str, resolution_code: str, note: str) -> Plan:
    from domains.crm.rules import DONE_TICKET_STATES
    from ops import crm

    detail = await crm.case_detail(rt, case_id[:16])
    case = detail.case
    code = resolution_code.strip()[:50]
    if case.state == "closed":
        raise PolicyViolation("case.update.case_is_closed", f"Case {case.id} is closed.")
    if not code:
        raise PolicyViolation(
            "case.close.requires_resolution_code", "Closing a case needs a resolution code."
        )
    pending = [t.id for t in detail.tickets if t.state not in DONE_TICKET_STATES]
    if pending:
        raise PolicyViolation(
            "case.close.requires_all_tickets_resolved",
            f"Case {case.id} still has open tickets: {', '.join(pending)}.",
        )
    effects = [
        f"Close case {case.id} ({case.subject}) of {case.customer_id} with resolution code {code}"
        + ("" if case.state == "resolved" else f", resolving it first (it is {case.state})")
        + ".",
        "A closed case takes no more notes or changes and cannot be reopened.",
    ]
    if note.strip():
        effects.append(f"The note is added to it: {note.strip()}")
    return Plan(
        f"close case {case.id}",
        effects,
        {"action": "close", "resolution_code": code, "text": note.strip()},
    )


# ---------------------------------------------------------------------------------------- porting


async def port_plan(rt: Runtime, port_id: str, action: str, reason: str = "") -> Plan:
    """What approving or rejecting a port request does, from the request as it is now."""
    from domains.porting.rules import FINAL_STATES, MAX_REASON
    from ops import porting

    p = await porting.get(rt, port_id[:20])
    if p["state"] in FINAL_STATES:
        raise PolicyViolation(
            f"port.{action if action in ('approve', 'reject') else 'approve'}.invalid_state",
            f"Port request {p['id']} is {p['state']}; there is nothing left to decide.",
        )
    date = (p["requestedPortDate"] or "")[:10]
    if p["direction"] == "port_in":
        where = (
            f"a new {p['offeringId']} line of {p['customerId']}"
            if p["offeringId"]
            else f"line {p['subscriptionId']} of {p['customerId']} (its present number goes to quarantine)"
        )
        what = f"port-in of {p['msisdn']} from {p['donorCarrier']} to {where}"
    else:
        what = (
            f"port-out of {p['msisdn']} (line {p['subscriptionId']} of {p['customerId']}) "
            f"to {p['recipientCarrier']}"
        )
    if action == "approve":
        if p["state"] != "validated":
            raise PolicyViolation(
                "port.approve.invalid_state",
                f"Only a validated port request can be approved; {p['id']} is {p['state']}.",
            )
        effects = [f"Approve the {what}."]
        if p["direction"] == "port_in":
            effects.append(f"On the port date ({date}) the number joins our pool and moves to that line.")
        else:
            effects.append(
                f"On the port date ({date}) the line is terminated (reason ported_out) and the "
                "number leaves us for good."
            )
        return Plan(f"approve {p['id']}", effects, {"action": "approve"})
    if action == "reject":
        reason = reason.strip()
        if not reason:
            raise PolicyViolation("port.reject.reason_required", "A rejection needs a reason.")
        if len(reason) > MAX_REASON:
            raise InvalidInput("port.reject.reason_too_long", f"A reason is at most {MAX_REASON} characters.")
        return Plan(
            f"reject {p['id']}",
            [
                f"Reject the {what}; it ends as rejected and nothing moves.",
                f"The reason recorded: {reason}",
            ],
            {"action": "reject", "reason": reason},
        )
    raise InvalidInput("cockpit.port.action", "Approve or reject.")


# ---------------------------------------------------------------------------------------- promotions


def describe_promotion(req: Any) -> list[str]:
    """The terms of a new promotion (ops.promotions.NewPromotion) in words."""
    off = (
        f"{req.discount_value}% off"
        if req.discount_type == "percent"
        else f"SGD {Decimal(req.discount_value):.2f} off"
    )
    periods = (
        "every period for as long as the line lives" if req.periods is None else f"{req.periods} period(s)"
    )
    kind = {
        "single_use_shared": "one use in all",
        "multi_use": "any customer, many times",
        "single_use_per_customer": "once per customer",
    }.get(req.code_kind, req.code_kind)
    cap = "no cap on uses" if req.max_uses is None else f"at most {req.max_uses} use(s)"
    window = (f"valid from {req.valid_from:%d %b %Y %H:%M} UTC" if req.valid_from else "valid from now") + (
        f" until {req.valid_to:%d %b %Y %H:%M} UTC" if req.valid_to else ", no end date"
    )
    who = (
        f"only for {', '.join(req.eligible_customer_ids)}"
        if req.eligible_customer_ids
        else "for any customer who types the code"
    )
    return [
        f"Create promotion {req.code} ({req.name}): {off} the plan price for {periods}.",
        f"Code kind: {kind}; {cap}; {window}; {who}.",
        "From then on every new order with this code gets the discount.",
    ]


def check_promotion(req: Any) -> None:
    """The promotion's pure rules, so the confirm step never promises what creating refuses."""
    from domains.catalog import promotions

    promotions._check_terms(
        discount_type=req.discount_type,
        discount_value=req.discount_value,
        periods=req.periods,
        code_kind=req.code_kind,
        max_uses=req.max_uses,
        valid_from=req.valid_from,
        valid_to=req.valid_to,
    )


async def promotion_create_plan(rt: Runtime, req: Any) -> Plan:
    from domains.catalog.promotions import normalise
    from ops import promotions

    check_promotion(req)
    req.code = normalise(req.code)
    try:
        await promotions.show(rt, req.code)
    except NotFound:
        pass
    else:
        raise Conflict("catalog.promotion.code_in_use", f"Promo code {req.code} already exists.")
    return Plan(f"create promotion {req.code}", describe_promotion(req))


async def promotion_exhaust_plan(rt: Runtime, code: str) -> Plan:
    from ops import promotions

    view = await promotions.show(rt, code[:32])
    p = view.promotion
    if p.state == "exhausted" and p.state_reason == "operator":
        raise PolicyViolation("catalog.promotion.exhaust.not_active", f"{p.code} is already exhausted.")
    return Plan(
        f"exhaust promotion {p.code}",
        [
            f"Stop promotion {p.code} ({p.name}) for good: no new order can use it; this cannot be undone.",
            f"It has been used {p.uses} time(s); discounts already granted stay as they are.",
        ],
    )


# ---------------------------------------------------------------------------------------- catalogue


def _window(valid_from: datetime | None, valid_to: datetime | None) -> str:
    start = f"from {valid_from:%d %b %Y %H:%M} UTC" if valid_from else "from now"
    end = f" until {valid_to:%d %b %Y %H:%M} UTC" if valid_to else " with no end"
    return start + end


async def add_offering_plan(
    rt: Runtime,
    *,
    offering_id: str,
    name: str,
    amount: Decimal,
    allowances: dict[str, int],
    price_id: str | None,
    valid_from: datetime | None,
    valid_to: datetime | None,
) -> Plan:
    from domains.catalog import rules

    rules.check_allowances(allowances)
    rules.check_price(amount, valid_from, valid_to)
    try:
        from ops import catalog

        await catalog.offering_details(rt, offering_id)
    except NotFound:
        pass
    else:
        raise PolicyViolation("catalog.offering.already_exists", f"Offering {offering_id} already exists.")
    gives = ", ".join(
        f"{kind} {'unlimited' if q == rules.UNLIMITED else f'{q} {rules.ALLOWANCE_UNITS[kind]}'}"
        for kind, q in allowances.items()
    )
    return Plan(
        f"add plan {offering_id}",
        [
            f"Add the plan {offering_id} ({name}) with {gives} per 30-day period.",
            f"Its price {price_id or 'PRICE_' + offering_id}: {rules.CURRENCY} {amount:.2f}, "
            f"{_window(valid_from, valid_to)}.",
            "It is on sale to every customer in that window.",
        ],
    )


async def add_price_plan(
    rt: Runtime,
    offering_id: str,
    price_id: str,
    amount: Decimal,
    valid_from: datetime | None,
    valid_to: datetime | None,
) -> Plan:
    from domains.catalog import rules
    from ops import catalog

    rules.check_price(amount, valid_from, valid_to)
    details = await catalog.offering_details(rt, offering_id[:64])
    if details.offering.lifecycle_status != rules.ACTIVE:
        raise PolicyViolation(
            "catalog.offering.already_retired", f"Offering {offering_id} is retired; it takes no new prices."
        )
    if any(p.id == price_id for p in details.prices):
        raise PolicyViolation("catalog.price.already_exists", f"Price {price_id} already exists.")
    now = details.active_price
    effects = [
        f"Add the price {price_id} to {details.offering.id}: {rules.CURRENCY} {amount:.2f}, "
        f"{_window(valid_from, valid_to)}.",
        "While windows overlap the cheapest price is the one on sale; lines already sold keep theirs.",
    ]
    if now is not None:
        effects.append(f"On sale now: {now.id} at {now.currency} {now.amount:.2f}.")
    return Plan(f"add price {price_id}", effects)


async def retire_plan(rt: Runtime, offering_id: str) -> Plan:
    from domains.catalog import rules
    from ops import catalog

    details = await catalog.offering_details(rt, offering_id[:64])
    if details.offering.lifecycle_status != rules.ACTIVE:
        raise PolicyViolation(
            "catalog.offering.already_retired", f"Offering {offering_id} is retired already."
        )
    return Plan(
        f"retire plan {details.offering.id}",
        [
            f"Stop selling {details.offering.id} ({details.offering.name}): no new order can choose it.",
            "Lines already on the plan keep it and renew at their price; a retired plan cannot be sold again.",
        ],
    )

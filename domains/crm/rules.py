"""CRM rules that need no database: lifecycles, contact-medium normalisation, KYC hashing, SLAs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from core.errors import InvalidInput
from core.statemachine import StateMachine

CUSTOMER_STATUSES = ("pending", "active", "suspended", "closed")
KYC_STATUSES = ("not_verified", "pending", "verified", "rejected", "expired")
DOCUMENT_TYPES = ("nric", "passport", "fin", "driving_license")
MEDIUM_TYPES = ("email", "mobile", "postal")

# A customer is created active (the reference does the same); pending exists for channels that
# want to create first and activate after an out-of-band check. Closed is terminal.
CUSTOMER_LIFECYCLE = StateMachine(
    "customer",
    [
        ("activate", "pending", "active"),
        ("suspend", "active", "suspended"),
        ("resume", "suspended", "active"),
        ("close", ("pending", "active", "suspended"), "closed"),
    ],
)


def customer_trigger_to(current: str, target: str) -> str:
    """The trigger that moves a customer from `current` to `target` (PATCH sets a status, not a verb)."""
    for (trigger, source), dest in CUSTOMER_LIFECYCLE.table.items():
        if source == current and dest == target:
            return trigger
    # No edge: let the state machine word the refusal with the allowed triggers.
    verb = {"active": "activate", "suspended": "suspend", "closed": "close", "pending": "reset"}[target]
    CUSTOMER_LIFECYCLE.next(verb, current, code="customer.transition.invalid")
    raise AssertionError("unreachable")  # pragma: no cover


TICKET_TYPES = (
    "information_request",
    "service_outage",
    "billing_dispute",
    "configuration",
    "provisioning_exception",
    "payment_exception",
    "inventory_low",  # a pool under its low watermark (domains/inventory check_low_watermark)
)
# In rising order: an SLA breach moves a ticket one step up (workflows/ticket_sla.py).
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
OPEN_TICKET_STATES = ("open", "acknowledged", "in_progress", "pending")
TICKET_STATES = (*OPEN_TICKET_STATES, "resolved", "closed", "cancelled")

# The reference's ticket FSM, except that `resolve` is allowed from every open state: an operator
# who fixes a stuck provisioning task resolves its ticket in one step.
TICKET_LIFECYCLE = StateMachine(
    "ticket",
    [
        ("ack", "open", "acknowledged"),
        ("start", "acknowledged", "in_progress"),
        ("wait", "in_progress", "pending"),
        ("resume", "pending", "in_progress"),
        ("resolve", OPEN_TICKET_STATES, "resolved"),
        ("close", "resolved", "closed"),
        ("reopen", "resolved", "in_progress"),
        ("cancel", OPEN_TICKET_STATES, "cancelled"),
    ],
)
TICKET_TRIGGERS = ("ack", "start", "wait", "resume", "resolve", "close", "reopen", "cancel")
# Audit event of each trigger (COMMON: ticket.opened|assigned|acknowledged|escalated|resolved|closed|cancelled).
TICKET_EVENTS = {
    "ack": "ticket.acknowledged",
    "start": "ticket.started",
    "wait": "ticket.waiting",
    "resume": "ticket.resumed",
    "resolve": "ticket.resolved",
    "close": "ticket.closed",
    "reopen": "ticket.reopened",
    "cancel": "ticket.cancelled",
}

# TMF621 v4 knows no `open`: a ticket the system has taken in is `acknowledged` there; our own
# state travels beside it as `state`.
TMF_TICKET_STATUS = {
    "open": "acknowledged",
    "acknowledged": "acknowledged",
    "in_progress": "inProgress",
    "pending": "pending",
    "resolved": "resolved",
    "closed": "closed",
    "cancelled": "cancelled",
}


def ticket_trigger_for_status(current: str, status: str) -> str:
    """The trigger a TMF621 PATCH of `status` means from `current` (a status is a target, not a verb)."""
    if status in ("acknowledged",):
        return "ack"
    if status in ("inProgress", "in_progress"):
        return {"acknowledged": "start", "pending": "resume", "resolved": "reopen"}.get(current, "start")
    return {"pending": "wait", "resolved": "resolve", "closed": "close", "cancelled": "cancel"}[status]


def escalated_priority(priority: str) -> str:
    """One level up; `urgent` stays urgent."""
    i = TICKET_PRIORITIES.index(priority) if priority in TICKET_PRIORITIES else 1
    return TICKET_PRIORITIES[min(i + 1, len(TICKET_PRIORITIES) - 1)]


# The 12 seeded SLA policies cover three ticket types; the others borrow the nearest one: a stuck
# activation leaves a customer without service, an information request is handled like configuration.
SLA_POLICY_FOR = {
    "provisioning_exception": "service_outage",
    "payment_exception": "billing_dispute",
    "information_request": "configuration",
    "inventory_low": "configuration",
}


def sla_due_at(opened_at: datetime, resolution_minutes: int | None) -> datetime | None:
    return None if resolution_minutes is None else opened_at + timedelta(minutes=resolution_minutes)


# Cases (inventory §4.6).
CASE_STATES = ("open", "in_progress", "pending_customer", "resolved", "closed")
OPEN_CASE_STATES = ("open", "in_progress", "pending_customer")
CASE_PRIORITIES = ("low", "normal", "medium", "high", "critical")
CASE_CATEGORIES = ("account", "billing", "technical", "information", "complaint", "other")
CASE_LIFECYCLE = StateMachine(
    "case",
    [
        ("take", "open", "in_progress"),
        ("await_customer", "in_progress", "pending_customer"),
        ("resume", "pending_customer", "in_progress"),
        ("resolve", ("open", "in_progress"), "resolved"),
        ("close", "resolved", "closed"),
        ("cancel", OPEN_CASE_STATES, "closed"),
    ],
)
CASE_TRIGGERS = ("take", "await_customer", "resume", "resolve", "close", "cancel")
# A case is done with its tickets when each of them is.
DONE_TICKET_STATES = ("resolved", "closed", "cancelled")

# TMF683 interaction direction: who started it. A customer's own channels are inbound.
INBOUND_CHANNELS = ("portal-self-serve", "portal-chat")


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")


def normalize_email(value: str) -> str:
    email = value.strip()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidInput("customer.contact_medium.email_invalid", f"{value!r} is not an email address.")
    return email


def normalize_phone(value: str) -> str:
    """Digits with an optional leading +; spaces, dashes and brackets are how people type them."""
    phone = re.sub(r"[\s\-().]", "", value)
    if not _PHONE.match(phone):
        raise InvalidInput(
            "customer.contact_medium.phone_invalid", f"{value!r} is not a phone number (6 to 15 digits)."
        )
    return phone


def normalize_document_number(number: str) -> str:
    return re.sub(r"[\s\-/.]", "", number).upper()


def document_hash(document_number: str, document_country: str, secret: bytes) -> str:
    """HMAC-SHA256 with the server secret of `normalized|country` (domains/crm/kyc.py): equal
    documents collide, and without the secret a guessed number cannot be tested against it."""
    from domains.crm.kyc import document_hash as keyed

    return keyed(normalize_document_number(document_number), document_country, secret)


def split_name(full_name: str) -> tuple[str, str]:
    """`Ada King Lovelace` -> (`Ada King`, `Lovelace`); a single word is a given name."""
    parts = full_name.split()
    if len(parts) <= 1:
        return (parts[0] if parts else "", "")
    return " ".join(parts[:-1]), parts[-1]

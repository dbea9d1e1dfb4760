"""CRM rules that need no database: lifecycles, contact-medium normalisation, KYC hashing, SLAs."""

from __future__ import annotations

import hashlib
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
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
OPEN_TICKET_STATES = ("open", "acknowledged", "in_progress", "pending")

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


def document_hash(document_number: str, document_country: str) -> str:
    """SHA-256 of `normalized|country`: equal documents collide, the number cannot be read back."""
    normalized = normalize_document_number(document_number)
    return hashlib.sha256(f"{normalized}|{document_country.strip().upper()}".encode()).hexdigest()


def split_name(full_name: str) -> tuple[str, str]:
    """`Ada King Lovelace` -> (`Ada King`, `Lovelace`); a single word is a given name."""
    parts = full_name.split()
    if len(parts) <= 1:
        return (parts[0] if parts else "", "")
    return " ".join(parts[:-1]), parts[-1]

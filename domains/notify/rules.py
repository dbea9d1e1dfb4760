"""Which audit events become which messages, and how a message is written (Jinja templates)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from core.errors import InvalidInput

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

PORT_STATES = ("acknowledged", "validated", "approved", "completed", "rejected", "failed")
TICKET_STATES = (
    "opened",
    "assigned",
    "acknowledged",
    "escalated",
    "resolved",
    "reopened",
    "closed",
    "cancelled",
)

# audit event type -> template; the recipient is the customer's email unless the template is an
# operator's (OPERATOR_TEMPLATES), which goes to the configured operators' address.
EVENT_TEMPLATES: dict[str, str] = {
    "order.completed": "order_confirmation",
    "order.failed": "order_failed",
    "order.promo_rejected": "promo_rejected",
    "subscription.renewed": "renewal_receipt",
    "subscription.renewal_declined": "renewal_declined",
    "subscription.price_migration_scheduled": "price_migration",
    "balance.threshold_reached": "data_usage",
    "inventory.low_watermark": "inventory_low",
    **{f"port.{s}": "port_update" for s in PORT_STATES},
    **{f"ticket.{s}": "ticket_update" for s in TICKET_STATES},
}
OPERATOR_TEMPLATES = frozenset({"inventory_low"})
# Sent by the dispatcher's own scans or by a direct send (ops/notify.send), never from an event.
SCHEDULED_TEMPLATES = frozenset({"renewal_reminder"})
DIRECT_TEMPLATES = frozenset({"login_code", "step_up_code", "signup_code"})
TEMPLATES = frozenset(EVENT_TEMPLATES.values()) | SCHEDULED_TEMPLATES | DIRECT_TEMPLATES

RENEWAL_REMINDER_DAYS = 3
# Threshold crossings of a line's primary allowance that are worth a message (percent used).
DATA_THRESHOLDS = (80, 100)


def event_key(event_uuid: Any) -> str:
    return f"event:{event_uuid}"


def reminder_key(subscription_id: str, period_end_iso: str) -> str:
    return f"renewal_reminder:{subscription_id}:{period_end_iso}"


@cache
def _environment() -> Any:
    from jinja2 import ChainableUndefined, Environment, FileSystemLoader

    # Plain text mail: no HTML escaping; a missing value renders empty rather than failing a send.
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=False,
        undefined=ChainableUndefined,
        keep_trailing_newline=True,
    )


def render(template: str, context: dict[str, Any]) -> tuple[str, str]:
    """(subject, body): a template's first line is `Subject: …`, then a blank line, then the body."""
    if template not in TEMPLATES:
        raise InvalidInput("notify.template.unknown", f"No message template {template!r}.", template=template)
    text = _environment().get_template(f"{template}.txt.j2").render(**context)
    head, _, body = text.partition("\n\n")
    subject = head.removeprefix("Subject:").strip() if head.startswith("Subject:") else ""
    if not subject:
        subject, body = template.replace("_", " ").capitalize(), text
    return " ".join(subject.split())[:300], body.strip() + "\n"


def crossed(before: int, after: int, total: int) -> int | None:
    """The highest threshold (percent of `total`) that usage moved across, from below `before`
    to at or above `after`; None when none was crossed. Integer arithmetic: no rounding surprises."""
    if total <= 0 or after <= before:
        return None
    hit = [p for p in DATA_THRESHOLDS if before * 100 < p * total <= after * 100]
    return max(hit) if hit else None

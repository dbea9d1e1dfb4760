"""What the line's workflow (workflows/subscription.py) takes, returns and is sent: its input,
status, updates and signals. Plain data, defined here once rather than in the workflow module, which
the sandbox imports afresh for every run (each dataclass created there cost ~0.2 ms per run: a line
replayed from its history, or continued as new, paid them all again); workflows/subscription.py
imports them through `imports_passed_through` and re-exports them under their old names.

No `from __future__ import annotations` (see workflows/messages.py): the converter reads these
fields' types, which must be objects."""

from dataclasses import dataclass, field

from core.context import RequestContext
from workflows.line_faults import RenewalProgress


@dataclass
class SubscriptionInput:
    subscription_id: str
    customer_id: str
    offering_id: str
    msisdn: str
    iccid: str
    current_period_end: str = ""
    periods_renewed: int = 0
    renewal_declined: bool = False
    # Test stacks only: business time minus workflow time (ClockChanged); 0 everywhere else.
    clock_skew_seconds: float = 0.0
    # A renewal still being charged when the run continued as new, and whether the PCRF bars the line.
    renewal: RenewalProgress | None = None
    barred: bool = False


@dataclass
class SubscriptionStatus:
    subscription_id: str
    state: str
    state_reason: str | None
    msisdn: str
    offering_id: str
    current_period_end: str
    pending_offering_id: str | None = None
    periods_renewed: int = 0
    day_passes: dict[str, str] = field(default_factory=dict)


# Each update carries who asked (`requested_by`), so the audit rows its activity writes name the
# customer or operator rather than the workflow.


@dataclass
class PurchaseVas:
    vas_offering_id: str
    requested_by: RequestContext | None = None


@dataclass
class SchedulePlanChange:
    offering_id: str
    requested_by: RequestContext | None = None


@dataclass
class CancelPlanChange:
    requested_by: RequestContext | None = None


@dataclass
class RenewNow:
    requested_by: RequestContext | None = None


@dataclass
class Terminate:
    reason: str = "terminated on request"
    requested_by: RequestContext | None = None


@dataclass
class ClockChanged:
    """From `bss clock` on a test stack: the business clock now reads `business_now` (ISO)."""

    business_now: str


@dataclass
class MsisdnChanged:
    """From a port-in to this line (workflows/port.py): the line now has this number."""

    msisdn: str


@dataclass
class Exhausted:
    """From rating: the line has been blocked because this allowance ran out."""

    subscription_id: str
    allowance_type: str = "data"

"""What the order, service order and eSIM workflows take, return and are sent: their inputs,
results, signals and status. Plain data, defined here once rather than in the workflow modules,
which the sandbox imports afresh for every run (creating a dataclass costs ~0.4 ms, a dozen of them
were ~8 ms of worker CPU per signup); the workflow modules import them through
`imports_passed_through` and re-export them under their old names.

No `from __future__ import annotations` here: the converter reads these fields' types in whatever
sandbox receives them, where this module need not be imported (a workflow that imports one of
them through a workflow module, as esim_rearm does), so they must be objects, not strings."""

from dataclasses import dataclass, field

from core.context import RequestContext
from workflows.common import COMPENSATION_PATIENCE_SECONDS


@dataclass
class EsimInput:
    iccid: str
    service_order_id: str
    order_id: str
    customer_id: str
    msisdn: str
    imsi: str
    matching_id: str
    activation_code: str
    offering_id: str
    task_deadline_seconds: float = 10.0
    validity_days: int = 30


@dataclass
class EsimReady:
    """To the parent service order: the profile is prepared and its activation code issued."""

    iccid: str
    activation_code: str


@dataclass
class DeviceEvent:
    """From the SM-DP+ (or a tester playing the device): `downloaded` or `installed`."""

    event: str
    requested_by: RequestContext | None = None


@dataclass
class CancelEsim:
    reason: str


@dataclass
class EsimStatus:
    iccid: str
    state: str
    activation_code: str
    events: list[str] = field(default_factory=list)
    reason: str | None = None
    rule_code: str | None = None


@dataclass
class ServiceOrderInput:
    service_order_id: str
    order_id: str
    customer_id: str
    offering_id: str
    preferred_msisdn: str | None = None
    task_deadline_seconds: float = 10.0
    allowances: dict[str, int] = field(default_factory=dict)


@dataclass
class ServiceOrderResult:
    service_order_id: str
    msisdn: str
    iccid: str
    activation_code: str
    # `failed` (patch FAILS_WITH_RESULT): compensated, the reason and its rule code say why. The
    # parent treats it exactly as it treated the child's failure before.
    state: str = "completed"
    reason: str | None = None
    rule_code: str | None = None


@dataclass
class ServiceOrderStatus:
    service_order_id: str
    state: str
    msisdn: str | None
    iccid: str | None
    stuck_tasks: list[str]
    tickets: dict[str, str]


@dataclass
class OrderInput:
    order_id: str
    customer_id: str
    offering_id: str
    price_id: str
    price_amount: str
    price_currency: str
    msisdn_preference: str | None = None
    promo_code: str | None = None
    # TMF622 requestedStartDate: work waits until then, and the order can be cancelled meanwhile.
    requested_start: str | None = None
    task_deadline_seconds: float = 10.0
    # How long an undo step (refund, network undo) retries alone before it asks an operator.
    compensation_patience_seconds: float = COMPENSATION_PATIENCE_SECONDS
    # A new run for an order whose earlier run was terminated (no compensation ran): undo what the
    # order still holds, found from the database, and fail it (ops.som.undo_abandoned_orders).
    undo_only: bool = False


@dataclass
class OrderResult:
    order_id: str
    state: str
    subscription_id: str | None = None
    msisdn: str | None = None
    iccid: str | None = None
    reason: str | None = None


@dataclass
class CancelOrder:
    reason: str = "cancelled by request"


@dataclass
class OrderStatus:
    order_id: str
    state: str
    som_started: bool
    service_order_id: str | None
    subscription_id: str | None
    reason: str | None

"""Activities of the port workflow (workflows/port.py): the request's state changes, the
clearinghouse, the number entering our pool, the new line's order, the existing line's number
swap, and a ported-out line's end."""

from __future__ import annotations

from dataclasses import dataclass, replace

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.base import ctx_for, domain_errors
from core.context import RequestContext
from core.db import transaction

CLEARINGHOUSE_ERROR = "port.clearinghouse.error"
CLEARINGHOUSE_TIMEOUT = "port.clearinghouse.timeout"


@dataclass
class PortRef:
    port_id: str


@dataclass
class PortView:
    port_id: str
    direction: str
    state: str
    msisdn: str
    donor_carrier: str
    requested_port_date: str
    customer_id: str | None = None
    offering_id: str | None = None
    subscription_id: str | None = None
    order_id: str | None = None
    reason: str | None = None
    # Only on a test stack (BSS_TEST_CLOCK): the worker's business clock when the request was read.
    business_now: str | None = None


@dataclass
class PortMove:
    port_id: str
    trigger: str  # validate | approve | complete | reject | fail
    reason: str | None = None
    reason_code: str | None = None
    requested_by: RequestContext | None = None
    order_id: str | None = None
    subscription_id: str | None = None


@dataclass
class PortCheck:
    port_id: str
    msisdn: str
    donor_carrier: str
    deadline_seconds: float = 30.0


@dataclass
class PortCheckResult:
    accepted: bool
    reason: str | None = None
    reference: str = ""


@dataclass
class PortOrder:
    port_id: str
    attempt: int = 1


@dataclass
class OrderRef:
    order_id: str


@dataclass
class OrderOutcome:
    order_id: str
    state: str
    subscription_id: str | None = None
    reason: str | None = None


@dataclass
class LineNumbers:
    subscription_id: str
    msisdn: str
    imsi: str
    offering_id: str
    state: str


@dataclass
class NumberSwap:
    port_id: str
    subscription_id: str
    new_msisdn: str


def _ctx(requested_by: RequestContext | None = None) -> RequestContext:
    acting = ctx_for(activity.info().workflow_id)
    if requested_by is None:
        return acting
    return replace(requested_by, trace_id=requested_by.trace_id or acting.trace_id)


def _view(row, business_now: str | None = None) -> PortView:
    return PortView(
        port_id=row.id,
        direction=row.direction,
        state=row.state,
        msisdn=row.msisdn,
        donor_carrier=row.donor_carrier,
        requested_port_date=row.requested_port_date.isoformat(),
        customer_id=row.customer_id,
        offering_id=row.offering_id,
        subscription_id=row.subscription_id,
        order_id=row.order_id,
        reason=row.reason,
        business_now=business_now,
    )


class PortingActivities:
    def __init__(self, runtime, clearinghouse) -> None:
        self.rt = runtime
        self.clearinghouse = clearinghouse

    @activity.defn
    @domain_errors
    async def port_view(self, req: PortRef) -> PortView:
        from core.clock import clock
        from domains.porting.services import get_port_request

        async with self.rt.db() as s:
            row = await get_port_request(s, req.port_id)
        return _view(row, clock.now().isoformat() if self.rt.settings.test_clock else None)

    @activity.defn
    @domain_errors
    async def move_port(self, req: PortMove) -> PortView:
        from domains.porting.services import move

        async with transaction(self.rt.db) as s:
            row = await move(
                s,
                _ctx(req.requested_by),
                req.port_id,
                req.trigger,
                reason=req.reason,
                reason_code=req.reason_code,
                order_id=req.order_id,
                subscription_id=req.subscription_id,
            )
            return _view(row)

    @activity.defn
    @domain_errors
    async def validate_port_in(self, req: PortCheck) -> PortCheckResult:
        """Ask the clearinghouse (a remote call: a regular activity). A transient fault is retried;
        a refusal is an answer, not an error."""
        import asyncio

        from simulators.base import NetworkError

        try:
            answer = await asyncio.wait_for(
                self.clearinghouse.validate_port_in(
                    req.port_id, req.msisdn, req.donor_carrier, attempt=activity.info().attempt
                ),
                req.deadline_seconds,
            )
        except TimeoutError:
            raise ApplicationError(
                f"The clearinghouse did not answer within {req.deadline_seconds:.0f} s.",
                type=CLEARINGHOUSE_TIMEOUT,
            ) from None
        except NetworkError as exc:
            raise ApplicationError(
                f"The clearinghouse failed: {exc}", type=CLEARINGHOUSE_ERROR, non_retryable=not exc.retryable
            ) from None
        return PortCheckResult(answer.accepted, answer.reason, answer.reference)

    @activity.defn
    @domain_errors
    async def take_number_in(self, req: PortRef) -> str:
        """The donor's number joins our pool, held for this port until its line takes it.
        Idempotent: a number this port holds already, or one already on the port's line, is left as is."""
        from sqlalchemy import text

        from core.clock import clock
        from domains.inventory import services as inventory
        from domains.inventory.models import Msisdn
        from domains.porting.services import get_port_request

        ctx = _ctx()
        async with transaction(self.rt.db) as s:
            port = await get_port_request(s, req.port_id)
            row = await s.get(Msisdn, port.msisdn, populate_existing=True)
            if row is not None and row.status in ("assigned", "reserved"):
                return row.status  # its line (or its order) has it already
            if row is not None and row.status == "held" and row.reserved_for == port.id:
                return row.status
            await s.flush()
            conn = await s.connection()
            inserted = await conn.execute(
                text(
                    "INSERT INTO inventory.msisdn (msisdn, status, updated_at) VALUES (:m, 'available', :now) "
                    "ON CONFLICT DO NOTHING RETURNING msisdn"
                ),
                {"m": port.msisdn, "now": clock.now()},
            )
            if inserted.first() is not None:
                from domains.audit.services import record

                record(
                    s,
                    ctx,
                    "inventory.msisdn.ported_in",
                    "msisdn",
                    port.msisdn,
                    {
                        "port_request_id": port.id,
                        "donor_carrier": port.donor_carrier,
                        "customer_id": port.customer_id,
                    },
                )
            held = await inventory.hold_msisdn(
                s, ctx, msisdn=port.msisdn, hold_ref=port.id, customer_id=port.customer_id
            )
            return held.status

    @activity.defn
    @domain_errors
    async def place_port_order(self, req: PortOrder) -> str:
        """The new line's order, for the port's customer and plan, naming the ported number (which
        the order takes from the port's hold). Idempotent per attempt (Idempotency-Key)."""
        from domains.porting.services import get_port_request, note_result
        from ops.orders import OrderRequest, create_order

        async with self.rt.db() as s:
            port = await get_port_request(s, req.port_id)
        order = await create_order(
            self.rt,
            _ctx(),
            OrderRequest(
                port.customer_id,
                port.offering_id,
                msisdn_preference=port.msisdn,
                idempotency_key=f"{port.id}-order-{req.attempt}",
            ),
        )
        async with transaction(self.rt.db) as s:
            await note_result(s, req.port_id, order_id=order.id)
        return order.id

    @activity.defn
    @domain_errors
    async def port_order_outcome(self, req: OrderRef) -> OrderOutcome:
        from domains.ordering.models import ProductOrder

        async with self.rt.db() as s:
            order = await s.get(ProductOrder, req.order_id, populate_existing=True)
        if order is None:
            return OrderOutcome(req.order_id, "unknown")
        return OrderOutcome(order.id, order.state, order.subscription_id, order.failure_reason)

    @activity.defn
    @domain_errors
    async def port_line_numbers(self, req: PortRef) -> LineNumbers:
        """The existing line a port-in goes to: its number, IMSI and plan (for the network)."""
        from domains.inventory.models import EsimProfile
        from domains.porting.services import get_port_request
        from domains.subscription.services import get_subscription

        async with self.rt.db() as s:
            port = await get_port_request(s, req.port_id)
            sub = await get_subscription(s, port.subscription_id)
            profile = await s.get(EsimProfile, sub.iccid)
        return LineNumbers(sub.id, sub.msisdn, profile.imsi if profile else "", sub.offering_id, sub.state)

    @activity.defn
    @domain_errors
    async def swap_line_number(self, req: NumberSwap) -> str:
        """The line takes the ported number; its old one goes to quarantine. Returns the old number
        (also after a retry, from the port request)."""
        from domains.porting.services import get_port_request, note_result
        from domains.subscription.number_swap import swap_msisdn

        async with transaction(self.rt.db) as s:
            old = await swap_msisdn(
                s,
                _ctx(),
                subscription_id=req.subscription_id,
                new_msisdn=req.new_msisdn,
                hold_ref=req.port_id,
            )
            if old is None:
                return (await get_port_request(s, req.port_id)).previous_msisdn or ""
            await note_result(s, req.port_id, previous_msisdn=old)
            return old

    @activity.defn
    @domain_errors
    async def end_ported_out_line(self, req: PortRef) -> str:
        """The number leaves for good (`ported_out`), then its line ends through its own workflow
        (reason `ported_out`): the eSIM goes back, the network lets go, nothing is quarantined.
        A line without a running workflow is ended in the database. Returns the line's state."""
        from core.errors import DomainError
        from domains.inventory.services import port_out_msisdn
        from domains.porting.services import get_port_request
        from domains.subscription import lifecycle
        from domains.subscription.services import get_subscription
        from ops import subscriptions

        ctx = _ctx()
        async with transaction(self.rt.db) as s:
            port = await get_port_request(s, req.port_id)
            await port_out_msisdn(s, ctx, msisdn=port.msisdn)
        async with self.rt.db() as s:
            sub = await get_subscription(s, port.subscription_id)
        if sub.state != "terminated":
            try:
                await subscriptions.terminate(self.rt, ctx, sub.id, "ported_out")
            except DomainError as exc:
                async with self.rt.db() as s:
                    ended = (await get_subscription(s, sub.id)).state == "terminated"
                if not ended:
                    if not exc.code.endswith("workflow_not_running"):
                        raise
                    # Its workflow is gone: end the line in the database.
                    async with transaction(self.rt.db) as s:
                        await lifecycle.terminate(s, ctx, subscription_id=sub.id, reason="ported_out")
        async with self.rt.db() as s:
            return (await get_subscription(s, port.subscription_id)).state

"""Activities of the service order (SOM): decomposition state, reservations, task bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass, replace

from temporalio import activity

from activities.base import ctx_for, domain_errors
from core.context import RequestContext
from core.db import transaction


@dataclass
class ReserveResources:
    service_order_id: str
    preferred_msisdn: str | None = None


@dataclass
class Reservation:
    msisdn: str
    iccid: str
    imsi: str
    matching_id: str
    activation_code: str


@dataclass
class ServiceOrderRef:
    service_order_id: str


@dataclass
class ServiceOrderFailed:
    service_order_id: str
    reason: str
    # The profile's own eSIM flow is still running and gives it back as its last step: leave it.
    keep_esim: bool = False
    # The workflow already cancelled the SM-DP+ orders (a regular activity): no network call here.
    smdp_cancelled: bool = False


@dataclass
class OrderLineEnd:
    """End the line an order created, if any: the order failed after the line existed."""

    order_id: str
    reason: str = "order_failed"


@dataclass
class OrderHoldingsRequest:
    order_id: str


@dataclass
class OrderHoldings:
    """What an order whose workflow was terminated may still hold (ids to undo by)."""

    state: str
    service_order_id: str | None = None
    subscription_id: str | None = None
    iccid: str | None = None


@dataclass
class EsimRelease:
    """The eSIM flow gives its profile back as its last step (cancelled or expired)."""

    iccid: str
    service_order_id: str
    reason: str


@dataclass
class TaskTicketClose:
    service_order_id: str
    task_type: str
    note: str
    requested_by: RequestContext | None = None


@dataclass
class TaskStuck:
    service_order_id: str
    order_id: str
    customer_id: str
    task_type: str
    deadline_seconds: float


@dataclass
class TaskResolved:
    service_order_id: str
    task_type: str
    note: str
    requested_by: RequestContext | None = None


@dataclass
class EsimPrepared:
    iccid: str
    service_order_id: str | None = None


@dataclass
class DeviceEventRecord:
    iccid: str
    event: str
    requested_by: RequestContext | None = None


def _ctx(requested_by: RequestContext | None = None):
    """The operator who asked, when an operator did (traced under the workflow's span); else the
    workflow itself."""
    acting = ctx_for(activity.info().workflow_id)
    if requested_by is None:
        return acting
    return replace(requested_by, trace_id=acting.trace_id)


class ServiceOrderActivities:
    def __init__(self, runtime, smdp=None) -> None:
        self.rt = runtime
        self.smdp = smdp

    @activity.defn
    @domain_errors
    async def reserve_resources(self, req: ReserveResources) -> Reservation:
        from domains.inventory import services as inventory
        from domains.service_ordering import services as som

        async with transaction(self.rt.db) as s:
            ctx = _ctx()
            # A held number (a signup's pick) goes to the order naming it; its hold then ends.
            held = req.preferred_msisdn and await inventory.hold_of(s, req.preferred_msisdn)
            msisdn = await inventory.reserve_msisdn(
                s, ctx, reserved_for=req.service_order_id, preferred=req.preferred_msisdn
            )
            esim = await inventory.reserve_esim(s, ctx, reserved_for=req.service_order_id)
            await _check_low_watermarks(s, ctx, self.rt.settings)
            await som.record_reservation(
                s,
                ctx,
                service_order_id=req.service_order_id,
                msisdn=msisdn,
                iccid=esim.iccid,
                imsi=esim.imsi,
                activation_code=esim.activation_code,
            )
            reservation = Reservation(msisdn, esim.iccid, esim.imsi, esim.matching_id, esim.activation_code)
        if held:
            from activities.inventory import complete_signup_hold

            await complete_signup_hold(self.rt, msisdn, req.service_order_id)
        return reservation

    @activity.defn
    @domain_errors
    async def release_resources(self, req: ServiceOrderFailed) -> None:
        """Give back whatever this service order holds; safe when it never reserved anything."""
        from sqlmodel import select

        from domains.inventory import services as inventory
        from domains.inventory.models import EsimProfile, Msisdn
        from domains.service_ordering import services as som

        key = req.service_order_id
        async with self.rt.db() as s:
            held = list(
                (await s.exec(select(EsimProfile.iccid).where(EsimProfile.reserved_for == key))).all()
            )
        # ES2+ CancelOrder first: a profile back in the pool with a new matching id must not still
        # be confirmed at the SM-DP+ under the old one, or the next order for it would be refused.
        # (Workflows from before the `smdp_cancelled` flag: newer ones call cancel_esim_order, a
        # regular activity, first; a local activity makes no network call.)
        for iccid in held if not (req.smdp_cancelled or req.keep_esim) else []:
            if self.smdp is not None:
                await self.smdp.cancel_order(iccid, attempt=activity.info().attempt)
        async with transaction(self.rt.db) as s:
            ctx = _ctx()
            for number in (await s.exec(select(Msisdn.msisdn).where(Msisdn.reserved_for == key))).all():
                await inventory.release_msisdn(s, ctx, msisdn=number, reserved_for=key)
            for iccid in (
                await s.exec(select(EsimProfile.iccid).where(EsimProfile.reserved_for == key))
            ).all():
                if not req.keep_esim:
                    await _release_unless_on_a_line(s, ctx, iccid, key)
            await som.roll_back_service_order(s, ctx, req.service_order_id, req.reason)

    @activity.defn
    @domain_errors
    async def cancel_held_profiles(self, req: ServiceOrderRef) -> list[str]:
        """ES2+ CancelOrder for every profile the service order still holds (and no line owns), so
        a profile going back to the pool is not still confirmed at the SM-DP+ under its old matching
        id. A regular activity: the network call is not made from a local one. While the service
        order holds them nobody else can have them, so this never cancels another order's profile."""
        from sqlmodel import select

        from domains.inventory.models import EsimProfile

        async with self.rt.db() as s:
            rows = await s.exec(
                select(EsimProfile.iccid).where(
                    EsimProfile.reserved_for == req.service_order_id,
                    EsimProfile.assigned_to_subscription_id.is_(None),  # type: ignore[union-attr]
                )
            )
            held = list(rows.all())
        for iccid in held:
            if self.smdp is not None:
                await self.smdp.cancel_order(iccid, attempt=activity.info().attempt)
        return held

    @activity.defn
    @domain_errors
    async def give_back_profile(self, req: EsimRelease) -> bool:
        """The eSIM flow's last step when cancelled or expired: if its service order still holds the
        profile and no line owns it, cancel it at the SM-DP+ and put it back in the pool. A profile
        another order holds now, or a line owns, is left alone (a line's profile is recycled when
        the line ends). True if it went back to the pool."""
        from domains.inventory.models import EsimProfile

        async with self.rt.db() as s:
            profile = await s.get(EsimProfile, req.iccid)
            mine = (
                profile is not None
                and profile.reserved_for == req.service_order_id
                and profile.assigned_to_subscription_id is None
            )
        if not mine:
            return False
        if self.smdp is not None:
            await self.smdp.cancel_order(req.iccid, attempt=activity.info().attempt)
        async with transaction(self.rt.db) as s:
            return await _release_unless_on_a_line(s, _ctx(), req.iccid, req.service_order_id)

    @activity.defn
    @domain_errors
    async def order_holdings(self, req: OrderHoldingsRequest) -> OrderHoldings:
        from sqlmodel import select

        from domains.ordering import services as ordering
        from domains.service_ordering.models import Service
        from domains.subscription.services import subscription_for_order

        async with self.rt.db() as s:
            order = await ordering.get_order(s, req.order_id)
            sub = await subscription_for_order(s, req.order_id)
            iccid = None
            if order.service_order_id:
                cfs = (
                    await s.exec(
                        select(Service).where(
                            Service.service_order_id == order.service_order_id, Service.type == "CFS"
                        )
                    )
                ).first()
                iccid = (cfs.characteristics or {}).get("iccid") if cfs else None
            return OrderHoldings(order.state, order.service_order_id, sub.id if sub else None, iccid)

    @activity.defn
    @domain_errors
    async def end_order_line(self, req: OrderLineEnd) -> str | None:
        """Undo of creating the line, for an order that failed after it: the line is terminated
        (reason `order_failed`) and its number and eSIM go straight back to the pool, available:
        the order never completed, so the customer never had the line and nobody's calls can reach
        the number by mistake (quarantine protects a former owner; there is none). The profile
        stays held by the service order until its eSIM flow has ended (the order's next undo steps
        stop the flow and release it). Idempotent; returns the line's id, None when there is none."""
        from domains.inventory import services as inventory
        from domains.subscription import lifecycle
        from domains.subscription.services import subscription_for_order

        async with transaction(self.rt.db) as s:
            ctx = _ctx()
            sub = await subscription_for_order(s, req.order_id)
            if sub is None:
                return None
            await inventory.unassign_msisdn(s, ctx, msisdn=sub.msisdn, subscription_id=sub.id)
            await inventory.unassign_esim(s, ctx, iccid=sub.iccid, subscription_id=sub.id)
            await s.flush()
            await lifecycle.terminate(s, ctx, subscription_id=sub.id, reason=req.reason)
            return sub.id

    @activity.defn
    @domain_errors
    async def complete_service_order(self, req: ServiceOrderRef) -> None:
        from domains.service_ordering import services as som

        async with transaction(self.rt.db) as s:
            await som.complete_service_order(s, _ctx(), req.service_order_id)

    @activity.defn
    @domain_errors
    async def mark_task_stuck(self, req: TaskStuck) -> str:
        """Flag the task and open a ticket for the operator, once per stuck episode."""
        from domains.crm import tickets as crm
        from domains.service_ordering import services as som

        async with transaction(self.rt.db) as s:
            ctx = _ctx()
            ticket = await crm.open_ticket(
                s,
                ctx,
                ticket_type="provisioning_exception",
                subject=f"{req.task_type} stuck for order {req.order_id}",
                description=(
                    f"Provisioning task {req.task_type} of service order {req.service_order_id} passed its "
                    f"{req.deadline_seconds:.0f} s deadline. Resolve it with `bss prov resolve` or retry it "
                    "with `bss prov retry`; the order waits without losing anything."
                ),
                customer_id=req.customer_id,
                related_order_id=req.order_id,
            )
            await som.task_stuck(
                s, ctx, service_order_id=req.service_order_id, task_type=req.task_type, ticket_id=ticket.id
            )
        from ops.crm import start_sla_timer

        await start_sla_timer(self.rt, ticket.id, ticket.customer_id)  # idempotent; the sweep catches a miss
        return ticket.id

    @activity.defn
    @domain_errors
    async def mark_task_resolved(self, req: TaskResolved) -> None:
        from domains.service_ordering import services as som

        async with transaction(self.rt.db) as s:
            ctx = _ctx(req.requested_by)
            task = await som.task_resolved(
                s, ctx, service_order_id=req.service_order_id, task_type=req.task_type, note=req.note
            )
            await _close_ticket(s, ctx, task.ticket_id, f"[resolve] {req.note}")

    @activity.defn
    @domain_errors
    async def close_task_ticket(self, req: TaskTicketClose) -> None:
        """A stuck task that ended (retried to success, or cancelled with its order): its ticket is
        resolved, under the operator who asked for the retry when one did."""
        from domains.service_ordering import services as som

        async with transaction(self.rt.db) as s:
            task = await som.get_task(s, service_order_id=req.service_order_id, task_type=req.task_type)
            await _close_ticket(s, _ctx(req.requested_by), task.ticket_id, req.note)

    @activity.defn
    @domain_errors
    async def mark_esim_prepared(self, req: EsimPrepared) -> None:
        from domains.inventory import services as inventory

        async with transaction(self.rt.db) as s:
            await inventory.mark_esim_prepared(
                s, _ctx(), iccid=req.iccid, for_service_order=req.service_order_id
            )

    @activity.defn
    @domain_errors
    async def record_device_event(self, req: DeviceEventRecord) -> None:
        from domains.inventory import services as inventory

        mark = inventory.mark_esim_downloaded if req.event == "downloaded" else inventory.mark_esim_installed
        async with transaction(self.rt.db) as s:
            await mark(s, _ctx(req.requested_by), iccid=req.iccid)


async def _check_low_watermarks(s, ctx, settings) -> None:
    from domains.inventory import services as inventory

    await inventory.check_low_watermark(s, ctx, resource="msisdn", threshold=settings.low_watermark_msisdn)
    await inventory.check_low_watermark(s, ctx, resource="esim", threshold=settings.low_watermark_esim)


async def _release_unless_on_a_line(s, ctx, iccid: str, key: str) -> bool:
    from domains.inventory import services as inventory
    from domains.inventory.models import EsimProfile

    profile = await s.get(EsimProfile, iccid)
    if profile is None or profile.assigned_to_subscription_id is not None:
        return False
    return await inventory.release_esim(s, ctx, iccid=iccid, reserved_for=key)


async def _close_ticket(s, ctx, ticket_id: str | None, note: str) -> None:
    from domains.crm import rules, tickets

    if not ticket_id:
        return
    ticket = await tickets.get_ticket(s, ticket_id, for_update=True)
    if ticket.state in rules.OPEN_TICKET_STATES:
        await tickets.resolve_ticket(s, ctx, ticket_id, note.strip() or "task completed")

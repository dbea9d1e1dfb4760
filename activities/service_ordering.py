"""Activities of the service order (SOM): decomposition state, reservations, task bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.base import ctx_for, domain_errors
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


@dataclass
class EsimPrepared:
    iccid: str
    service_order_id: str | None = None


@dataclass
class DeviceEventRecord:
    iccid: str
    event: str


def _ctx():
    return ctx_for(activity.info().workflow_id)


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
            msisdn = await inventory.reserve_msisdn(
                s, ctx, reserved_for=req.service_order_id, preferred=req.preferred_msisdn
            )
            esim = await inventory.reserve_esim(s, ctx, reserved_for=req.service_order_id)
            await som.record_reservation(
                s,
                ctx,
                service_order_id=req.service_order_id,
                msisdn=msisdn,
                iccid=esim.iccid,
                imsi=esim.imsi,
                activation_code=esim.activation_code,
            )
            return Reservation(msisdn, esim.iccid, esim.imsi, esim.matching_id, esim.activation_code)

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
        for iccid in held:
            if self.smdp is not None:
                await self.smdp.cancel_order(iccid, attempt=activity.info().attempt)
        async with transaction(self.rt.db) as s:
            ctx = _ctx()
            for number in (await s.exec(select(Msisdn.msisdn).where(Msisdn.reserved_for == key))).all():
                await inventory.release_msisdn(s, ctx, msisdn=number, reserved_for=key)
            for iccid in (
                await s.exec(select(EsimProfile.iccid).where(EsimProfile.reserved_for == key))
            ).all():
                await inventory.release_esim(s, ctx, iccid=iccid, reserved_for=key)
            await som.roll_back_service_order(s, ctx, req.service_order_id, req.reason)

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
            return ticket.id

    @activity.defn
    @domain_errors
    async def mark_task_resolved(self, req: TaskResolved) -> None:
        from domains.service_ordering import services as som

        async with transaction(self.rt.db) as s:
            await som.task_resolved(
                s, _ctx(), service_order_id=req.service_order_id, task_type=req.task_type, note=req.note
            )

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
            await mark(s, _ctx(), iccid=req.iccid)

"""Service order services: decomposition, reservation, provisioning task bookkeeping, activation.

Called from the service order workflow's activities, which may run twice: each write checks where
the row already is and does nothing when the work is done."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.db import insert_unless_exists
from core.errors import NotFound, PolicyViolation
from core.ids import next_ids
from domains.audit.services import record
from domains.service_ordering import rules
from domains.service_ordering.models import (
    ProvisioningTask,
    Service,
    ServiceOrder,
    ServiceOrderItem,
    ServiceStateHistory,
)

SO = "ServiceOrder"
SVC = "Service"
TASK = "ProvisioningTask"
TASK_EVENTS = {
    "start": "started",
    "complete": "completed",
    "fail": "failed",
    "stuck": "stuck",
    "resolve": "resolved",
}


# ---- reads -------------------------------------------------------------------------------------


async def get_service_order(
    session: AsyncSession, service_order_id: str, *, for_update: bool = False
) -> ServiceOrder:
    stmt = select(ServiceOrder).where(ServiceOrder.id == service_order_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    so = (await session.exec(stmt)).first()
    if so is None:
        raise NotFound(
            "service_order.not_found",
            f"No service order {service_order_id}.",
            service_order_id=service_order_id,
        )
    return so


async def service_order_for_order(session: AsyncSession, order_id: str) -> ServiceOrder | None:
    return (await session.exec(select(ServiceOrder).where(ServiceOrder.order_id == order_id))).first()


async def list_service_orders(
    session: AsyncSession,
    *,
    state: str | None = None,
    customer_id: str | None = None,
    order_id: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[ServiceOrder], int]:
    where: list[Any] = []
    if state is not None:
        where.append(ServiceOrder.state == state)
    if customer_id is not None:
        where.append(ServiceOrder.customer_id == customer_id)
    if order_id is not None:
        where.append(ServiceOrder.order_id == order_id)
    total = (await session.exec(select(func.count()).select_from(ServiceOrder).where(*where))).one()
    rows = await session.exec(
        select(ServiceOrder)
        .where(*where)
        .order_by(col(ServiceOrder.created_at).desc(), col(ServiceOrder.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows), int(total)


async def get_service(session: AsyncSession, service_id: str) -> Service:
    service = await session.get(Service, service_id)
    if service is None:
        raise NotFound("service.not_found", f"No service {service_id}.", service_id=service_id)
    return service


async def list_services(
    session: AsyncSession, *, service_order_id: str | None = None, subscription_id: str | None = None
) -> list[Service]:
    stmt = select(Service).order_by(col(Service.id))
    if service_order_id is not None:
        stmt = stmt.where(Service.service_order_id == service_order_id)
    if subscription_id is not None:
        stmt = stmt.where(Service.subscription_id == subscription_id)
    return list(await session.exec(stmt))


async def service_history(session: AsyncSession, service_id: str) -> list[ServiceStateHistory]:
    await get_service(session, service_id)
    rows = await session.exec(
        select(ServiceStateHistory)
        .where(ServiceStateHistory.service_id == service_id)
        .order_by(col(ServiceStateHistory.id))
    )
    return list(rows)


async def list_tasks(
    session: AsyncSession, *, state: str | None = None, service_order_id: str | None = None
) -> list[ProvisioningTask]:
    stmt = select(ProvisioningTask).order_by(col(ProvisioningTask.id))
    if state is not None:
        stmt = stmt.where(ProvisioningTask.state == state)
    if service_order_id is not None:
        stmt = stmt.where(ProvisioningTask.service_order_id == service_order_id)
    return list(await session.exec(stmt))


async def get_task(
    session: AsyncSession, *, service_order_id: str, task_type: str, for_update: bool = False
) -> ProvisioningTask:
    stmt = select(ProvisioningTask).where(
        ProvisioningTask.service_order_id == service_order_id, ProvisioningTask.task_type == task_type
    )
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    task = (await session.exec(stmt)).first()
    if task is None:
        raise NotFound(
            "provisioning_task.not_found",
            f"No {task_type} task on service order {service_order_id}.",
            service_order_id=service_order_id,
            task_type=task_type,
        )
    return task


# ---- decomposition and reservation --------------------------------------------------------------


async def create_service_order(
    session: AsyncSession, ctx: RequestContext, *, order_id: str, customer_id: str, offering_id: str
) -> ServiceOrder:
    """Decompose a product order: one CFS MobileBroadband over Data and Voice RFS, all designed,
    and the four provisioning tasks pending. A second call for the same order returns the first."""
    from domains.catalog.services import service_mapping

    mapping = await service_mapping(session, offering_id)
    # Every id of the decomposition in one round trip; the rows go in at the end in one flush.
    ids = await next_ids(
        session, "SO", *(["SVC"] * (1 + len(mapping.rfs_spec_ids))), *(["PTK"] * len(rules.TASK_TYPES))
    )
    so_id, svc_ids, task_ids = (
        ids[0],
        ids[1 : 2 + len(mapping.rfs_spec_ids)],
        ids[2 + len(mapping.rfs_spec_ids) :],
    )
    now = clock.now()
    so = ServiceOrder(
        id=so_id,
        order_id=order_id,
        customer_id=customer_id,
        offering_id=offering_id,
        state=rules.ACKNOWLEDGED,
        created_at=now,
        updated_at=now,
    )
    # The unique order_id makes a second call (or a concurrent one) find the first.
    if not await insert_unless_exists(session, so):
        winner = await service_order_for_order(session, order_id)
        if winner is None:
            raise NotFound("service_order.not_found", f"No service order for order {order_id}.")
        return winner

    base = {"orderId": order_id, "customerId": customer_id, "offeringId": offering_id}
    cfs = _design(session, so, svc_ids[0], mapping.cfs_spec_id, "CFS", None, base)
    services = [cfs] + [
        _design(session, so, svc_id, spec_id, "RFS", cfs.id, {})
        for svc_id, spec_id in zip(svc_ids[1:], mapping.rfs_spec_ids, strict=True)
    ]
    # The services first (one INSERT): their item, histories and tasks point at them; the flush
    # orders tables by relationships only, and these models have none.
    await session.flush()
    for service in services:
        session.add(
            ServiceStateHistory(service_id=service.id, from_state=None, to_state=rules.DESIGNED, at=now)
        )
    session.add(
        ServiceOrderItem(service_order_id=so.id, action="add", spec_id=cfs.spec_id, service_id=cfs.id)
    )
    for task_id, task_type in zip(task_ids, rules.TASK_TYPES, strict=True):
        task = ProvisioningTask(
            id=task_id,
            service_order_id=so.id,
            service_id=cfs.id,
            task_type=task_type,
            state=rules.PENDING,
            created_at=now,
            updated_at=now,
        )
        session.add(task)
        record(
            session,
            ctx,
            "provisioning.task.created",
            TASK,
            task.id,
            {"serviceOrderId": so.id, "taskType": task_type},
        )
    record(session, ctx, "service_order.acknowledged", SO, so.id, {**base, "cfsId": cfs.id})
    return so


def _design(
    session: AsyncSession,
    so: ServiceOrder,
    service_id: str,
    spec_id: str,
    kind: str,
    parent_id: str | None,
    characteristics: dict[str, Any],
) -> Service:
    now = clock.now()
    service = Service(
        id=service_id,
        service_order_id=so.id,
        spec_id=spec_id,
        name=rules.service_name(spec_id),
        type=kind,
        parent_service_id=parent_id,
        state=rules.DESIGNED,
        characteristics=characteristics,
        created_at=now,
        updated_at=now,
    )
    session.add(service)
    return service


async def _move_service(
    session: AsyncSession, ctx: RequestContext, service: Service, trigger: str, *, reason: str | None = None
) -> None:
    target = rules.service_lifecycle.next(trigger, service.state)
    now = clock.now()
    session.add(
        ServiceStateHistory(
            service_id=service.id, from_state=service.state, to_state=target, at=now, reason=reason
        )
    )
    record(session, ctx, f"service.{target}", SVC, service.id, {"from": service.state, "reason": reason})
    service.state = target
    service.updated_at = now
    if target == rules.ACTIVATED:
        service.activated_at = now
    session.add(service)


async def _move_order(
    session: AsyncSession, ctx: RequestContext, so: ServiceOrder, trigger: str, payload: dict[str, Any]
) -> None:
    target = rules.service_order_lifecycle.next(trigger, so.state)
    record(session, ctx, f"service_order.{target}", SO, so.id, {"from": so.state, **payload})
    so.state = target
    so.updated_at = clock.now()
    session.add(so)


async def record_reservation(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    service_order_id: str,
    msisdn: str,
    iccid: str,
    imsi: str,
    activation_code: str,
) -> ServiceOrder:
    """The number and eSIM are held in inventory: the services carry them and move to reserved."""
    so = await get_service_order(session, service_order_id, for_update=True)
    identity = {"msisdn": msisdn, "iccid": iccid, "imsi": imsi, "activation_code": activation_code}
    for service in await list_services(session, service_order_id=so.id):
        if service.state == rules.RESERVED:
            held = service.characteristics.get("msisdn"), service.characteristics.get("iccid", iccid)
            if held != (msisdn, iccid):
                raise PolicyViolation(
                    "service_order.reservation.conflict",
                    f"Service {service.id} already holds {held[0]}, not {msisdn}.",
                    service_id=service.id,
                )
            continue
        service.characteristics = {
            **service.characteristics,
            **rules.reservation_characteristics(service.name, **identity),
        }
        await _move_service(session, ctx, service, "reserve")
    if so.state == rules.ACKNOWLEDGED:
        so.started_at = clock.now()
        await _move_order(session, ctx, so, "start", {"msisdn": msisdn, "iccid": iccid})
    elif so.state != rules.IN_PROGRESS:
        rules.service_order_lifecycle.next("start", so.state)
    await session.flush()
    return so


async def attach_subscription(
    session: AsyncSession, ctx: RequestContext, service_order_id: str, subscription_id: str
) -> list[Service]:
    so = await get_service_order(session, service_order_id, for_update=True)
    services = await list_services(session, service_order_id=so.id)
    changed = [s for s in services if s.subscription_id != subscription_id]
    for service in changed:
        service.subscription_id = subscription_id
        service.updated_at = clock.now()
        session.add(service)
    if changed:
        record(
            session,
            ctx,
            "service_order.subscription_attached",
            SO,
            so.id,
            {"subscriptionId": subscription_id},
        )
        await session.flush()
    return services


# ---- provisioning tasks -------------------------------------------------------------------------


async def _transition(
    session: AsyncSession, service_order_id: str, task_type: str, when_state: str, **values: Any
) -> ProvisioningTask | None:
    """UPDATE the task with `values` if it is in `when_state`; the task as updated, else None."""
    statement = (
        update(ProvisioningTask)
        .where(
            col(ProvisioningTask.service_order_id) == service_order_id,
            col(ProvisioningTask.task_type) == task_type,
            col(ProvisioningTask.state) == when_state,
        )
        .values(**values)
        .returning(ProvisioningTask)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    return (await session.execute(statement)).scalar_one_or_none()


def _task_event(
    session: AsyncSession,
    ctx: RequestContext,
    task: ProvisioningTask,
    trigger: str,
    from_state: str,
    payload: dict[str, Any],
) -> None:
    record(
        session,
        ctx,
        f"provisioning.task.{TASK_EVENTS[trigger]}",
        TASK,
        task.id,
        {"serviceOrderId": task.service_order_id, "taskType": task.task_type, "from": from_state, **payload},
    )


async def _move_task(
    session: AsyncSession,
    ctx: RequestContext,
    task: ProvisioningTask,
    trigger: str,
    *,
    code: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    target = rules.task_lifecycle.next(trigger, task.state, code=code)
    now = clock.now()
    _task_event(session, ctx, task, trigger, task.state, payload or {})
    task.state = target
    task.updated_at = now
    if target == rules.COMPLETED:
        task.completed_at = now
    session.add(task)


async def task_started(
    session: AsyncSession, ctx: RequestContext, *, service_order_id: str, task_type: str
) -> int:
    """Count one attempt and return its number. Called once per activity attempt, so an attempt
    that died without reporting (the task still running) is counted too. On a completed task it
    changes nothing and returns the attempts so far."""
    now = clock.now()
    # The usual case, a first attempt of a pending task, in one locking UPDATE (its WHERE is
    # checked again on the row it locks); anything else takes the path below.
    first = await _transition(
        session,
        service_order_id,
        task_type,
        rules.PENDING,
        state=rules.task_lifecycle.next("start", rules.PENDING),
        attempts=col(ProvisioningTask.attempts) + 1,
        started_at=now,
        updated_at=now,
    )
    if first is not None:
        _task_event(session, ctx, first, "start", rules.PENDING, {"attempt": first.attempts})
        return first.attempts
    task = await get_task(session, service_order_id=service_order_id, task_type=task_type, for_update=True)
    if task.state == rules.COMPLETED:
        # A duplicate of an attempt that already succeeded (its report was lost): not a new attempt,
        # and a done task is never reopened.
        return task.attempts
    if task.state == rules.RUNNING:
        record(session, ctx, "provisioning.task.started", TASK, task.id, {"attempt": task.attempts + 1})
    else:
        await _move_task(session, ctx, task, "start", payload={"attempt": task.attempts + 1})
    task.attempts += 1
    task.started_at = clock.now()
    session.add(task)
    await session.flush()
    return task.attempts


async def task_completed(
    session: AsyncSession, ctx: RequestContext, *, service_order_id: str, task_type: str
) -> ProvisioningTask:
    now = clock.now()
    done = await _transition(
        session,
        service_order_id,
        task_type,
        rules.RUNNING,
        state=rules.task_lifecycle.next("complete", rules.RUNNING),
        completed_at=now,
        updated_at=now,
    )
    if done is not None:  # running → completed in one locking UPDATE, as _move_task would
        _task_event(session, ctx, done, "complete", rules.RUNNING, {})
        return done
    task = await get_task(session, service_order_id=service_order_id, task_type=task_type, for_update=True)
    if task.state != rules.COMPLETED:
        await _move_task(session, ctx, task, "complete")
        await session.flush()
    return task


async def task_failed(
    session: AsyncSession, ctx: RequestContext, *, service_order_id: str, task_type: str, error: str
) -> ProvisioningTask:
    task = await get_task(session, service_order_id=service_order_id, task_type=task_type, for_update=True)
    if task.state != rules.FAILED:
        await _move_task(session, ctx, task, "fail", payload={"error": error})
        task.last_error = error[:2000]
        await session.flush()
    return task


async def task_stuck(
    session: AsyncSession, ctx: RequestContext, *, service_order_id: str, task_type: str, ticket_id: str
) -> ProvisioningTask:
    task = await get_task(session, service_order_id=service_order_id, task_type=task_type, for_update=True)
    if task.state != rules.STUCK:
        await _move_task(session, ctx, task, "stuck", payload={"ticketId": ticket_id})
        task.ticket_id = ticket_id
        await session.flush()
    return task


async def task_resolved(
    session: AsyncSession, ctx: RequestContext, *, service_order_id: str, task_type: str, note: str
) -> ProvisioningTask:
    """An operator did the step by hand and says how: the note is the only record of it."""
    if not note or not note.strip():
        raise PolicyViolation(
            "provisioning.resolve_stuck.requires_note", "Say what was done to resolve the stuck task."
        )
    task = await get_task(session, service_order_id=service_order_id, task_type=task_type, for_update=True)
    if task.state != rules.COMPLETED:
        await _move_task(
            session,
            ctx,
            task,
            "resolve",
            code="provisioning_task.resolve.requires_stuck_state",
            payload={"note": note.strip()},
        )
        task.resolution_note = note.strip()[:2000]
        await session.flush()
    return task


# ---- outcome ------------------------------------------------------------------------------------


async def complete_service_order(
    session: AsyncSession, ctx: RequestContext, service_order_id: str
) -> ServiceOrder:
    so = await get_service_order(session, service_order_id, for_update=True)
    if so.state == rules.COMPLETED:
        return so
    open_tasks = [
        t.task_type for t in await list_tasks(session, service_order_id=so.id) if t.state != rules.COMPLETED
    ]
    if open_tasks:
        raise PolicyViolation(
            "service_order.complete.tasks_not_completed",
            f"Service order {so.id} still waits on {', '.join(open_tasks)}.",
            service_order_id=so.id,
            open_tasks=open_tasks,
        )
    rules.service_order_lifecycle.next("complete", so.state)
    for service in await list_services(session, service_order_id=so.id):
        if service.state != rules.ACTIVATED:
            await _move_service(session, ctx, service, "activate")
    so.completed_at = clock.now()
    await _move_order(session, ctx, so, "complete", {})
    await session.flush()
    return so


async def fail_service_order(
    session: AsyncSession, ctx: RequestContext, service_order_id: str, reason: str
) -> ServiceOrder:
    so = await get_service_order(session, service_order_id, for_update=True)
    if so.state == rules.FAILED:
        return so
    rules.service_order_lifecycle.next("fail", so.state)
    for service in await list_services(session, service_order_id=so.id):
        if rules.service_lifecycle.can("fail", service.state):
            await _move_service(session, ctx, service, "fail", reason=reason)
    so.failure_reason = reason[:1000]
    await _move_order(session, ctx, so, "fail", {"reason": reason})
    await session.flush()
    return so


async def roll_back_service_order(
    session: AsyncSession, ctx: RequestContext, service_order_id: str, reason: str
) -> ServiceOrder:
    """Undo a service order for a product order that failed: a service order still running fails;
    one that completed keeps its history, and its activated services are terminated."""
    so = await get_service_order(session, service_order_id, for_update=True)
    if so.state != rules.COMPLETED:
        return await fail_service_order(session, ctx, service_order_id, reason)
    for service in await list_services(session, service_order_id=so.id):
        if rules.service_lifecycle.can("terminate", service.state):
            await _move_service(session, ctx, service, "terminate", reason=reason)
    await session.flush()
    return so

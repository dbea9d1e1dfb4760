"""Order operations: create (and start the saga), cancel, and the operator's levers on stuck tasks.

The API, the CLI (through the API), the portals and the agent all come through here, so the
workflow ids, the policy checks and the error mapping live in one place.

An order row never strands: the row commits first, then `order-<ORD id>` starts. When the start
fails (Temporal or the network down) the API still answers 201 with the order `acknowledged`, and
the worker's sweeper (sweep_stranded_orders, at start and every `order_sweep_seconds`) starts every
acknowledged order older than `order_start_grace_seconds` under the same workflow id, so a start
that did happen is never doubled. An order that could not be started within
`order_start_give_up_seconds`, or whose workflow ended before taking it up (terminated from the
UI), is closed with the reason: `cancelled` (the reference lets an acknowledged order only start or
be cancelled), its cancellationReason starting with `order.workflow.not_started`. Nothing has been
charged or reserved before the workflow starts.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.context import RequestContext
from core.db import transaction
from core.errors import DomainError, NotFound, PolicyViolation
from ops.runtime import Runtime

log = logging.getLogger("bss.orders")
SWEEPER_CTX = RequestContext(actor="order-sweeper", channel="system", service_identity="worker")
NOT_STARTED = "order.workflow.not_started"


class TemporalUnavailable(DomainError):
    status = 503
    kind = "SERVICE_UNAVAILABLE"


@dataclass
class OrderRequest:
    customer_id: str
    offering_id: str
    msisdn_preference: str | None = None
    promo_code: str | None = None
    requested_start: datetime | None = None
    idempotency_key: str | None = None


async def create_order(rt: Runtime, ctx: RequestContext, req: OrderRequest):
    """Validate and store the order (acknowledged), then start `order-<ORD id>`."""
    from domains.ordering import services as ordering

    async with transaction(rt.db) as s:
        order = await ordering.create_order(
            s,
            ctx,
            customer_id=req.customer_id,
            offering_id=req.offering_id,
            msisdn_preference=req.msisdn_preference,
            promo_code=req.promo_code,
            idempotency_key=req.idempotency_key,
            requested_start=req.requested_start,
        )
        if rt.settings.require_kyc:  # after the order's own checks (an unknown customer stays a 404)
            from ops.kyc import require_verified

            await require_verified(s, req.customer_id)
    if order.state != "acknowledged":
        return order  # a resent request (same Idempotency-Key) for an order already under way
    try:
        await start_order_workflow(rt, order, req.requested_start)
    except TemporalUnavailable as exc:
        # The order is stored and valid, nothing is charged yet: the sweeper starts it when Temporal
        # answers again. A 503 would invite a resubmission, a duplicate order without a key.
        log.warning("order %s stored; its workflow starts later (%s)", order.id, exc.message)
    return order


async def start_order_workflow(rt: Runtime, order: Any, requested_start: datetime | None = None) -> bool:
    """Start `order-<ORD id>`, or find it running. False: a closed run of it exists already (the
    order's workflow ended). Raises TemporalUnavailable when Temporal does not answer."""
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

    from workflows.common import CUSTOMER_ID, ORDER_ID, attributes
    from workflows.product_order import OrderInput, ProductOrderWorkflow, order_workflow_id

    inp = OrderInput(
        order_id=order.id,
        customer_id=order.customer_id,
        offering_id=order.offering_id,
        price_id=order.price_id,
        price_amount=str(order.price_amount),
        price_currency=order.price_currency,
        msisdn_preference=order.msisdn_preference,
        promo_code=order.promo_code,
        requested_start=requested_start.isoformat() if requested_start else None,
        task_deadline_seconds=rt.settings.task_deadline_seconds,
        compensation_patience_seconds=rt.settings.compensation_patience_seconds,
    )
    try:
        client = await rt.temporal()
        # A replayed POST (same Idempotency-Key) finds the running workflow instead of a second one.
        await client.start_workflow(
            ProductOrderWorkflow.run,
            inp,
            id=order_workflow_id(order.id),
            task_queue=rt.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=attributes(
                CUSTOMER_ID.value_set(order.customer_id), ORDER_ID.value_set(order.id)
            ),
        )
    except Exception as exc:
        if _already_started(exc):
            return False
        raise TemporalUnavailable(
            "order.workflow.unavailable",
            f"Order {order.id} is stored but its workflow could not start ({type(exc).__name__}); "
            "it starts as soon as Temporal answers again.",
            order_id=order.id,
        ) from exc
    return True


def _already_started(exc: Exception) -> bool:
    from temporalio.exceptions import WorkflowAlreadyStartedError

    return isinstance(exc, WorkflowAlreadyStartedError)


@dataclass
class Sweep:
    started: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


async def sweep_stranded_orders(
    rt: Runtime,
    *,
    grace_seconds: float | None = None,
    give_up_seconds: float | None = None,
    limit: int = 500,
) -> Sweep:
    """Start (idempotently) every order still `acknowledged` after the grace period; close (cancel,
    with the reason) those that cannot be started for too long, or whose workflow ended without
    taking them up."""
    from core.clock import clock
    from domains.ordering import services as ordering

    settings = rt.settings
    grace = settings.order_start_grace_seconds if grace_seconds is None else grace_seconds
    give_up = settings.order_start_give_up_seconds if give_up_seconds is None else give_up_seconds
    now = clock.now()
    async with rt.db() as s:
        orders = await ordering.unstarted_orders(s, before=now - timedelta(seconds=grace), limit=limit)
    sweep = Sweep()
    for order in orders:
        async with rt.db() as s:
            requested_start = await ordering.requested_start(s, order.id)
        try:
            running = await start_order_workflow(rt, order, requested_start)
        except TemporalUnavailable:
            if now - order.created_at < timedelta(seconds=give_up):
                sweep.waiting.append(order.id)
                continue
            reason = f"Its workflow could not be started for {give_up:.0f} s (Temporal unavailable)."
        else:
            if running:
                sweep.started.append(order.id)
                continue
            reason = "Its workflow ended before it took the order up (terminated?)."
        async with transaction(rt.db) as s:
            if await ordering.cancel_unstarted_order(s, SWEEPER_CTX, order.id, f"{NOT_STARTED}: {reason}"):
                sweep.cancelled.append(order.id)
    if sweep.started or sweep.cancelled:
        log.info("order sweep: started %s, cancelled %s", sweep.started, sweep.cancelled)
    return sweep


async def run_order_sweeper(rt: Runtime, stop: asyncio.Event) -> None:
    """The worker's loop: sweep at start, then every `order_sweep_seconds`, until `stop`."""
    while not stop.is_set():
        try:
            await sweep_stranded_orders(rt)
            from ops.som import undo_abandoned_orders

            # Orders whose workflow was terminated mid-way: an undo-only run gives back what they hold.
            await undo_abandoned_orders(rt)
        except Exception:  # noqa: BLE001 - the database may be down too: next round
            log.exception("order sweep failed")
        try:
            await asyncio.wait_for(stop.wait(), rt.settings.order_sweep_seconds)
        except TimeoutError:
            pass


async def cancel_order(rt: Runtime, ctx: RequestContext, order_id: str, reason: str | None = None) -> Any:
    """Ask the order's workflow to cancel; its validator says no once SOM has started."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.exceptions import ApplicationError
    from temporalio.service import RPCError

    from domains.ordering import services as ordering
    from workflows.product_order import CancelOrder, ProductOrderWorkflow, order_workflow_id

    async with rt.db() as s:
        order = await ordering.get_order(s, order_id)
    if ordering.is_terminal(order):
        raise PolicyViolation(
            "order.transition.invalid", f"Order {order_id} is already {order.state}.", state=order.state
        )
    if order.som_started_at is not None:
        raise PolicyViolation(
            "order.cancel.forbidden_after_som_started",
            f"Order {order_id} can no longer be cancelled: service provisioning has started.",
        )
    client = await rt.temporal()
    handle = client.get_workflow_handle(order_workflow_id(order_id))
    try:
        await handle.execute_update(
            ProductOrderWorkflow.cancel, CancelOrder(reason or f"cancelled by {ctx.actor}")
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type:
            raise PolicyViolation(cause.type, cause.message) from None
        raise
    except RPCError as exc:
        raise PolicyViolation(
            "order.transition.invalid", f"Order {order_id} cannot be cancelled now: {exc.message}"
        ) from None
    async with rt.db() as s:
        return await ordering.get_order(s, order_id)


async def get_order(rt: Runtime, order_id: str) -> Any:
    """One product order (404 `order.not_found`)."""
    from domains.ordering import services as ordering

    async with rt.db() as s:
        return await ordering.get_order(s, order_id)


async def list_orders(
    rt: Runtime,
    *,
    customer_id: str | None = None,
    state: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[Any], int]:
    """(orders newest first, total) of a customer and/or in a state."""
    from domains.ordering import services as ordering

    async with rt.db() as s:
        return await ordering.list_orders(s, state=state, customer_id=customer_id, offset=offset, limit=limit)


TASK_WORKFLOW = {"ESIM_PROFILE_PREPARE": "esim"}


async def _task_workflow(rt: Runtime, task_id: str) -> tuple[Any, str]:
    from sqlmodel import select

    from domains.service_ordering.models import ProvisioningTask, Service
    from workflows.esim_provisioning import esim_workflow_id
    from workflows.service_order import service_order_workflow_id

    async with rt.db() as s:
        task = (await s.exec(select(ProvisioningTask).where(ProvisioningTask.id == task_id))).first()
        if task is None:
            raise NotFound("provisioning_task.not_found", f"No provisioning task {task_id}.")
        if task.task_type == "ESIM_PROFILE_PREPARE":
            cfs = (await s.exec(select(Service).where(Service.id == task.service_id))).first()
            iccid = (cfs.characteristics or {}).get("iccid") if cfs else None
            return task, esim_workflow_id(iccid)
        return task, service_order_workflow_id(task.service_order_id)


async def resolve_task(rt: Runtime, ctx: RequestContext, task_id: str, note: str) -> Any:
    from workflows.provisioning_tasks import ResolveTask

    if not note or not note.strip():
        raise PolicyViolation(
            "provisioning.resolve_stuck.requires_note", "Say what was done: a note is required."
        )
    task, wf_id = await _task_workflow(rt, task_id)
    if task.state != "stuck":
        raise PolicyViolation(
            "provisioning_task.resolve.requires_stuck_state",
            f"Task {task_id} is {task.state}; only a stuck task can be resolved.",
        )
    client = await rt.temporal()
    await client.get_workflow_handle(wf_id).signal(
        "resolve_task", ResolveTask(task.task_type, note.strip(), requested_by=ctx)
    )
    return task


async def retry_task(rt: Runtime, ctx: RequestContext, task_id: str) -> Any:
    from workflows.provisioning_tasks import RetryTask

    task, wf_id = await _task_workflow(rt, task_id)
    if task.state != "stuck":
        raise PolicyViolation(
            "provisioning_task.retry.requires_stuck_state",
            f"Task {task_id} is {task.state}; only a stuck task can be retried by hand.",
        )
    client = await rt.temporal()
    await client.get_workflow_handle(wf_id).signal("retry_task", RetryTask(task.task_type, requested_by=ctx))
    return task


async def stuck_orders(rt: Runtime) -> list[dict[str, Any]]:
    """Running workflows flagged BssStuck=true: the same list the operator sees in the Temporal UI."""
    from workflows.common import CUSTOMER_ID, MSISDN, ORDER_ID

    client = await rt.temporal()
    rows = []
    async for wf in client.list_workflows('BssStuck = true AND ExecutionStatus = "Running"'):
        sa = wf.typed_search_attributes
        rows.append(
            {
                "workflowId": wf.id,
                "workflowType": wf.workflow_type,
                "orderId": sa.get(ORDER_ID),
                "customerId": sa.get(CUSTOMER_ID),
                "msisdn": sa.get(MSISDN),
                "startedAt": wf.start_time.isoformat() if wf.start_time else None,
            }
        )
    return rows


async def device_event(rt: Runtime, ctx: RequestContext, iccid: str, event: str) -> None:
    """A tester plays the device: the SM-DP+ reports `downloaded` or `installed`."""
    from temporalio.service import RPCError

    from workflows.esim_provisioning import DeviceEvent, esim_workflow_id

    if event not in {"downloaded", "installed"}:
        raise PolicyViolation("esim.device_event.unknown", "The event must be downloaded or installed.")
    from workflows.esim_rearm import rearm_workflow_id

    client = await rt.temporal()
    # A re-download in progress (`bss esim rearm`) is newer than the order's own eSIM flow.
    for workflow_id in (rearm_workflow_id(iccid), esim_workflow_id(iccid)):
        try:
            await client.get_workflow_handle(workflow_id).signal(
                "device_event", DeviceEvent(event, requested_by=ctx)
            )
            return
        except RPCError:
            continue
    raise NotFound("esim.not_found", f"No eSIM provisioning in progress for {iccid}.")

"""Order operations: create (and start the saga), cancel, and the operator's levers on stuck tasks.

The API, the CLI (through the API), the portals and the agent all come through here, so the
workflow ids, the policy checks and the error mapping live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.context import RequestContext
from core.db import transaction
from core.errors import DomainError, NotFound, PolicyViolation
from ops.runtime import Runtime


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
        )
    await start_order_workflow(rt, order, req.requested_start)
    return order


async def start_order_workflow(rt: Runtime, order: Any, requested_start: datetime | None = None) -> None:
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
            return
        raise TemporalUnavailable(
            "order.workflow.unavailable",
            f"Order {order.id} is stored but its workflow could not start ({type(exc).__name__}); "
            "check that the worker and Temporal run (`bss status`), then resubmit with the same Idempotency-Key.",
            order_id=order.id,
        ) from exc


def _already_started(exc: Exception) -> bool:
    from temporalio.exceptions import WorkflowAlreadyStartedError

    return isinstance(exc, WorkflowAlreadyStartedError)


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
    client = await rt.temporal()
    try:
        await client.get_workflow_handle(esim_workflow_id(iccid)).signal(
            "device_event", DeviceEvent(event, requested_by=ctx)
        )
    except RPCError:
        raise NotFound("esim.not_found", f"No eSIM provisioning in progress for {iccid}.") from None

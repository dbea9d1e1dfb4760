"""Service-ordering operations for the operator: stuck orders with their tasks, the eSIM status, and
the guard that turns an unreachable Temporal into a 503 instead of a bare 500.

The writes (resolve, retry, device events, cancel) live in ops.orders; these sit beside them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlmodel import col, select

from core.errors import DomainError, NotFound, PolicyViolation
from ops.orders import TemporalUnavailable, stuck_orders
from ops.runtime import Runtime

# How long an operator's screen waits on Temporal before saying it is unavailable.
TEMPORAL_TIMEOUT = 5.0
ESIM_TASK = "ESIM_PROFILE_PREPARE"


@asynccontextmanager
async def temporal_guard(what: str) -> AsyncIterator[None]:
    """Domain errors pass through; Temporal unreachable is a 503, a closed workflow a 422."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        yield
    except DomainError:
        raise
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise PolicyViolation(
                f"{what}.workflow_not_running",
                f"The workflow behind this {what.replace('_', ' ')} is no longer running: {exc.message}",
            ) from None
        raise _unavailable(what, exc) from None
    except (RuntimeError, OSError, TimeoutError) as exc:
        # Client.connect raises RuntimeError when the frontend cannot be reached.
        raise _unavailable(what, exc) from None


def _unavailable(what: str, exc: BaseException) -> TemporalUnavailable:
    return TemporalUnavailable(
        "temporal.unavailable",
        f"Temporal could not be reached for this {what.replace('_', ' ')} ({type(exc).__name__}); "
        "nothing was changed. Check `bss status` and try again.",
    )


async def stuck_orders_with_tasks(rt: Runtime) -> list[dict[str, Any]]:
    """The workflows flagged `BssStuck=true`, each with the stuck task rows behind it (task id,
    type, ticket), so the operator can resolve or retry without opening the Temporal UI."""
    from domains.service_ordering.models import ProvisioningTask, ServiceOrder

    async with temporal_guard("stuck_order_list"):
        rows = await asyncio.wait_for(stuck_orders(rt), TEMPORAL_TIMEOUT)
    order_ids = {r["orderId"] for r in rows if r.get("orderId")}
    tasks: dict[str, list[ProvisioningTask]] = {}
    if order_ids:
        async with rt.db() as s:
            found = await s.exec(
                select(ServiceOrder.order_id, ProvisioningTask)
                .join(ProvisioningTask, col(ProvisioningTask.service_order_id) == col(ServiceOrder.id))
                .where(col(ServiceOrder.order_id).in_(order_ids), ProvisioningTask.state == "stuck")
                .order_by(col(ProvisioningTask.id))
            )
            for order_id, task in found:
                tasks.setdefault(order_id, []).append(task)
    for row in rows:
        # An eSIM workflow waits on the profile task only; the service order on the network ones.
        esim = row["workflowId"].startswith("esim-")
        mine = [t for t in tasks.get(row.get("orderId") or "", []) if (t.task_type == ESIM_TASK) == esim]
        row["stuckTasks"] = [
            {
                "taskId": t.id,
                "taskType": t.task_type,
                "ticketId": t.ticket_id,
                "serviceOrderId": t.service_order_id,
            }
            for t in mine
        ]
        first = row["stuckTasks"][0] if row["stuckTasks"] else {}
        row["serviceOrderId"] = first.get("serviceOrderId")
        row["taskId"], row["taskType"], row["ticketId"] = (
            first.get("taskId"),
            first.get("taskType"),
            first.get("ticketId"),
        )
    return rows


async def esim_status(rt: Runtime, iccid: str) -> dict[str, Any]:
    """The eSIM workflow's own view while it runs (prepared, downloaded, …); otherwise, or when
    Temporal cannot answer, the inventory row, which the workflow keeps in step."""
    from domains.inventory import services as inventory

    async with rt.db() as s:
        try:
            profile = await inventory.get_esim(s, iccid)
        except NotFound:
            raise NotFound(
                "esim.not_found", f"No eSIM profile {iccid} in the inventory.", iccid=iccid
            ) from None
    body: dict[str, Any] = {
        "iccid": profile.iccid,
        "state": profile.profile_state,
        "activationCode": profile.activation_code,
        "profileState": profile.profile_state,
        "msisdn": profile.assigned_msisdn,
        "subscriptionId": profile.assigned_to_subscription_id,
        "source": "inventory",
        "workflowId": None,
    }
    running = await _running_esim_status(rt, iccid)
    if running is not None:
        body.update(
            state=running.state,
            activationCode=running.activation_code or profile.activation_code,
            source="workflow",
            workflowId=f"esim-{iccid}",
        )
    return body


async def _running_esim_status(rt: Runtime, iccid: str) -> Any:
    from temporalio.client import WorkflowExecutionStatus

    from workflows.esim_provisioning import EsimProvisioningWorkflow, esim_workflow_id

    try:
        client = await asyncio.wait_for(rt.temporal(), TEMPORAL_TIMEOUT)
        handle = client.get_workflow_handle_for(EsimProvisioningWorkflow.run, esim_workflow_id(iccid))
        described = await asyncio.wait_for(handle.describe(), TEMPORAL_TIMEOUT)
        if described.status != WorkflowExecutionStatus.RUNNING:
            return None
        return await asyncio.wait_for(handle.query(EsimProvisioningWorkflow.status), TEMPORAL_TIMEOUT)
    except Exception:  # noqa: BLE001 - no workflow, or Temporal away: the inventory row answers
        return None


async def undo_abandoned_orders(rt: Runtime, *, limit: int = 100) -> list[str]:
    """Orders in progress whose workflow was terminated (from the Temporal UI, or it timed out or
    failed): a terminate runs no compensation, so the order would keep its line, number, eSIM,
    network entries and the customer's money. Start a new run of `order-<id>` in undo-only mode,
    which gives all of it back and fails the order. Returns the orders taken up; idempotent (a
    running undo is not started twice). Called by the worker's order sweeper."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    from temporalio.service import RPCError, RPCStatusCode

    from domains.ordering.models import ProductOrder
    from workflows.common import CUSTOMER_ID, ORDER_ID, attributes
    from workflows.product_order import OrderInput, ProductOrderWorkflow, order_workflow_id

    async with rt.db() as s:
        orders = list(
            await s.exec(
                select(ProductOrder)
                .where(ProductOrder.state == "in_progress")
                .order_by(col(ProductOrder.created_at))
                .limit(limit)
            )
        )
    if not orders:
        return []
    client = await rt.temporal()
    ended = {
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.TIMED_OUT,
        WorkflowExecutionStatus.FAILED,
    }
    taken = []
    for order in orders:
        try:
            desc = await client.get_workflow_handle(order_workflow_id(order.id)).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                continue  # not ours to judge (retention passed, or another namespace)
            raise
        if desc.status not in ended:
            continue
        try:
            await client.start_workflow(
                ProductOrderWorkflow.run,
                OrderInput(
                    order_id=order.id,
                    customer_id=order.customer_id,
                    offering_id=order.offering_id,
                    price_id=order.price_id,
                    price_amount=str(order.price_amount),
                    price_currency=order.price_currency,
                    task_deadline_seconds=rt.settings.task_deadline_seconds,
                    compensation_patience_seconds=rt.settings.compensation_patience_seconds,
                    undo_only=True,
                ),
                id=order_workflow_id(order.id),
                task_queue=rt.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=attributes(
                    CUSTOMER_ID.value_set(order.customer_id), ORDER_ID.value_set(order.id)
                ),
            )
        except Exception as exc:  # noqa: BLE001 - started meanwhile by another sweeper: fine
            from temporalio.exceptions import WorkflowAlreadyStartedError

            if not isinstance(exc, WorkflowAlreadyStartedError):
                raise
            continue
        taken.append(order.id)
    return taken

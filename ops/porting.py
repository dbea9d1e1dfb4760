"""Port requests (MNP): open one (and start `port-PORT-…`), read them, approve or reject.

The request row commits first, then its workflow starts. A start that fails (Temporal down) leaves
the request `acknowledged` and answers 503; sending the request again with the same
Idempotency-Key finds the request and starts its workflow (never a second one).
Approve and reject are updates of the workflow: its validators refuse them in the wrong state.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any

from core.context import RequestContext
from core.db import transaction
from core.errors import NotFound, PolicyViolation
from ops.orders import TemporalUnavailable
from ops.runtime import Runtime
from ops.som import TEMPORAL_TIMEOUT, temporal_guard

UPDATE_TIMEOUT = 30.0
BASE = "/bss-api/v1/port-request"


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "href": f"{BASE}/{row.id}",
        "@type": "PortRequest",
        "direction": row.direction,
        "state": row.state,
        "msisdn": row.msisdn,
        "donorCarrier": row.donor_carrier,
        "recipientCarrier": row.recipient_carrier,
        "requestedPortDate": _time(row.requested_port_date),
        "customerId": row.customer_id,
        "offeringId": row.offering_id,
        "subscriptionId": row.subscription_id,
        "orderId": row.order_id,
        "previousMsisdn": row.previous_msisdn,
        "reason": row.reason,
        "reasonCode": row.reason_code,
        "approvedBy": row.approved_by,
        "createdAt": _time(row.created_at),
        "updatedAt": _time(row.updated_at),
        "validatedAt": _time(row.validated_at),
        "approvedAt": _time(row.approved_at),
        "completedAt": _time(row.completed_at),
        "endedAt": _time(row.ended_at),
    }


async def create(
    rt: Runtime,
    ctx: RequestContext,
    *,
    direction: str,
    msisdn: str,
    requested_port_date: date | datetime,
    donor_carrier: str | None = None,
    recipient_carrier: str | None = None,
    customer_id: str | None = None,
    offering_id: str | None = None,
    subscription_id: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    from domains.porting import services

    async with transaction(rt.db) as s:
        row = await services.create_port_request(
            s,
            ctx,
            direction=direction,
            msisdn=msisdn,
            requested_port_date=requested_port_date,
            donor_carrier=donor_carrier,
            recipient_carrier=recipient_carrier,
            customer_id=customer_id,
            offering_id=offering_id,
            subscription_id=subscription_id,
            idempotency_key=idempotency_key,
        )
        out = view(row)
    if row.state == "acknowledged":
        await start_workflow(rt, row)
    return out


async def start_workflow(rt: Runtime, row: Any) -> bool:
    """Start `port-<PORT id>`, or find it running; False when a closed run exists already."""
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from workflows.common import CUSTOMER_ID, MSISDN, SUBSCRIPTION_ID, attributes
    from workflows.port import PortInput, PortWorkflow, port_workflow_id

    attrs = [MSISDN.value_set(row.msisdn)]
    if row.customer_id:
        attrs.append(CUSTOMER_ID.value_set(row.customer_id))
    if row.subscription_id:
        attrs.append(SUBSCRIPTION_ID.value_set(row.subscription_id))
    try:
        async with temporal_guard("port_request"):
            client = await asyncio.wait_for(rt.temporal(), TEMPORAL_TIMEOUT)
            await client.start_workflow(
                PortWorkflow.run,
                PortInput(row.id, row.direction, row.msisdn, row.customer_id),
                id=port_workflow_id(row.id),
                task_queue=rt.settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=attributes(*attrs),
            )
    except WorkflowAlreadyStartedError:
        return False
    except TemporalUnavailable as exc:
        raise TemporalUnavailable(
            "port_request.workflow.unavailable",
            f"Port request {row.id} is stored but its workflow could not start ({exc.message}); "
            "send the request again with the same Idempotency-Key to start it.",
            port_id=row.id,
        ) from None
    return True


async def get(rt: Runtime, port_id: str) -> dict[str, Any]:
    from domains.porting.services import get_port_request

    async with rt.db() as s:
        return view(await get_port_request(s, port_id))


async def listing(
    rt: Runtime,
    *,
    state: str | None = None,
    direction: str | None = None,
    customer_id: str | None = None,
    msisdn: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[dict[str, Any]]]:
    from domains.porting.services import list_port_requests

    async with rt.db() as s:
        total, rows = await list_port_requests(
            s,
            state=state,
            direction=direction,
            customer_id=customer_id,
            msisdn=msisdn,
            offset=offset,
            limit=limit,
        )
    return total, [view(r) for r in rows]


async def approve(rt: Runtime, ctx: RequestContext, port_id: str) -> dict[str, Any]:
    from workflows.port import ApprovePort, PortWorkflow

    await _open(rt, port_id, "port.approve.invalid_state", "approved")
    await _update(rt, port_id, PortWorkflow.approve, ApprovePort(ctx))
    return await get(rt, port_id)


async def reject(rt: Runtime, ctx: RequestContext, port_id: str, reason: str) -> dict[str, Any]:
    from domains.porting.rules import check_reason
    from workflows.port import PortWorkflow, RejectPort

    reason = check_reason(reason)
    await _open(rt, port_id, "port.reject.invalid_state", "rejected")
    await _update(rt, port_id, PortWorkflow.reject, RejectPort(reason, ctx))
    return await get(rt, port_id)


async def _open(rt: Runtime, port_id: str, code: str, what: str) -> None:
    """404 for an unknown request; the action's rule for one that has ended (its workflow is over)."""
    from domains.porting.rules import FINAL_STATES
    from domains.porting.services import get_port_request

    async with rt.db() as s:
        row = await get_port_request(s, port_id)
    if row.state in FINAL_STATES:
        raise PolicyViolation(
            code, f"Port request {port_id} is {row.state}; it can no longer be {what}.", port_id=port_id
        )


async def _update(rt: Runtime, port_id: str, update: Any, arg: Any) -> Any:
    from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError

    from ops.subscriptions import _rule
    from workflows.port import port_workflow_id

    async with temporal_guard("port_request"):
        client = await asyncio.wait_for(rt.temporal(), TEMPORAL_TIMEOUT)
        handle = client.get_workflow_handle(port_workflow_id(port_id))
        try:
            return await asyncio.wait_for(handle.execute_update(update, arg), UPDATE_TIMEOUT)
        except WorkflowUpdateFailedError as exc:
            refusal = _rule(exc)
            if refusal is None:
                raise TemporalUnavailable(
                    "port_request.update.failed", f"{port_id}'s workflow could not apply the change: {exc}"
                ) from None
            error = NotFound if refusal.type.endswith(".not_found") else PolicyViolation
            raise error(refusal.type, refusal.message, port_id=port_id) from None
        except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
            raise TemporalUnavailable(
                "port_request.update.timeout",
                f"{port_id}'s workflow did not answer within {UPDATE_TIMEOUT:g} s; the change may still happen.",
                port_id=port_id,
            ) from None


__all__ = ["approve", "create", "get", "listing", "reject", "start_workflow", "view"]

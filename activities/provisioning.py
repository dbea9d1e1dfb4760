"""Provisioning tasks against the network elements (HLR, PCRF, OCS, SM-DP+).

One activity runs any task type, so retries, deadlines and bookkeeping are the same for all.
The deadline is enforced here, not only by Temporal's timeout: a hung network call is
abandoned at once instead of lingering in the worker after the server has given up on it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.base import ctx_for, domain_errors
from core.db import transaction

DEADLINE_EXCEEDED = "provisioning.task.deadline_exceeded"
NETWORK_ERROR = "provisioning.task.network_error"


@dataclass
class TaskRequest:
    service_order_id: str
    task_type: str
    msisdn: str
    imsi: str
    iccid: str
    offering_id: str
    matching_id: str = ""
    deadline_seconds: float = 10.0
    allowances: dict[str, int] = field(default_factory=dict)
    # ESIM_PROFILE_PREPARE: mark the profile prepared in the transaction that completes the task
    # (the eSIM flow's own step before; idempotent, and only while its service order holds it).
    mark_esim_prepared: bool = False


@dataclass
class TaskOutcome:
    task_type: str
    attempt: int
    activation_code: str | None = None
    esim_prepared: bool = False


@dataclass
class LineTask:
    """A network change to a line outside its service order: the undo of a provisioning step
    (HLR_DEPROVISION, PCRF_POLICY_REMOVE, OCS_BALANCE_REMOVE) or barring (PCRF_BAR, PCRF_UNBAR).
    Idempotent at the element; `reason` is for the audit trail."""

    task_type: str
    msisdn: str
    reason: str = ""
    deadline_seconds: float = 10.0
    # A line re-provisioned under a new number (a port-in to an existing line): HLR_PROVISION
    # needs the line's IMSI, PCRF_POLICY_PUSH its plan.
    imsi: str = ""
    offering_id: str = ""


@dataclass
class EsimOrderCancel:
    iccid: str
    reason: str = ""


@dataclass
class DeprovisionOrder:
    """Undo what a service order provisioned in the network (every task that was ever attempted)."""

    service_order_id: str
    reason: str = ""
    deadline_seconds: float = 10.0


UNDO_OF = {
    "OCS_BALANCE_INIT": "OCS_BALANCE_REMOVE",
    "PCRF_POLICY_PUSH": "PCRF_POLICY_REMOVE",
    "HLR_PROVISION": "HLR_DEPROVISION",
}

# A line's network undo, last provisioned first.
DEPROVISION_TASKS = ("OCS_BALANCE_REMOVE", "PCRF_POLICY_REMOVE", "HLR_DEPROVISION")
LINE_TASKS = (*DEPROVISION_TASKS, "PCRF_BAR", "PCRF_UNBAR")


@dataclass
class Network:
    """The adapters the worker was built with (simulators here; real elements in production)."""

    hlr: object
    pcrf: object
    ocs: object
    smdp: object


class ProvisioningActivities:
    def __init__(self, runtime, network: Network) -> None:
        self.rt = runtime
        self.net = network

    async def _call(self, req: TaskRequest, attempt: int) -> str | None:
        n = self.net
        if req.task_type == "HLR_PROVISION":
            await n.hlr.provision_subscriber(req.msisdn, req.imsi, attempt=attempt)
        elif req.task_type == "PCRF_POLICY_PUSH":
            await n.pcrf.push_policy(req.msisdn, req.offering_id, attempt=attempt)
        elif req.task_type == "OCS_BALANCE_INIT":
            await n.ocs.init_balance(req.msisdn, req.service_order_id, req.allowances, attempt=attempt)
        elif req.task_type == "ESIM_PROFILE_PREPARE":
            await n.smdp.download_order(req.iccid, attempt=attempt)
            code = await n.smdp.confirm_order(req.iccid, req.matching_id, attempt=attempt)
            await n.smdp.release_profile(req.iccid, attempt=attempt)
            return code
        else:
            raise ApplicationError(
                f"Unknown task type {req.task_type}.", type="provisioning.task.unknown", non_retryable=True
            )
        return None

    async def _line_call(self, req: LineTask, attempt: int) -> None:
        n = self.net
        calls = {
            "HLR_DEPROVISION": lambda: n.hlr.deprovision_subscriber(req.msisdn, attempt=attempt),
            "PCRF_POLICY_REMOVE": lambda: n.pcrf.remove_policy(req.msisdn, attempt=attempt),
            "OCS_BALANCE_REMOVE": lambda: n.ocs.remove_balance(req.msisdn, attempt=attempt),
            "PCRF_BAR": lambda: n.pcrf.bar(req.msisdn, attempt=attempt),
            "PCRF_UNBAR": lambda: n.pcrf.unbar(req.msisdn, attempt=attempt),
            "HLR_PROVISION": lambda: n.hlr.provision_subscriber(req.msisdn, req.imsi, attempt=attempt),
            "PCRF_POLICY_PUSH": lambda: n.pcrf.push_policy(req.msisdn, req.offering_id, attempt=attempt),
        }
        if req.task_type not in calls:
            raise ApplicationError(
                f"Unknown line task {req.task_type}.", type="provisioning.task.unknown", non_retryable=True
            )
        await calls[req.task_type]()

    @activity.defn
    @domain_errors
    async def run_line_task(self, req: LineTask) -> None:
        """One network change to a line (see LineTask), with the element's fault rules. A hung or
        failing element raises a retryable error: the caller retries (an undo must happen), and a
        permanent refusal is non-retryable so the caller can ask an operator."""
        from domains.audit.services import record
        from simulators.base import NetworkError

        attempt = activity.info().attempt
        try:
            await asyncio.wait_for(self._line_call(req, attempt), req.deadline_seconds)
        except TimeoutError:
            raise ApplicationError(
                f"{req.task_type} for {req.msisdn} did not answer within {req.deadline_seconds:.0f} s.",
                type=DEADLINE_EXCEEDED,
            ) from None
        except NetworkError as exc:
            raise ApplicationError(
                f"{req.task_type} for {req.msisdn} failed: {exc}",
                type=NETWORK_ERROR,
                non_retryable=not exc.retryable,
            ) from None
        async with transaction(self.rt.db) as s:
            record(
                s,
                ctx_for(activity.info().workflow_id),
                "provisioning.line_task.completed",
                "msisdn",
                req.msisdn,
                {"taskType": req.task_type, "reason": req.reason, "attempt": attempt},
            )

    @activity.defn
    @domain_errors
    async def deprovision_service_order(self, req: DeprovisionOrder) -> list[str]:
        """The network undo of a service order: OCS, PCRF, HLR, each only if its provisioning task
        was ever attempted (an attempt may have reached the element even if it failed). Every undo
        is idempotent, so a retry of this activity repeats none of them harmfully. Returns the undo
        task types run."""
        from sqlmodel import select

        from domains.service_ordering import services as som
        from domains.service_ordering.models import Service

        async with self.rt.db() as s:
            tasks = {t.task_type: t for t in await som.list_tasks(s, service_order_id=req.service_order_id)}
            cfs = (
                await s.exec(
                    select(Service).where(
                        Service.service_order_id == req.service_order_id, Service.type == "CFS"
                    )
                )
            ).first()
        msisdn = (cfs.characteristics or {}).get("msisdn") if cfs else None
        if not msisdn:
            return []  # nothing was reserved, so nothing reached the network
        done = []
        for task_type in ("OCS_BALANCE_INIT", "PCRF_POLICY_PUSH", "HLR_PROVISION"):
            task = tasks.get(task_type)
            if task is None or (task.attempts == 0 and task.state == "pending"):
                continue
            await self.run_line_task(
                LineTask(
                    UNDO_OF[task_type], msisdn, req.reason or "service order undone", req.deadline_seconds
                )
            )
            done.append(UNDO_OF[task_type])
        return done

    @activity.defn
    @domain_errors
    async def cancel_esim_order(self, req: EsimOrderCancel) -> None:
        """ES2+ CancelOrder at the SM-DP+: a profile going back to the pool with a new matching id
        must not stay confirmed under the old one. Unknown orders are a no-op (idempotent)."""
        await self.net.smdp.cancel_order(req.iccid, attempt=activity.info().attempt)

    @activity.defn
    @domain_errors
    async def run_task(self, req: TaskRequest) -> TaskOutcome:
        from domains.service_ordering import services as som
        from simulators.base import NetworkError

        ctx = ctx_for(activity.info().workflow_id)
        async with transaction(self.rt.db) as s:
            attempt = await som.task_started(
                s, ctx, service_order_id=req.service_order_id, task_type=req.task_type
            )
        try:
            code = await asyncio.wait_for(self._call(req, attempt), req.deadline_seconds)
        except TimeoutError:
            # Not retried automatically: a stuck element needs a person (SPEC: stuck tasks wait).
            raise ApplicationError(
                f"{req.task_type} did not answer within {req.deadline_seconds:.0f} s.",
                type=DEADLINE_EXCEEDED,
                non_retryable=True,
            ) from None
        except NetworkError as exc:
            async with transaction(self.rt.db) as s:
                await som.task_failed(
                    s, ctx, service_order_id=req.service_order_id, task_type=req.task_type, error=str(exc)
                )
            raise ApplicationError(f"{req.task_type} failed: {exc}", type=NETWORK_ERROR) from exc
        async with transaction(self.rt.db) as s:
            await som.task_completed(s, ctx, service_order_id=req.service_order_id, task_type=req.task_type)
            if req.mark_esim_prepared:
                from domains.inventory import services as inventory

                await inventory.mark_esim_prepared(
                    s, ctx, iccid=req.iccid, for_service_order=req.service_order_id
                )
        return TaskOutcome(req.task_type, attempt, code, esim_prepared=req.mark_esim_prepared)

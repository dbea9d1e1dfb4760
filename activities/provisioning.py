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


@dataclass
class TaskOutcome:
    task_type: str
    attempt: int
    activation_code: str | None = None


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
        return TaskOutcome(req.task_type, attempt, code)

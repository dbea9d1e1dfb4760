"""eSIM provisioning, SM-DP+ ES2+ style: download order → confirm order → release, then wait
for the device. The service order needs only the profile prepared; this workflow keeps waiting
for the device's download and install on its own, for as long as the profile is valid.

It owns its profile until it ends (patch `esim-flow-gives-back-its-profile`): cancelled (its order
failed, or its line ended) or expired (the validity passed and the device never installed), its
last step cancels the order at the SM-DP+ and puts the profile back in the pool, if its service
order still holds it and no line owns it. So a profile is never on sale while a flow for it still
runs, and a stuck preparation gives way to `cancel` (it no longer waits for the operator alone).
An expired profile that a line owns stays with that line: the customer paid for it, and a re-arm
(`rearm_esim`) issues a new activation code; the line itself is not ended by the eSIM expiring.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.base import reason_of, rule_code
    from activities.provisioning import TaskRequest
    from activities.service_ordering import (
        DeviceEventRecord,
        EsimPrepared,
        EsimRelease,
        ServiceOrderActivities,
    )
    from core.context import RequestContext
    from workflows.common import DB_STEP, compensation_call, condition_or_timeout
    from workflows.messages import CancelEsim, DeviceEvent, EsimInput, EsimReady, EsimStatus  # noqa: F401 - re-exported
    from workflows.provisioning_tasks import TASK_CANCELLED, ResolveTask, RetryTask, TaskRunner

PATCH = "esim-flow-gives-back-its-profile"
# Its task failed for good: complete with a `failed` status (reason, rule code) instead of ending
# Failed; the service order reads it as it read the failure (workflows/service_order.py).
FAILS_WITH_RESULT = "esim-flow-ends-with-a-failed-result"
# The preparation runs as a local activity (workflows/provisioning_tasks.py) that also marks the
# profile prepared, in the flow's first workflow task. Implies the two above; new runs record only it.
LOCAL_TASK = "esim-flow-prepares-locally"


def esim_workflow_id(iccid: str) -> str:
    return f"esim-{iccid}"


DEVICE_STATES = {"downloaded": "downloaded", "installed": "installed"}


@workflow.defn
class EsimProvisioningWorkflow:
    def __init__(self) -> None:
        self.tasks = TaskRunner()
        self.state = "reserved"
        self.code = ""
        self.device_events: list[str] = []
        self.requested_by: list[RequestContext | None] = []
        self.cancelled: str | None = None
        self.gives_back = False
        self.reason: str | None = None
        self.rule_code: str | None = None

    @workflow.run
    async def run(self, inp: EsimInput) -> EsimStatus:
        self.tasks.local = workflow.patched(LOCAL_TASK)
        self.gives_back = self.tasks.honour_cancel = self.tasks.local or workflow.patched(PATCH)
        self.code = inp.activation_code
        try:
            outcome = await self.tasks.run(
                TaskRequest(
                    inp.service_order_id,
                    "ESIM_PROFILE_PREPARE",
                    inp.msisdn,
                    inp.imsi,
                    inp.iccid,
                    inp.offering_id,
                    inp.matching_id,
                    inp.task_deadline_seconds,
                    mark_esim_prepared=self.tasks.local,
                ),
                inp.order_id,
                inp.customer_id,
                cancelled=lambda: self.cancelled,
            )
        except (ApplicationError, ActivityError) as err:
            if not (self.gives_back and rule_code(err) == TASK_CANCELLED):
                if not (self.tasks.local or workflow.patched(FAILS_WITH_RESULT)):
                    raise
                # What its failure carried: the innermost message and rule code.
                self.state, self.reason, self.rule_code = "failed", reason_of(err), rule_code(err)
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self.status()
            self.state = "cancelled"
            await self._give_back(inp)
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self.status()
        self.code = outcome.activation_code or inp.activation_code
        if not outcome.esim_prepared:  # an operator resolved the task, or before LOCAL_TASK
            await workflow.execute_local_activity_method(
                ServiceOrderActivities.mark_esim_prepared,
                EsimPrepared(inp.iccid, inp.service_order_id),
                **DB_STEP,
            )
        self.state = "prepared"
        parent = workflow.info().parent
        if parent is not None and self.cancelled is None:
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(
                "esim_prepared", EsimReady(inp.iccid, self.code)
            )
        deadline = workflow.now() + timedelta(days=inp.validity_days)
        while self.state != "installed" and self.cancelled is None:
            left = (deadline - workflow.now()).total_seconds()
            if left <= 0 or not await condition_or_timeout(
                lambda: bool(self.device_events) or self.cancelled is not None, left
            ):
                self.state = "expired"
                break
            while self.device_events:
                event = self.device_events.pop(0)
                by = self.requested_by.pop(0) if self.requested_by else None
                await workflow.execute_local_activity_method(
                    ServiceOrderActivities.record_device_event,
                    DeviceEventRecord(inp.iccid, event, by),
                    **DB_STEP,
                )
                self.state = DEVICE_STATES[event]
        if self.cancelled is not None:
            self.state = "cancelled"
        if self.state in ("cancelled", "expired"):
            await self._give_back(inp)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _give_back(self, inp: EsimInput) -> None:
        """Last step: the profile back to the pool (SM-DP+ order cancelled first), if still ours."""
        if not self.gives_back:
            return
        reason = self.cancelled or f"the profile expired uninstalled after {inp.validity_days} days"
        try:
            await workflow.execute_activity_method(
                ServiceOrderActivities.give_back_profile,
                EsimRelease(inp.iccid, inp.service_order_id, reason),
                **compensation_call(),
            )
        except ActivityError as err:  # after 30 min of failing: the order's own release covers it
            workflow.logger.error("could not give back profile %s: %s", inp.iccid, err)

    @workflow.signal
    def device_event(self, msg: DeviceEvent) -> None:
        if msg.event in DEVICE_STATES:
            self.device_events.append(msg.event)
            self.requested_by.append(msg.requested_by)

    @workflow.signal
    def cancel(self, msg: CancelEsim) -> None:
        self.cancelled = msg.reason

    @workflow.signal
    def resolve_task(self, msg: ResolveTask) -> None:
        self.tasks.resolve(msg)

    @workflow.signal
    def retry_task(self, msg: RetryTask) -> None:
        self.tasks.retry(msg)

    @workflow.query
    def status(self) -> EsimStatus:
        return EsimStatus(
            workflow.info().workflow_id.removeprefix("esim-"),
            self.state,
            self.code,
            list(self.device_events),
            self.reason,
            self.rule_code,
        )

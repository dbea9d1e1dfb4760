"""eSIM provisioning, SM-DP+ ES2+ style: download order → confirm order → release, then wait
for the device. The service order needs only the profile prepared; this workflow keeps waiting
for the device's download and install on its own, for as long as the profile is valid."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.provisioning import TaskRequest
    from activities.service_ordering import DeviceEventRecord, EsimPrepared, ServiceOrderActivities
    from workflows.common import DB_STEP, condition_or_timeout
    from workflows.provisioning_tasks import ResolveTask, RetryTask, TaskRunner


@dataclass
class EsimInput:
    iccid: str
    service_order_id: str
    order_id: str
    customer_id: str
    msisdn: str
    imsi: str
    matching_id: str
    activation_code: str
    offering_id: str
    task_deadline_seconds: float = 10.0
    validity_days: int = 30


@dataclass
class EsimReady:
    """To the parent service order: the profile is prepared and its activation code issued."""

    iccid: str
    activation_code: str


@dataclass
class DeviceEvent:
    """From the SM-DP+ (or a tester playing the device): `downloaded` or `installed`."""

    event: str


@dataclass
class CancelEsim:
    reason: str


@dataclass
class EsimStatus:
    iccid: str
    state: str
    activation_code: str
    events: list[str] = field(default_factory=list)


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
        self.cancelled: str | None = None

    @workflow.run
    async def run(self, inp: EsimInput) -> EsimStatus:
        self.code = inp.activation_code
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
            ),
            inp.order_id,
            inp.customer_id,
        )
        self.code = outcome.activation_code or inp.activation_code
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
                await workflow.execute_local_activity_method(
                    ServiceOrderActivities.record_device_event, DeviceEventRecord(inp.iccid, event), **DB_STEP
                )
                self.state = DEVICE_STATES[event]
        if self.cancelled is not None:
            self.state = "cancelled"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    @workflow.signal
    def device_event(self, msg: DeviceEvent) -> None:
        if msg.event in DEVICE_STATES:
            self.device_events.append(msg.event)

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
            workflow.info().workflow_id.removeprefix("esim-"), self.state, self.code, list(self.device_events)
        )

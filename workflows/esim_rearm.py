"""eSIM re-download (SGP.22 re-arm): `esim-rearm-<ICCID>`.

A line's profile is re-armed for a new (or wiped) device: the inventory gave it a new matching id
and activation code and put it back to `prepared` (ops/inventory.py rearm_esim), so the old code
no longer fetches it. This workflow places the new download order at the SM-DP+ (cancel the old
order, download order, confirm with the new matching id, release) and then waits for the device's
download and install, as the order's eSIM flow does, for as long as the profile is valid.

Started with the `rearm` signal (signal-with-start): a second re-arm while it runs re-does the
SM-DP+ step with the newer matching id. Device events reach it through `device_event`
(ops/orders.py device_event tries the order's flow first). It completes with a result in every
case (installed, expired, or failed with its reason): never Failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.base import reason_of, rule_code
    from activities.inventory import EsimRearmAtSmdp, InventoryActivities
    from activities.service_ordering import DeviceEventRecord, ServiceOrderActivities
    from core.context import RequestContext
    from workflows.common import DB_STEP, EXTERNAL_CALL, condition_or_timeout
    from workflows.esim_provisioning import DEVICE_STATES, DeviceEvent, EsimStatus


@dataclass
class RearmInput:
    iccid: str
    validity_days: int = 30


@dataclass
class Rearm:
    matching_id: str
    requested_by: RequestContext | None = None


def rearm_workflow_id(iccid: str) -> str:
    return f"esim-rearm-{iccid}"


@workflow.defn
class EsimRearmWorkflow:
    def __init__(self) -> None:
        self.state = "rearming"
        self.code = ""
        self.pending: list[str] = []  # matching ids to place at the SM-DP+, newest last
        self.device_events: list[str] = []
        self.requested_by: list[RequestContext | None] = []
        self.events_seen: list[str] = []
        self.reason: str | None = None
        self.rule_code: str | None = None

    @workflow.run
    async def run(self, inp: RearmInput) -> EsimStatus:
        deadline = workflow.now() + timedelta(days=inp.validity_days)
        try:
            while self.state != "installed":
                if self.pending:
                    matching_id = self.pending[-1]
                    self.pending.clear()
                    self.code = await workflow.execute_activity_method(
                        InventoryActivities.rearm_at_smdp,
                        EsimRearmAtSmdp(inp.iccid, matching_id),
                        **EXTERNAL_CALL,
                    )
                    self.state = "prepared"
                    self.device_events.clear()
                    self.requested_by.clear()
                    deadline = workflow.now() + timedelta(days=inp.validity_days)
                    continue
                left = (deadline - workflow.now()).total_seconds()
                if left <= 0 or not await condition_or_timeout(
                    lambda: bool(self.device_events) or bool(self.pending), left
                ):
                    self.state = "expired"
                    break
                while self.device_events and not self.pending:
                    event = self.device_events.pop(0)
                    by = self.requested_by.pop(0) if self.requested_by else None
                    await workflow.execute_local_activity_method(
                        ServiceOrderActivities.record_device_event,
                        DeviceEventRecord(inp.iccid, event, by),
                        **DB_STEP,
                    )
                    self.events_seen.append(event)
                    self.state = DEVICE_STATES[event]
        except ActivityError as err:
            self.state, self.reason, self.rule_code = "failed", reason_of(err), rule_code(err)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    @workflow.signal
    def rearm(self, msg: Rearm) -> None:
        self.pending.append(msg.matching_id)

    @workflow.signal
    def device_event(self, msg: DeviceEvent) -> None:
        if msg.event in DEVICE_STATES:
            self.device_events.append(msg.event)
            self.requested_by.append(msg.requested_by)

    @workflow.query
    def status(self) -> EsimStatus:
        return EsimStatus(
            workflow.info().workflow_id.removeprefix("esim-rearm-"),
            self.state,
            self.code,
            list(self.events_seen),
            self.reason,
            self.rule_code,
        )

"""Service order (SOM, TMF641): decompose into CFS MobileBroadband → RFS Data + Voice, reserve a
number and an eSIM, and run the network tasks (HLR, PCRF, OCS) in parallel with the eSIM flow."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from activities.attention import AttentionTicket
    from activities.base import reason_of, rule_code
    from activities.provisioning import DeprovisionOrder, ProvisioningActivities, TaskOutcome, TaskRequest
    from activities.service_ordering import (
        ReserveResources,
        ServiceOrderActivities,
        ServiceOrderFailed,
        ServiceOrderRef,
    )
    from workflows.attention import Attention, OperatorDecision
    from workflows.common import CUSTOMER_ID, DB_STEP, MSISDN, ORDER_ID, attributes, compensation_call
    from workflows.esim_provisioning import (
        CancelEsim,
        EsimInput,
        EsimProvisioningWorkflow,
        EsimReady,
        esim_workflow_id,
    )
    from workflows.messages import ServiceOrderInput, ServiceOrderResult, ServiceOrderStatus  # noqa: F401 - re-exported
    from workflows.provisioning_tasks import ResolveTask, RetryTask, TaskRunner


def service_order_workflow_id(service_order_id: str) -> str:
    return f"service-order-{service_order_id}"


NETWORK_TASKS = ("HLR_PROVISION", "PCRF_POLICY_PUSH", "OCS_BALANCE_INIT")
# A failed service order undoes its network tasks, waits for its eSIM flow to end (the flow gives
# its profile back), cancels at the SM-DP+ in a regular activity, and resolves stuck tasks' tickets.
PATCH = "service-order-undoes-network-and-waits-for-esim"
# A failed service order completes with a `failed` result after compensating instead of ending
# Failed (an expected business outcome is not a workflow failure in the Temporal UI); its eSIM
# flow likewise (workflows/esim_provisioning.py), and `_esim_prepared` reads that result.
FAILS_WITH_RESULT = "service-order-ends-with-a-failed-result"
# The network tasks run as local activities (workflows/provisioning_tasks.py) in the workflow task
# that sees the eSIM flow started: no activity tasks and no workflow task per task's answer. (Not
# in the first task with the eSIM start: a workflow task waits for its local activities, so the
# eSIM flow would start only once the network is done, and the started event brings a workflow task
# either way.) This patch implies the two above; new runs record only it.
LOCAL_TASKS = "service-order-runs-network-tasks-locally"
ESIM_START_ATTEMPTS = 10


@workflow.defn
class ServiceOrderWorkflow:
    def __init__(self) -> None:
        self.tasks = TaskRunner()
        self.state = "acknowledged"
        self.msisdn: str | None = None
        self.iccid: str | None = None
        self.esim_ready: EsimReady | None = None
        self.v2 = False
        self.attention = Attention()

    @workflow.run
    async def run(self, inp: ServiceOrderInput) -> ServiceOrderResult:
        self.tasks.local = workflow.patched(LOCAL_TASKS)
        self.v2 = self.tasks.honour_cancel = self.tasks.local or workflow.patched(PATCH)
        esim: workflow.ChildWorkflowHandle | None = None
        try:
            res = await workflow.execute_local_activity_method(
                ServiceOrderActivities.reserve_resources,
                ReserveResources(inp.service_order_id, inp.preferred_msisdn),
                **DB_STEP,
            )
            self.msisdn, self.iccid, self.state = res.msisdn, res.iccid, "in_progress"
            workflow.upsert_search_attributes([MSISDN.value_set(res.msisdn)])
            esim = await self._start_esim_flow(
                EsimInput(
                    res.iccid,
                    inp.service_order_id,
                    inp.order_id,
                    inp.customer_id,
                    res.msisdn,
                    res.imsi,
                    res.matching_id,
                    res.activation_code,
                    inp.offering_id,
                    inp.task_deadline_seconds,
                ),
            )
            network = [
                self.tasks.run(
                    TaskRequest(
                        inp.service_order_id,
                        task,
                        res.msisdn,
                        res.imsi,
                        res.iccid,
                        inp.offering_id,
                        res.matching_id,
                        inp.task_deadline_seconds,
                        inp.allowances,
                    ),
                    inp.order_id,
                    inp.customer_id,
                )
                for task in NETWORK_TASKS
            ]
            await all_or_nothing([*network, self._esim_prepared(esim)])
            await workflow.execute_local_activity_method(
                ServiceOrderActivities.complete_service_order,
                ServiceOrderRef(inp.service_order_id),
                **DB_STEP,
            )
            self.state = "completed"
            return ServiceOrderResult(
                inp.service_order_id, res.msisdn, res.iccid, self.esim_ready.activation_code
            )
        except (ApplicationError, ActivityError, ChildWorkflowError, asyncio.CancelledError) as err:
            reason = reason_of(err)
            self.state = "failed"
            await asyncio.shield(asyncio.ensure_future(self._compensate(inp, esim, reason)))
            code = rule_code(err) or "service_order.failed"
            if self.tasks.local or workflow.patched(FAILS_WITH_RESULT):
                return ServiceOrderResult(
                    inp.service_order_id,
                    self.msisdn or "",
                    self.iccid or "",
                    "",
                    state="failed",
                    reason=reason,
                    rule_code=code,
                )
            raise ApplicationError(reason, type=code, non_retryable=True) from err

    async def _start_esim_flow(self, esim: EsimInput) -> workflow.ChildWorkflowHandle:
        """Start `esim-<ICCID>`. A profile released by a failed order can be reserved again while
        that order's eSIM flow is still closing on its cancel signal (the id is the ICCID's, by
        contract): then tell the old flow to stop, give it a moment, and start again."""
        for attempt in range(1, ESIM_START_ATTEMPTS + 1):
            try:
                return await workflow.start_child_workflow(
                    EsimProvisioningWorkflow.run,
                    esim,
                    id=esim_workflow_id(esim.iccid),
                    # The device may install days later; that wait must not hold the order.
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    search_attributes=attributes(
                        CUSTOMER_ID.value_set(esim.customer_id),
                        ORDER_ID.value_set(esim.order_id),
                        MSISDN.value_set(esim.msisdn),
                    ),
                )
            except WorkflowAlreadyStartedError:
                if attempt == ESIM_START_ATTEMPTS:
                    raise ApplicationError(
                        f"The eSIM profile {esim.iccid} still has an earlier provisioning flow running.",
                        type="esim.previous_flow_running",
                        non_retryable=True,
                    ) from None
                try:
                    await workflow.get_external_workflow_handle(esim_workflow_id(esim.iccid)).signal(
                        EsimProvisioningWorkflow.cancel,
                        CancelEsim(f"profile reserved again by {esim.service_order_id}"),
                    )
                except Exception:  # noqa: BLE001 - it closed meanwhile: the next start succeeds
                    workflow.logger.info("earlier eSIM flow of %s already closed", esim.iccid)
                await workflow.sleep(timedelta(seconds=1))
        raise AssertionError("unreachable")

    async def _compensate(self, inp: ServiceOrderInput, esim, reason: str) -> None:
        if self.v2:
            await self._undo(inp, esim, reason)
            return
        if esim is not None:
            try:
                await esim.signal(EsimProvisioningWorkflow.cancel, CancelEsim(reason))
            except Exception:  # noqa: BLE001 - the eSIM flow may already have ended; release covers it
                workflow.logger.info("eSIM workflow already closed")
        await workflow.execute_local_activity_method(
            ServiceOrderActivities.release_resources,
            ServiceOrderFailed(inp.service_order_id, reason),
            **DB_STEP,
        )

    async def _undo(self, inp: ServiceOrderInput, esim, reason: str) -> None:
        for task_type in sorted(self.tasks.stuck):  # cancelled with the order, still flagged stuck
            await self.tasks.close_ticket(
                TaskRequest(inp.service_order_id, task_type, "", "", "", inp.offering_id),
                f"[cancelled] the service order failed: {reason}",
            )
        if esim is not None:
            try:
                await esim.signal(EsimProvisioningWorkflow.cancel, CancelEsim(reason))
                await esim  # it ends promptly (a stuck preparation honours cancel) and gives back its profile
            except Exception:  # noqa: BLE001 - it had ended (or failed): the release below covers it
                workflow.logger.info("eSIM workflow of %s has ended", self.iccid)
        # The number stays held until the network has forgotten it: released earlier, it could be
        # provisioned for another order that a late undo would then remove.
        while self.msisdn is not None:
            try:
                await workflow.execute_activity_method(
                    ProvisioningActivities.deprovision_service_order,
                    DeprovisionOrder(inp.service_order_id, reason, inp.task_deadline_seconds),
                    **compensation_call(),
                )
                break
            except ActivityError as err:
                decision = await self.attention.ask(
                    AttentionTicket(
                        "network_undo",
                        "provisioning_exception",
                        f"Network undo of failed service order {inp.service_order_id} keeps failing",
                        f"Service order {inp.service_order_id} (order {inp.order_id}) failed; removing "
                        f"{self.msisdn} from the HLR/PCRF/OCS keeps failing, so the number stays held. "
                        f"Retry, or resolve once it is removed by hand. Last error: {reason_of(err)}",
                        customer_id=inp.customer_id,
                        order_id=inp.order_id,
                    )
                )
                if decision.action == "resolve":
                    break
        await workflow.execute_activity_method(
            ServiceOrderActivities.cancel_held_profiles,
            ServiceOrderRef(inp.service_order_id),
            **compensation_call(),
        )
        await workflow.execute_local_activity_method(
            ServiceOrderActivities.release_resources,
            ServiceOrderFailed(inp.service_order_id, reason, smdp_cancelled=True),
            **DB_STEP,
        )

    async def _esim_prepared(self, esim: workflow.ChildWorkflowHandle) -> TaskOutcome:
        ready = asyncio.ensure_future(workflow.wait_condition(lambda: self.esim_ready is not None))
        done, _ = await workflow.wait([ready, esim], return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            ended = await esim  # re-raises the eSIM workflow's failure (before FAILS_WITH_RESULT)
            if ended is not None and ended.state == "failed":
                raise_failed_result(ended.reason, ended.rule_code)
            raise ApplicationError(
                "The eSIM workflow ended before the profile was prepared.",
                type="esim.prepare.failed",
                non_retryable=True,
            )
        return TaskOutcome("ESIM_PROFILE_PREPARE", attempt=0, activation_code=self.esim_ready.activation_code)

    @workflow.signal
    def esim_prepared(self, msg: EsimReady) -> None:
        self.esim_ready = msg

    @workflow.signal
    def operator_decision(self, msg: OperatorDecision) -> None:
        self.attention.decide(msg)

    @workflow.signal
    def resolve_task(self, msg: ResolveTask) -> None:
        self.tasks.resolve(msg)

    @workflow.signal
    def retry_task(self, msg: RetryTask) -> None:
        self.tasks.retry(msg)

    @workflow.query
    def status(self) -> ServiceOrderStatus:
        return ServiceOrderStatus(
            workflow.info().workflow_id.removeprefix("service-order-"),
            self.state,
            self.msisdn,
            self.iccid,
            sorted(self.tasks.stuck),
            dict(self.tasks.tickets),
        )


async def all_or_nothing(coros: list) -> list:
    """Run branches in parallel; on the first failure cancel the others, then raise it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    done, pending = await workflow.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    failed = next((t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None), None)
    if failed is not None:
        for t in pending:
            t.cancel()
        await workflow.wait(pending) if pending else None
        raise failed.exception()
    return [t.result() for t in tasks]


def raise_failed_result(reason: str | None, code: str | None) -> None:
    """A child's `failed` result, raised as its failure used to reach the parent: the same reason
    (the innermost message) and rule code (the innermost type, if any) for the order note."""
    raise ApplicationError(reason or "The work failed.", type=code, non_retryable=True)

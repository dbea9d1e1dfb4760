"""Running a provisioning task inside a workflow, with the operator in the loop.

A task that fails transiently is retried by Temporal (three attempts). Those are the network
element's attempts: when they ran out because the last one timed out start-to-close (our worker
was killed or hung mid-call, not the element's doing), the task runs again with a fresh budget
(patch `provisioning-task-survives-worker-crashes`), for the crash patience of workflows/common.py;
a task still timing out after that goes the stuck path below.

A runner whose owner turned `local` on (behind the owner's own patch) runs the task as a LOCAL
activity, in the workflow task that reaches it: no activity task, no extra workflow task. The
element's three attempts are the same (retried inside the worker, the same backoff). A worker that
dies mid-task never reports: its workflow task times out and the next worker runs the task again
from its first attempt, so a crash uses up nothing (every task is idempotent at its element, and
`task_started` counts each attempt in the database). An attempt that times out start-to-close is
then a live worker hung on it (the element's own hang is caught by the deadline inside the
activity), which gets a fresh budget as above.

A task that passes its deadline is *stuck*: the workflow flags itself `BssStuck=true`, opens a
ticket, and waits — for days if need be — until an operator resolves the task (with a note) or
retries it, or (for a runner whose owner turned `honour_cancel` on) until the owner is cancelled:
a stuck task never holds a cancelled eSIM flow open. The ticket is resolved when the task is resolved, retried to
success or cancelled, under the operator who asked when one did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutType
from temporalio.exceptions import TimeoutError as AttemptTimedOut

with workflow.unsafe.imports_passed_through():
    from activities.base import rule_code
    from activities.provisioning import (
        DEADLINE_EXCEEDED,
        NETWORK_ERROR,
        ProvisioningActivities,
        TaskOutcome,
        TaskRequest,
    )
    from activities.service_ordering import ServiceOrderActivities, TaskResolved, TaskStuck, TaskTicketClose
    from core.context import RequestContext
    from workflows.common import DB_STEP, STUCK, provisioning_crash_patience, provisioning_options

TASK_CANCELLED = "provisioning.task.cancelled"
CRASH_PATCH = "provisioning-task-survives-worker-crashes"


@dataclass
class ResolveTask:
    """Operator: the task was done by hand; the note says how."""

    task_type: str
    note: str
    requested_by: RequestContext | None = None


@dataclass
class RetryTask:
    """Operator: run the task again."""

    task_type: str
    requested_by: RequestContext | None = None


@dataclass
class _Action:
    kind: str
    note: str = ""
    requested_by: RequestContext | None = None


class TaskRunner:
    def __init__(self) -> None:
        self.stuck: set[str] = set()
        self.tickets: dict[str, str] = {}
        self._actions: dict[str, _Action] = {}
        # Set by the owning workflow behind its patch: wait for the operator OR the owner's cancel,
        # and resolve tickets when their task ends.
        self.honour_cancel = False
        # Set by the owning workflow behind its patch: the task runs as a local activity (which
        # implies the crash patch's fresh budget, so no marker for it).
        self.local = False

    def resolve(self, msg: ResolveTask) -> None:
        if msg.task_type in self.stuck and msg.note.strip():
            self._actions[msg.task_type] = _Action("resolve", msg.note.strip(), msg.requested_by)

    def retry(self, msg: RetryTask) -> None:
        if msg.task_type in self.stuck:
            self._actions[msg.task_type] = _Action("retry", requested_by=msg.requested_by)

    async def run(
        self,
        req: TaskRequest,
        order_id: str,
        customer_id: str,
        cancelled: Callable[[], str | None] | None = None,
    ) -> TaskOutcome:
        retried: _Action | None = None
        started = workflow.now()
        while True:
            try:
                run = (
                    workflow.execute_local_activity_method if self.local else workflow.execute_activity_method
                )
                outcome = await run(
                    ProvisioningActivities.run_task, req, **provisioning_options(req.deadline_seconds)
                )
                if retried is not None and self.honour_cancel:
                    who = retried.requested_by.actor if retried.requested_by else "an operator"
                    await self.close_ticket(
                        req, f"[retry] {req.task_type} succeeded when {who} retried it.", retried.requested_by
                    )
                return outcome
            except (ActivityError, ApplicationError, AttemptTimedOut) as err:
                # A local activity's own failure arrives as the ApplicationError it raised, and its
                # timeout as an ActivityError caused by a TimeoutError live but as the bare
                # TimeoutError on replay (SDK 1.35); a regular one's always come wrapped.
                if not isinstance(err, ActivityError) and not self.local:
                    raise
                lost = _lost_with_worker(err, self.local)
                if lost and (workflow.now() - started).total_seconds() < provisioning_crash_patience(
                    req.deadline_seconds
                ):
                    workflow.logger.warning(
                        "%s: attempts lost with the worker; a fresh budget", req.task_type
                    )
                    continue
                if _our_side_failed(err, self.local) and (
                    workflow.now() - started
                ).total_seconds() < provisioning_crash_patience(req.deadline_seconds):
                    # Our database, not the element, failed the attempts (Postgres restarting): the
                    # element's budget is untouched; try again in a moment.
                    workflow.logger.warning("%s: our side failed (%s); trying again", req.task_type, err)
                    await workflow.sleep(timedelta(seconds=1))
                    continue
                if rule_code(err) != DEADLINE_EXCEEDED and not lost:
                    raise
            action = await self._wait_for_operator(
                req, order_id, customer_id, cancelled if self.honour_cancel else None
            )
            if action.kind == "cancel":
                await self.close_ticket(req, f"[cancelled] {action.note}")
                raise ApplicationError(
                    f"{req.task_type} was stuck when its work was cancelled: {action.note}",
                    type=TASK_CANCELLED,
                    non_retryable=True,
                )
            if action.kind == "resolve":
                await workflow.execute_local_activity_method(
                    ServiceOrderActivities.mark_task_resolved,
                    TaskResolved(req.service_order_id, req.task_type, action.note, action.requested_by),
                    **DB_STEP,
                )
                return TaskOutcome(req.task_type, attempt=0)
            retried = action
            started = workflow.now()

    async def close_ticket(self, req: TaskRequest, note: str, by: RequestContext | None = None) -> None:
        if req.task_type in self.tickets:
            await workflow.execute_local_activity_method(
                ServiceOrderActivities.close_task_ticket,
                TaskTicketClose(req.service_order_id, req.task_type, note, by),
                **DB_STEP,
            )

    async def _wait_for_operator(
        self,
        req: TaskRequest,
        order_id: str,
        customer_id: str,
        cancelled: Callable[[], str | None] | None,
    ) -> _Action:
        self.stuck.add(req.task_type)
        workflow.upsert_search_attributes([STUCK.value_set(True)])
        self.tickets[req.task_type] = await workflow.execute_local_activity_method(
            ServiceOrderActivities.mark_task_stuck,
            TaskStuck(req.service_order_id, order_id, customer_id, req.task_type, req.deadline_seconds),
            **DB_STEP,
        )
        if cancelled is None:
            await workflow.wait_condition(lambda: req.task_type in self._actions)
        else:
            await workflow.wait_condition(lambda: req.task_type in self._actions or cancelled() is not None)
        self.stuck.discard(req.task_type)
        if not self.stuck:
            workflow.upsert_search_attributes([STUCK.value_set(False)])
        if req.task_type not in self._actions:
            return _Action("cancel", cancelled() or "cancelled")
        return self._actions.pop(req.task_type)


def _lost_with_worker(err: ActivityError | ApplicationError | AttemptTimedOut, local: bool = False) -> bool:
    """The last attempt timed out start-to-close (or missed a heartbeat): the worker running it
    died or hung. The element's own failures are ApplicationErrors and keep their budget. A local
    task's runner comes after the crash patch, so it needs no marker for it."""
    timeout = err if isinstance(err, AttemptTimedOut) else err.cause
    return (
        isinstance(timeout, AttemptTimedOut)
        and timeout.type in (TimeoutType.START_TO_CLOSE, TimeoutType.HEARTBEAT)
        and (local or workflow.patched(CRASH_PATCH))
    )


def _our_side_failed(err: ActivityError | ApplicationError | AttemptTimedOut, local: bool) -> bool:
    """A local task's attempts ran out on a retryable error that is not the element's (a network
    error or its deadline): our own database or worker was failing, e.g. Postgres restarting."""
    if not local:
        return False
    failure = err if isinstance(err, ApplicationError) else getattr(err, "cause", None)
    return (
        isinstance(failure, ApplicationError)
        and not failure.non_retryable
        and failure.type not in (NETWORK_ERROR, DEADLINE_EXCEEDED)
    )

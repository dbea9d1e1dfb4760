"""Running a provisioning task inside a workflow, with the operator in the loop.

A task that fails transiently is retried by Temporal (three attempts). A task that passes its
deadline is *stuck*: the workflow flags itself `BssStuck=true`, opens a ticket, and waits —
for days if need be — until an operator resolves the task (with a note) or retries it.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.base import rule_code
    from activities.provisioning import DEADLINE_EXCEEDED, ProvisioningActivities, TaskOutcome, TaskRequest
    from activities.service_ordering import ServiceOrderActivities, TaskResolved, TaskStuck
    from workflows.common import DB_STEP, STUCK, provisioning_options


@dataclass
class ResolveTask:
    """Operator: the task was done by hand; the note says how."""

    task_type: str
    note: str


@dataclass
class RetryTask:
    """Operator: run the task again."""

    task_type: str


@dataclass
class _Action:
    kind: str
    note: str = ""


class TaskRunner:
    def __init__(self) -> None:
        self.stuck: set[str] = set()
        self.tickets: dict[str, str] = {}
        self._actions: dict[str, _Action] = {}

    def resolve(self, msg: ResolveTask) -> None:
        if msg.task_type in self.stuck and msg.note.strip():
            self._actions[msg.task_type] = _Action("resolve", msg.note.strip())

    def retry(self, msg: RetryTask) -> None:
        if msg.task_type in self.stuck:
            self._actions[msg.task_type] = _Action("retry")

    async def run(self, req: TaskRequest, order_id: str, customer_id: str) -> TaskOutcome:
        while True:
            try:
                return await workflow.execute_activity_method(
                    ProvisioningActivities.run_task, req, **provisioning_options(req.deadline_seconds)
                )
            except ActivityError as err:
                if rule_code(err) != DEADLINE_EXCEEDED:
                    raise
            action = await self._wait_for_operator(req, order_id, customer_id)
            if action.kind == "resolve":
                await workflow.execute_local_activity_method(
                    ServiceOrderActivities.mark_task_resolved,
                    TaskResolved(req.service_order_id, req.task_type, action.note),
                    **DB_STEP,
                )
                return TaskOutcome(req.task_type, attempt=0)

    async def _wait_for_operator(self, req: TaskRequest, order_id: str, customer_id: str) -> _Action:
        self.stuck.add(req.task_type)
        workflow.upsert_search_attributes([STUCK.value_set(True)])
        self.tickets[req.task_type] = await workflow.execute_local_activity_method(
            ServiceOrderActivities.mark_task_stuck,
            TaskStuck(req.service_order_id, order_id, customer_id, req.task_type, req.deadline_seconds),
            **DB_STEP,
        )
        await workflow.wait_condition(lambda: req.task_type in self._actions)
        self.stuck.discard(req.task_type)
        if not self.stuck:
            workflow.upsert_search_attributes([STUCK.value_set(False)])
        return self._actions.pop(req.task_type)

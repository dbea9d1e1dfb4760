"""A workflow that meets something it cannot handle asks an operator instead of dying.

`Attention.ask` opens a trouble ticket naming the workflow and the topic (idempotent, so a replayed
or retried open finds the same ticket), flags the workflow `BssStuck=true` for the Temporal UI, and
waits — for days if need be — for an `OperatorDecision` signal: `retry` the step, or `resolve` it
(the operator fixed it by hand; the note says how). The ticket is then resolved under the
operator's name. `bss ticket retry|resolve TKT-…` sends the signal (ops/attention.py).

A workflow using it owns an `Attention()` and forwards its `operator_decision` signal to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.attention import AttentionActivities, AttentionClosed, AttentionTicket
    from core.context import RequestContext
    from workflows.common import DB_STEP, STUCK

DECISIONS = ("retry", "resolve")
SIGNAL = "operator_decision"


@dataclass
class OperatorDecision:
    topic: str
    action: str  # one of DECISIONS
    note: str = ""
    requested_by: RequestContext | None = None


class Attention:
    def __init__(self) -> None:
        self.waiting: dict[str, str] = {}  # topic -> ticket id
        self._decisions: dict[str, OperatorDecision] = {}

    def decide(self, msg: OperatorDecision) -> None:
        if msg.topic in self.waiting and msg.action in DECISIONS:
            self._decisions[msg.topic] = msg

    async def ask(self, need: AttentionTicket) -> OperatorDecision:
        """Open (or find) the ticket for `need.topic` and wait for an operator's decision."""
        ticket_id = await workflow.execute_local_activity_method(
            AttentionActivities.open_attention_ticket, need, **DB_STEP
        )
        self.waiting[need.topic] = ticket_id
        workflow.upsert_search_attributes([STUCK.value_set(True)])
        await workflow.wait_condition(lambda: need.topic in self._decisions)
        decision = self._decisions.pop(need.topic)
        del self.waiting[need.topic]
        if not self.waiting:
            workflow.upsert_search_attributes([STUCK.value_set(False)])
        await workflow.execute_local_activity_method(
            AttentionActivities.close_attention_ticket,
            AttentionClosed(ticket_id, decision.action, decision.note, decision.requested_by),
            **DB_STEP,
        )
        return decision

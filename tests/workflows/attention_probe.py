"""A workflow that asks an operator once, for tests/workflows/test_attention.py."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.attention import AttentionTicket
    from workflows.attention import Attention, OperatorDecision


@workflow.defn
class AttentionProbe:
    def __init__(self) -> None:
        self.attention = Attention()

    @workflow.run
    async def run(self, customer_id: str) -> str:
        decision = await self.attention.ask(
            AttentionTicket(
                "probe",
                "payment_exception",
                "probe needs an operator",
                "a test asks",
                customer_id=customer_id,
            )
        )
        return f"{decision.action}:{decision.note}"

    @workflow.signal
    def operator_decision(self, msg: OperatorDecision) -> None:
        self.attention.decide(msg)

"""A stand-in for the line's workflow that only records the `exhausted` signals rating sends."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.subscription import Exhausted


@workflow.defn
class ExhaustedProbe:
    def __init__(self) -> None:
        self.received: list[Exhausted] = []

    @workflow.run
    async def run(self) -> list[Exhausted]:
        await workflow.wait_condition(lambda: bool(self.received))
        return self.received

    @workflow.signal
    async def exhausted(self, msg: Exhausted) -> None:
        self.received.append(msg)

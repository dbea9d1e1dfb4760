"""The line's own workflow, one per subscription (`subscription-SUB-…`).

This first version holds the line: it knows its state and answers `status`. Renewals, block on
exhaust, top-ups, plan changes and termination arrive with the subscription-lifecycle issue.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow


@dataclass
class SubscriptionInput:
    subscription_id: str
    customer_id: str
    offering_id: str
    msisdn: str
    iccid: str
    current_period_end: str


@dataclass
class SubscriptionStatus:
    subscription_id: str
    state: str
    msisdn: str
    offering_id: str
    current_period_end: str


def subscription_workflow_id(subscription_id: str) -> str:
    return f"subscription-{subscription_id}"


@workflow.defn
class SubscriptionWorkflow:
    def __init__(self) -> None:
        self.inp: SubscriptionInput | None = None
        self.state = "active"

    @workflow.run
    async def run(self, inp: SubscriptionInput) -> SubscriptionStatus:
        self.inp = inp
        await workflow.wait_condition(lambda: self.state == "terminated")
        return self.status()

    @workflow.query
    def status(self) -> SubscriptionStatus:
        assert self.inp is not None
        return SubscriptionStatus(self.inp.subscription_id, self.state, self.inp.msisdn, self.inp.offering_id,
                                  self.inp.current_period_end)

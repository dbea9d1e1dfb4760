"""Test doubles for the line's fault tests: a card gateway that fails on cue, and a stand-in for
the line's eSIM flow that records the cancel it gets."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domains.payment.gateway import GatewayResult

_refs = itertools.count(1)


class LedgerGateway:
    """Idempotent by key like a real acquirer (its ledger answers a replayed key). `outage` refuses
    every call (a gateway or network outage: retryable), `bug` raises TypeError (a programming
    error in the step), `hold` makes an authorisation wait for the event (a slow gateway)."""

    def __init__(self) -> None:
        self.ledger: dict[str, GatewayResult] = {}
        self.outage = False
        self.bug = False
        self.calls = 0
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def authorize(
        self, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult:
        self.calls += 1
        if self.bug:
            raise TypeError("authorize() got an unexpected keyword argument 'amount_cents'")
        if self.outage:
            raise ConnectionError("card gateway unavailable")
        if self.hold is not None:
            self.entered.set()
            await self.hold.wait()
        if idempotency_key not in self.ledger:
            declined = "DECLINE" in token.upper() or "4000000000000002" in token
            self.ledger[idempotency_key] = GatewayResult(
                approved=not declined,
                gateway_ref=f"pi_{next(_refs)}",
                decline_code="card_declined" if declined else None,
            )
        return self.ledger[idempotency_key]

    async def refund(self, gateway_ref: str, amount: Decimal, idempotency_key: str) -> GatewayResult:
        return GatewayResult(approved=True, gateway_ref=f"re_{gateway_ref}")

    async def find_authorization(self, idempotency_key: str) -> GatewayResult | None:
        return self.ledger.get(idempotency_key)

    def approved(self, key_part: str) -> int:
        return sum(1 for key, r in self.ledger.items() if key_part in key and r.approved)


@workflow.defn
class EsimFlowStandIn:
    """Runs under the eSIM flow's id; ends with the reason of the cancel it receives."""

    def __init__(self) -> None:
        self.reason: str | None = None

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.reason is not None)
        return self.reason or ""

    @workflow.signal
    def cancel(self, msg: dict) -> None:
        self.reason = msg.get("reason", "")

"""The card gateway port, and the mock gateway the MVNO runs with until a real acquirer is plugged in.

Real gateways (Stripe PaymentIntents and the like) are idempotent on the key the merchant sends;
the mock keeps that promise too, so a retried activity can never authorize a card twice.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

DECLINE_MARKERS = ("DECLINE", "FAIL")
DECLINED_CARD_NUMBER = "4000000000000002"


@dataclass(frozen=True)
class GatewayResult:
    approved: bool
    gateway_ref: str | None = None
    decline_code: str | None = None
    decline_reason: str | None = None


class PaymentGateway(Protocol):
    async def authorize(
        self, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult: ...

    async def refund(self, gateway_ref: str, amount: Decimal, idempotency_key: str) -> GatewayResult: ...


class MockGateway:
    """Approves every token but the ones that ask to be declined (`...DECLINE...`, `...FAIL...`).

    `authorizations` and `refunds` count the calls that reached the "acquirer" (not the replays of
    an idempotency key), which is what the exactly-once tests assert.
    """

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.authorizations = 0
        self.refunds = 0
        self._results: dict[str, GatewayResult] = {}
        # One lock per key: replays of a key wait for its first call, other keys run in parallel.
        self._locks: dict[str, asyncio.Lock] = {}

    async def authorize(
        self, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult:
        async with self._locks.setdefault(idempotency_key, asyncio.Lock()):
            if idempotency_key in self._results:
                return self._results[idempotency_key]
            await self._network_delay()
            self.authorizations += 1
            if any(marker in token.upper() for marker in DECLINE_MARKERS) or DECLINED_CARD_NUMBER in token:
                result = GatewayResult(
                    approved=False,
                    gateway_ref=_ref(),
                    decline_code="card_declined",
                    decline_reason="card_declined_by_issuer",
                )
            else:
                result = GatewayResult(approved=True, gateway_ref=_ref())
            self._results[idempotency_key] = result
            return result

    async def refund(self, gateway_ref: str, amount: Decimal, idempotency_key: str) -> GatewayResult:
        async with self._locks.setdefault(idempotency_key, asyncio.Lock()):
            if idempotency_key in self._results:
                return self._results[idempotency_key]
            await self._network_delay()
            self.refunds += 1
            result = GatewayResult(approved=True, gateway_ref=f"re_{secrets.token_hex(12)}")
            self._results[idempotency_key] = result
            return result

    async def _network_delay(self) -> None:
        if self.latency > 0:
            await asyncio.sleep(self.latency)


def _ref() -> str:
    return f"pi_{secrets.token_hex(12)}"

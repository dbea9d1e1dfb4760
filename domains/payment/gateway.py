"""The card gateway port: what the BSS asks an acquirer, what it answers, and how it fails.

Real gateways (Stripe PaymentIntents and the like) are idempotent on the key the merchant sends, and
can be asked later what happened to a key; the mock (domains/payment/mock_gateway.py, the `mock`
provider of `BSS_PAYMENT_PROVIDER`) keeps both promises from its own ledger in Postgres.

How a call can end, and what the caller does with it:
- an answer (`GatewayResult`): approved, or declined. A decline is a result, never an error.
- `GatewayError` (and its kinds below): the gateway could not be reached or did not answer. It is
  transient: retry with the same idempotency key, for as long as it takes. When `outcome_unknown`
  the gateway may have acted (a timeout, a lost answer): the retry, or `find_authorization`,
  learns what it did from the gateway's own record of the key (reconciliation by key). Activities
  turn it into a retryable Temporal ApplicationError whose `type` is `code`.
"""

from __future__ import annotations

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
    # Filled in by `find_authorization`: what the gateway holds for the key.
    amount: Decimal | None = None
    refunded: bool = False


class GatewayError(Exception):
    """The gateway did not give an answer. Retryable: try again with the same idempotency key."""

    code = "payment.gateway_unavailable"
    outcome_unknown = False


class GatewayUnavailable(GatewayError):
    """Refused at once (a 503, a connection refused): nothing happened at the gateway."""

    code = "payment.gateway_unavailable"


class GatewayTimeout(GatewayError):
    """No answer within the gateway timeout: the gateway may or may not have acted."""

    code = "payment.gateway_timeout"
    outcome_unknown = True


class GatewayResponseLost(GatewayError):
    """The connection dropped after the request was sent: the gateway may have acted (it did, in the mock)."""

    code = "payment.gateway_response_lost"
    outcome_unknown = True


class RefundDeclined(GatewayError):
    """The gateway refused a refund. Still retried (a refund is owed); the saga opens a ticket when it
    keeps failing."""

    code = "payment.refund.declined"


GATEWAY_ERROR_CODES = (
    GatewayUnavailable.code,
    GatewayTimeout.code,
    GatewayResponseLost.code,
    RefundDeclined.code,
)


class PaymentGateway(Protocol):
    async def authorize(
        self, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult: ...

    async def refund(self, gateway_ref: str, amount: Decimal, idempotency_key: str) -> GatewayResult: ...

    async def find_authorization(self, idempotency_key: str) -> GatewayResult | None:
        """What the gateway did with an authorisation key (with its amount and whether it was
        refunded), or None when it never authorised anything under that key."""
        ...


def declines(token: str) -> bool:
    """The reference's test cards: the number 4000000000000002 and any token containing DECLINE."""
    return any(marker in token.upper() for marker in DECLINE_MARKERS) or DECLINED_CARD_NUMBER in token


PROVIDERS = ("mock",)


def check_provider(provider: str) -> str:
    """Fail at start, in one sentence, on a provider this build cannot talk to."""
    if provider not in PROVIDERS:
        raise RuntimeError(
            f"BSS_PAYMENT_PROVIDER={provider!r} is not a payment provider this build knows; "
            f"use one of: {', '.join(PROVIDERS)}."
        )
    return provider

"""State moves of a line, each with its history row, and the reasons a line is blocked for."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from domains.subscription import rules
from domains.subscription.models import Subscription, SubscriptionStateHistory

# state_reason of a blocked line: a data top-up lifts the first; only a paid renewal lifts the others.
EXHAUSTED = "primary_allowance_exhausted"
RENEWAL_DECLINED = "renewal_declined"
# Blocked while a renewal our side could not charge yet (gateway or database down) keeps retrying.
RENEWAL_PENDING = "renewal_pending"


def move(
    session: AsyncSession,
    ctx: RequestContext,
    sub: Subscription,
    trigger: str | None,
    reason: str | None,
    *,
    note: str | None = None,
    code: str | None = None,
) -> None:
    """Apply a lifecycle trigger (None: keep the state, change only the reason) with its history row."""
    before = sub.state
    if trigger is not None:
        sub.state = rules.subscription_lifecycle.next(trigger, sub.state, code=code)
    now = clock.now()
    sub.state_reason, sub.updated_at = reason, now
    session.add(sub)
    session.add(
        SubscriptionStateHistory(
            subscription_id=sub.id,
            from_state=before,
            to_state=sub.state,
            at=now,
            actor=ctx.actor,
            reason=(note or reason or trigger or "")[:200] or None,
        )
    )

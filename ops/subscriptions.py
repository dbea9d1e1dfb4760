"""Subscription operations: top-ups, renew now, plan changes and termination of a line, each an
update of its `subscription-<SUB>` workflow; and the operator's price migration.

The database is asked first (does the line exist, has it ended?) because a terminated line's
workflow has finished and cannot answer. Everything else is the workflow's to refuse: its
validators and its activities' domain rules fail the update with a rule code, which becomes a
PolicyViolation here. An `Idempotency-Key` becomes the update id: Temporal answers a repeated
update id with the first outcome, and the activity keys derived from it make the charge happen
once even when the workflow has continued as new in between.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from core.context import RequestContext
from core.db import transaction
from core.errors import DomainError, Forbidden, NotFound, PolicyViolation
from domains.subscription import rules
from ops.catalog import ANONYMOUS
from ops.orders import TemporalUnavailable
from ops.runtime import Runtime
from ops.som import TEMPORAL_TIMEOUT, temporal_guard

# An update charges a card and writes the line: give it longer than a status read.
UPDATE_TIMEOUT = 30.0


async def status(rt: Runtime, sub_id: str) -> dict[str, Any]:
    """The line with its balances, pending change, pending price migration and running day passes."""
    from domains.subscription import lifecycle

    async with rt.db() as s:
        return await lifecycle.status_view(s, sub_id)


async def purchase_vas(
    rt: Runtime,
    ctx: RequestContext,
    sub_id: str,
    vas_offering_id: str,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Charge a top-up to the card on file and add its allowance; a data top-up brings back a
    line blocked because its data ran out."""
    from workflows.subscription import PurchaseVas, SubscriptionWorkflow

    await _live_line(rt, sub_id, "subscription.vas_purchase.not_if_terminated", "takes no top-ups")
    update_id = _update_id("vas", idempotency_key)
    if update_id is not None:
        await _refuse_key_for_another_vas(rt, sub_id, update_id, vas_offering_id)
    await _update(rt, sub_id, SubscriptionWorkflow.purchase_vas, PurchaseVas(vas_offering_id, ctx), update_id)
    return await status(rt, sub_id)


async def schedule_plan_change(
    rt: Runtime, ctx: RequestContext, sub_id: str, offering_id: str
) -> dict[str, Any]:
    """Move the line to another plan at its next renewal, at that plan's price then."""
    from workflows.subscription import SchedulePlanChange, SubscriptionWorkflow

    await _live_line(rt, sub_id, "subscription.plan_change.not_eligible_state", "cannot change plan")
    await _update(rt, sub_id, SubscriptionWorkflow.schedule_plan_change, SchedulePlanChange(offering_id, ctx))
    return await status(rt, sub_id)


async def cancel_plan_change(rt: Runtime, ctx: RequestContext, sub_id: str) -> dict[str, Any]:
    """Nothing pending is not an error: the line is returned as it is."""
    from workflows.subscription import CancelPlanChange, SubscriptionWorkflow

    await _live_line(rt, sub_id, "subscription.plan_change.not_eligible_state", "has no plan to change")
    await _update(rt, sub_id, SubscriptionWorkflow.cancel_plan_change, CancelPlanChange(ctx))
    return await status(rt, sub_id)


async def renew_now(
    rt: Runtime, ctx: RequestContext, sub_id: str, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Charge the next period now and start it, reactivating a blocked line. A declined card is
    refused with `subscription.renew.payment_declined` (the declined payment stays on record and
    the line waits blocked for `renewal_declined`)."""
    from workflows.subscription import RenewNow, SubscriptionWorkflow

    await _live_line(rt, sub_id, "subscription.renew.only_if_active_or_blocked", "cannot be renewed")
    outcome = await _update(
        rt, sub_id, SubscriptionWorkflow.renew_now, RenewNow(ctx), _update_id("renew", idempotency_key)
    )
    if outcome.status == "declined":
        raise PolicyViolation(
            "subscription.renew.payment_declined",
            f"The card on file was declined ({outcome.reason or 'card_declined'}); {sub_id} was not "
            "renewed and stays blocked until a renewal is paid.",
            subscription_id=sub_id,
            payment_id=outcome.payment_id,
        )
    return await status(rt, sub_id)


async def terminate(
    rt: Runtime, ctx: RequestContext, sub_id: str, reason: str | None = None
) -> dict[str, Any]:
    """End the line: its number rests 90 days in quarantine, its eSIM goes back to the pool and
    its workflow ends."""
    from workflows.subscription import SubscriptionWorkflow, Terminate

    await _live_line(rt, sub_id, "subscription.terminate.invalid_state", "is already terminated")
    why = (reason or "").strip() or f"terminated by {ctx.actor}"
    await _update(rt, sub_id, SubscriptionWorkflow.terminate, Terminate(why[:200], ctx))
    return await status(rt, sub_id)


async def migrate_price(
    rt: Runtime,
    ctx: RequestContext,
    offering_id: str,
    new_price_id: str,
    notice_days: int = 30,
    effective_from: datetime | None = None,
) -> int:
    """Move every live line of a plan to a new price from its first renewal after the notice.
    Returns how many lines have that migration pending; the renewals apply it."""
    from domains.subscription import lifecycle

    # A price change reaches every customer on the plan: it must name who made it.
    if ctx.actor.strip().lower() in ANONYMOUS:
        raise Forbidden("subscription.admin_only", "A price migration needs a named actor (X-BSS-Actor).")
    async with transaction(rt.db) as s:
        return await lifecycle.schedule_price_migration(
            s,
            ctx,
            offering_id=offering_id,
            new_price_id=new_price_id,
            notice_days=notice_days,
            effective_from=effective_from,
        )


# --------------------------------------------------------------------------- plumbing


async def _live_line(rt: Runtime, sub_id: str, code: str, what: str) -> None:
    """404 for an unknown line; the action's own rule for a terminated one (its workflow is over)."""
    from domains.subscription.services import get_subscription

    async with rt.db() as s:
        sub = await get_subscription(s, sub_id)
    if sub.state == rules.TERMINATED:
        raise PolicyViolation(
            code, f"{sub_id} is terminated; it {what}.", subscription_id=sub_id, state=sub.state
        )


def _update_id(action: str, idempotency_key: str | None) -> str | None:
    # Prefixed by the action, so one key sent to /vas and to /renew stays two requests.
    return f"{action}-{idempotency_key}" if idempotency_key else None


async def _refuse_key_for_another_vas(rt: Runtime, sub_id: str, update_id: str, vas_offering_id: str) -> None:
    """Temporal answers a repeated update id with the first outcome whatever was asked: a key
    already spent on another top-up must be refused rather than silently answered."""
    from sqlmodel import select

    from domains.subscription.models import VasPurchase
    from workflows.subscription import subscription_workflow_id

    key = f"{subscription_workflow_id(sub_id)}/vas/{update_id}"  # the workflow's activity key
    async with rt.db() as s:
        spent = (await s.exec(select(VasPurchase).where(VasPurchase.idempotency_key == key))).first()
    if spent is not None and spent.vas_offering_id != vas_offering_id:
        raise PolicyViolation(
            "idempotency_key.reused",
            f"This Idempotency-Key already bought {spent.vas_offering_id} for {sub_id}.",
        )


async def _update(rt: Runtime, sub_id: str, update: Any, arg: Any, update_id: str | None = None) -> Any:
    from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError

    from workflows.subscription import subscription_workflow_id

    async with temporal_guard("subscription"):
        client = await asyncio.wait_for(rt.temporal(), TEMPORAL_TIMEOUT)
        handle = client.get_workflow_handle(subscription_workflow_id(sub_id))
        try:
            return await asyncio.wait_for(handle.execute_update(update, arg, id=update_id), UPDATE_TIMEOUT)
        except WorkflowUpdateFailedError as exc:
            raise _refusal(exc, sub_id) from None
        except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
            raise TemporalUnavailable(
                "subscription.update.timeout",
                f"{sub_id}'s workflow did not answer within {UPDATE_TIMEOUT:g} s; the change may still "
                "happen. Check the line, or send the request again with the same Idempotency-Key.",
                subscription_id=sub_id,
            ) from None


def _refusal(exc: BaseException, sub_id: str) -> DomainError:
    """The rule code of the validator, or of the activity's domain error, as the caller's error."""
    refusal = _rule(exc)
    if refusal is None:
        return TemporalUnavailable(
            "subscription.update.failed",
            f"{sub_id}'s workflow could not apply the change: {exc}",
            subscription_id=sub_id,
        )
    error = NotFound if refusal.type.endswith(".not_found") else PolicyViolation
    return error(refusal.type, refusal.message, subscription_id=sub_id)


def _rule(exc: BaseException) -> Any:
    """The outermost ApplicationError with a type: the activity's rule, not the Python exception
    it was raised from (which Temporal carries as a cause typed `PolicyViolation`)."""
    from temporalio.exceptions import ApplicationError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ApplicationError) and seen.type:
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    return None

"""A line takes a new number (a port-in to an existing line): the new number is assigned to it,
its eSIM profile follows, and the old number rests in quarantine like a terminated line's."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import PolicyViolation
from domains.audit.services import record
from domains.subscription.services import AGGREGATE, get_subscription


async def swap_msisdn(
    session: AsyncSession, ctx: RequestContext, *, subscription_id: str, new_msisdn: str, hold_ref: str
) -> str | None:
    """Give the line `new_msisdn`, which `hold_ref` holds for it; the old number goes to quarantine.
    Returns the old number, or None when the line has the new number already (a retried step)."""
    from domains.inventory import services as inventory
    from domains.inventory.models import EsimProfile, Msisdn

    sub = await get_subscription(session, subscription_id, for_update=True)
    if sub.msisdn == new_msisdn:
        return None
    if sub.state not in ("active", "blocked"):
        raise PolicyViolation(
            "subscription.msisdn_swap.not_live",
            f"{subscription_id} is {sub.state}; only a live line can take a new number.",
            subscription_id=subscription_id,
        )
    old = sub.msisdn
    # The hold becomes the line's reservation, then its assignment.
    await inventory.reserve_msisdn(session, ctx, reserved_for=f"{hold_ref}/line", preferred=new_msisdn)
    await inventory.assign_msisdn(session, ctx, msisdn=new_msisdn, subscription_id=sub.id)
    old_row = await session.get(Msisdn, old, populate_existing=True)
    if old_row is not None and old_row.status == "assigned" and old_row.assigned_to_subscription_id == sub.id:
        await inventory.quarantine_msisdn(session, ctx, msisdn=old)
    profile = await session.get(EsimProfile, sub.iccid, populate_existing=True)
    if profile is not None and profile.assigned_to_subscription_id == sub.id:
        profile.assigned_msisdn = new_msisdn
        profile.updated_at = clock.now()
        session.add(profile)
    sub.msisdn = new_msisdn
    session.add(sub)
    await session.flush()
    record(
        session,
        ctx,
        "subscription.msisdn_swapped",
        AGGREGATE,
        sub.id,
        {"customer_id": sub.customer_id, "old_msisdn": old, "msisdn": new_msisdn, "reason": hold_ref},
    )
    return old

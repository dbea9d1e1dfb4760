"""Activities of the number pool's housekeeping, signup holds and eSIM re-downloads."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity

from activities.base import ctx_for, domain_errors
from core.context import RequestContext
from core.db import transaction

log = logging.getLogger("bss.inventory")


@dataclass
class QuarantineSweep:
    pass


@dataclass
class QuarantineReleased:
    numbers: int


@dataclass
class HoldRelease:
    """End a hold without an order: the number goes back on sale if `hold_ref` still holds it."""

    msisdn: str
    hold_ref: str
    reason: str
    requested_by: RequestContext | None = None


@dataclass
class EsimRearmAtSmdp:
    """ES2+ for a re-download: cancel the old order, download order, confirm with the profile's new
    matching id, release it."""

    iccid: str
    matching_id: str


class InventoryActivities:
    def __init__(self, runtime, smdp=None) -> None:
        self.rt = runtime
        self.smdp = smdp

    @activity.defn
    @domain_errors
    async def release_expired_quarantine(self, msg: QuarantineSweep) -> QuarantineReleased:
        from ops.inventory import release_expired_quarantine

        freed = await release_expired_quarantine(self.rt, ctx_for(activity.info().workflow_id))
        return QuarantineReleased(freed)

    @activity.defn
    @domain_errors
    async def release_hold(self, msg: HoldRelease) -> bool:
        """Idempotent: False when an order took the number (or it was released already)."""
        from domains.inventory import services

        ctx = msg.requested_by or ctx_for(activity.info().workflow_id)
        async with transaction(self.rt.db) as s:
            return await services.release_hold(
                s, ctx, msisdn=msg.msisdn, hold_ref=msg.hold_ref, reason=msg.reason
            )

    @activity.defn
    @domain_errors
    async def rearm_at_smdp(self, msg: EsimRearmAtSmdp) -> str:
        """The SM-DP+ side of a re-arm; returns the activation code it issued."""
        attempt = activity.info().attempt
        await self.smdp.cancel_order(msg.iccid, attempt=attempt)
        await self.smdp.download_order(msg.iccid, attempt=attempt)
        code = await self.smdp.confirm_order(msg.iccid, msg.matching_id, attempt=attempt)
        await self.smdp.release_profile(msg.iccid, attempt=attempt)
        return code


async def complete_signup_hold(rt, msisdn: str, taken_by: str) -> None:
    """Tell `signup-hold-<MSISDN>` that an order took its number, so it ends now rather than at its
    timer. Best effort: the timer's release checks the database and leaves a taken number alone."""
    import asyncio

    from domains.inventory.rules import signup_hold_ref
    from workflows.signup_hold import HoldComplete, SignupHoldWorkflow

    try:
        client = await asyncio.wait_for(rt.temporal(), 5)
        handle = client.get_workflow_handle_for(SignupHoldWorkflow.run, signup_hold_ref(msisdn))
        await handle.execute_update(
            SignupHoldWorkflow.complete, HoldComplete(taken_by), rpc_timeout=timedelta(seconds=5)
        )
    except Exception as exc:  # noqa: BLE001 - best effort, see above
        log.info("signup hold of %s not completed by %s: %s", msisdn, taken_by, exc)

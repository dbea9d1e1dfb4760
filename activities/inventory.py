"""Activities of the number pool's housekeeping."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.base import ctx_for, domain_errors


@dataclass
class QuarantineSweep:
    pass


@dataclass
class QuarantineReleased:
    numbers: int


class InventoryActivities:
    def __init__(self, runtime) -> None:
        self.rt = runtime

    @activity.defn
    @domain_errors
    async def release_expired_quarantine(self, msg: QuarantineSweep) -> QuarantineReleased:
        from ops.inventory import release_expired_quarantine

        freed = await release_expired_quarantine(self.rt, ctx_for(activity.info().workflow_id))
        return QuarantineReleased(freed)

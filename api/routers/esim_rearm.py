"""eSIM re-download (non-TMF): re-arm a line's profile for a new or wiped device. A router of its
own (not beside the device events) so that the network's role, which reports device events, cannot
re-arm a profile."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path

from api.deps import context, runtime
from core.context import RequestContext
from ops import inventory as ops
from ops.runtime import Runtime

Iccid = Path(pattern=r"^89[0-9]{17}$", description="19 digits, e.g. 8910101000000000000")

router = APIRouter(prefix="/bss-api/v1/esim", tags=["eSIM re-download (BSS)"])


@router.post("/{iccid}/rearm", status_code=202, summary="Re-arm a line's eSIM for a new device")
async def rearm(
    iccid: str = Iccid, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    profile = await ops.rearm_esim(rt, ctx, iccid)
    return {
        "iccid": profile.iccid,
        "state": profile.profile_state,
        "matchingId": profile.matching_id,
        "activationCode": profile.activation_code,
        "msisdn": profile.assigned_msisdn,
        "subscriptionId": profile.assigned_to_subscription_id,
        "workflowId": f"esim-rearm-{profile.iccid}",
    }

"""eSIM (operator and tester, not TMF): play the device — report that the profile was downloaded
or installed, as the SM-DP+ would — and read where a profile's provisioning stands."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict

from api.deps import context, runtime
from core.context import RequestContext
from ops import orders as ops
from ops.runtime import Runtime
from ops.som import esim_status, temporal_guard

Iccid = Path(pattern=r"^89[0-9]{17}$", description="19 digits, e.g. 8910101000000000000")


class DeviceEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Literal["downloaded", "installed"]


router = APIRouter(prefix="/bss-api/v1/esim", tags=["eSIM (BSS)"])


@router.post(
    "/{iccid}/device-event", status_code=202, summary="The device downloaded or installed the profile"
)
async def device_event(
    body: DeviceEventIn,
    iccid: str = Iccid,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    async with temporal_guard("esim"):
        await ops.device_event(rt, ctx, iccid, body.event)
    return {"iccid": iccid, "event": body.event, "accepted": True}


@router.get("/{iccid}/status", summary="The profile's provisioning state and activation code")
async def status(iccid: str = Iccid, rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    return await esim_status(rt, iccid)

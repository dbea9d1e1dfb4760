"""Number holds (non-TMF): a signup picks its number before ordering. `POST` holds it 24 h (or a
random available one, with `{}`), `DELETE` gives it back; an order naming the number
(`msisdnPreference`) takes it. `signup-hold-<MSISDN>` releases it when the time is up.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import context, runtime
from api.routers.customer import time_json
from core.context import RequestContext
from ops import inventory as ops
from ops.runtime import Runtime

Msisdn = Path(pattern=r"^[0-9]{8,15}$", description="The held number, e.g. 90000042")


class NumberHoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    msisdn: str | None = Field(
        None, pattern=r"^[0-9]{8,15}$", description="The number to hold; absent: a random available one."
    )
    customerId: str | None = Field(None, min_length=1, max_length=32, description="Who it is held for.")


def hold_json(view: ops.HoldView) -> dict[str, Any]:
    return {
        "id": view.msisdn,
        "href": f"/bss-api/v1/number-hold/{view.msisdn}",
        "msisdn": view.msisdn,
        "state": view.state,
        "holdReference": view.hold_ref,
        "heldAt": time_json(view.held_at),
        "expiresAt": time_json(view.expires_at),
        "@type": "NumberHold",
    }


router = APIRouter(prefix="/bss-api/v1/number-hold", tags=["Number holds (BSS)"])


@router.post("", status_code=201, summary="Hold a number 24 h for a signup")
async def hold(
    body: NumberHoldIn, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    return hold_json(await ops.hold_number(rt, ctx, msisdn=body.msisdn, customer_id=body.customerId))


@router.get("/{msisdn}", summary="A held number and its expiry")
async def get(msisdn: str = Msisdn, rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    return hold_json(await ops.get_hold(rt, msisdn))


@router.delete("/{msisdn}", summary="Give a held number back now")
async def cancel(
    msisdn: str = Msisdn, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    return hold_json(await ops.cancel_hold(rt, ctx, msisdn))

"""TMF639 Resource Inventory: the MSISDN pool and the eSIM profiles, plus the operator's range add
and pool counts under /bss-api/v1/inventory.

A number is a `MSISDN` and a profile an `EsimProfile`, both TMF `LogicalResource`s. Our pool status
maps onto the TMF state set (resourceStatus / operationalState / administrativeState / usageState)
and is also given exactly in the `poolStatus` / `profileState` characteristic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from api.deps import context, runtime
from api.tmf import Paging, choice, listing, one
from core.context import RequestContext
from domains.inventory.models import EsimProfile, Msisdn
from domains.inventory.rules import ESIM_STATES, MSISDN_STATUSES
from ops import inventory as ops
from ops.runtime import Runtime

BASE = "/tmf-api/resourceInventoryManagement/v4"

# @type filter -> the resource types it selects
TYPES = {
    "MSISDN": ("msisdn",),
    "EsimProfile": ("esim",),
    "LogicalResource": ("msisdn", "esim"),
    "Resource": ("msisdn", "esim"),
}
STATUSES = tuple(dict.fromkeys(MSISDN_STATUSES + ESIM_STATES))

# pool status -> (resourceStatus, operationalState, administrativeState, usageState)
MSISDN_TMF_STATE = {
    "available": ("available", "enable", "unlocked", "idle"),
    "held": ("reserved", "enable", "unlocked", "idle"),  # a signup's pick or a port-in's number
    "reserved": ("reserved", "enable", "unlocked", "idle"),
    "assigned": ("reserved", "enable", "unlocked", "busy"),
    "quarantine": ("suspended", "disable", "locked", "idle"),
    "ported_out": ("unknown", "disable", "shutdown", "idle"),
}
ESIM_TMF_STATE = {
    "available": ("available", "enable", "unlocked", "idle"),
    "reserved": ("reserved", "enable", "unlocked", "idle"),
    "prepared": ("reserved", "enable", "unlocked", "idle"),
    "downloaded": ("reserved", "enable", "unlocked", "active"),
    "installed": ("reserved", "enable", "unlocked", "busy"),
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _characteristics(**values: Any) -> list[dict[str, Any]]:
    return [
        {"name": name, "valueType": "string", "value": value}
        for name, value in values.items()
        if value is not None
    ]


def _states(mapping: dict[str, tuple[str, str, str, str]], status: str) -> dict[str, str]:
    resource, operational, administrative, usage = mapping[status]
    return {
        "resourceStatus": resource,
        "operationalState": operational,
        "administrativeState": administrative,
        "usageState": usage,
    }


def href(resource_id: str) -> str:
    return f"{BASE}/resource/{resource_id}"


def msisdn_to_tmf(m: Msisdn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": m.msisdn,
        "href": href(m.msisdn),
        "@type": "MSISDN",
        "@baseType": "LogicalResource",
        "category": "msisdn",
        "name": m.msisdn,
        "value": m.msisdn,
        "description": "Mobile number (MSISDN)",
        **_states(MSISDN_TMF_STATE, m.status),
        "resourceCharacteristic": _characteristics(
            poolStatus=m.status,
            reservedFor=m.reserved_for,
            reservedAt=_iso(m.reserved_at),
            reservedUntil=_iso(m.reserved_until),
            subscriptionId=m.assigned_to_subscription_id,
            quarantineUntil=_iso(m.quarantine_until),
        ),
    }
    if m.status == "ported_out":
        body["endOperatingDate"] = _iso(m.updated_at)
    return body


def esim_to_tmf(p: EsimProfile) -> dict[str, Any]:
    """The Ki never leaves the HSM; only its reference is shown."""
    body: dict[str, Any] = {
        "id": p.iccid,
        "href": href(p.iccid),
        "@type": "EsimProfile",
        "@baseType": "LogicalResource",
        "category": "esim",
        "name": p.iccid,
        "value": p.iccid,
        "description": "eSIM profile (GSMA SGP.22)",
        **_states(ESIM_TMF_STATE, p.profile_state),
        "resourceCharacteristic": _characteristics(
            profileState=p.profile_state,
            iccid=p.iccid,
            imsi=p.imsi,
            kiRef=p.ki_ref,
            smdpServer=p.smdp_server,
            matchingId=p.matching_id,
            activationCode=p.activation_code,
            reservedFor=p.reserved_for,
            msisdn=p.assigned_msisdn,
            subscriptionId=p.assigned_to_subscription_id,
        ),
    }
    if p.installed_at:
        body["startOperatingDate"] = _iso(p.installed_at)
    if p.assigned_msisdn:
        body["resourceRelationship"] = [
            {
                "id": p.assigned_msisdn,
                "href": href(p.assigned_msisdn),
                "relationshipType": "assignedMsisdn",
                "@type": "ResourceRelationship",
            }
        ]
    return body


def to_tmf(resource: Msisdn | EsimProfile) -> dict[str, Any]:
    return msisdn_to_tmf(resource) if isinstance(resource, Msisdn) else esim_to_tmf(resource)


tmf = APIRouter(prefix=BASE, tags=["TMF639 Resource Inventory"])


@tmf.get("/resource", summary="List numbers and eSIM profiles")
async def list_resource(
    response: Response,
    paging: Paging = Depends(),
    at_type: str | None = Query(
        None, alias="@type", max_length=40, description=f"One of {', '.join(TYPES)}."
    ),
    resource_type: str | None = Query(
        None, alias="resourceType", max_length=20, description="msisdn or esim."
    ),
    status: str | None = Query(
        None, max_length=20, description="Pool status of a number or state of a profile."
    ),
    prefix: str | None = Query(
        None, pattern=r"^[0-9]{1,19}$", description="Leading digits of the MSISDN or ICCID."
    ),
    rt: Runtime = Depends(runtime),
) -> list[dict[str, Any]]:
    types = TYPES[choice(at_type, tuple(TYPES), "@type")] if at_type else ops.RESOURCE_TYPES
    if choice(resource_type, ops.RESOURCE_TYPES, "resourceType"):
        types = tuple(t for t in types if t == resource_type)
    allowed = tuple(
        dict.fromkeys(s for t in types for s in (MSISDN_STATUSES if t == "msisdn" else ESIM_STATES))
    )
    choice(status, allowed or STATUSES, "status")
    found = await ops.list_resources(
        rt, types=types, status=status, prefix=prefix, offset=paging.offset, limit=paging.limit
    )
    response.headers["X-Total-Count"] = str(found.total)
    response.headers["X-Result-Count"] = str(len(found.items))
    return listing([to_tmf(r) for r in found.items], paging)


@tmf.get("/resource/{id}", summary="A number (by MSISDN) or an eSIM profile (by ICCID)")
async def get_resource(
    resource_id: str = Path(alias="id", max_length=32),
    fields: str | None = Query(None, max_length=500),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    return one(to_tmf(await ops.get_resource(rt, resource_id)), fields)


class AddRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: StrictStr = Field(max_length=16, description="4 to 7 digits; numbers are prefix + 0000…9999.")
    count: StrictInt = Field(description="1 to 10,000 numbers.")


admin = APIRouter(prefix="/bss-api/v1/inventory", tags=["Inventory (BSS)"])


@admin.post("/msisdn/add-range", status_code=201, summary="Add a range of numbers to the pool")
async def add_range(
    body: AddRange, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    added = await ops.add_msisdn_range(rt, ctx, prefix=body.prefix, count=body.count)
    return {"prefix": body.prefix, "count": body.count, "added": added, "skipped": body.count - added}


@admin.get("/counts", summary="Numbers and eSIM profiles by status")
async def counts(rt: Runtime = Depends(runtime)) -> dict[str, dict[str, int]]:
    return await ops.pool_counts(rt)


@admin.get("/esim/{iccid}/activation", summary="What a device needs to download the profile")
async def esim_activation(iccid: str = Path(max_length=32), rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    p = await ops.get_esim(rt, iccid)
    return {
        "iccid": p.iccid,
        "imsi": p.imsi,
        "msisdn": p.assigned_msisdn,
        "activationCode": p.activation_code,
        "matchingId": p.matching_id,
        "smdpServer": p.smdp_server,
        "state": p.profile_state,
    }


router = APIRouter()
router.include_router(tmf)
router.include_router(admin)

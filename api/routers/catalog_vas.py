"""VAS top-ups (our own resource: TMF620 has no shape for a one-off allowance top-up)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from api.deps import runtime
from api.routers.catalog import IdPath
from domains.catalog.models import VasOffering
from ops import catalog as catalog_ops
from ops.runtime import Runtime

BASE = "/bss-api/v1/catalog/vas"
router = APIRouter(prefix=BASE, tags=["Catalog VAS"])


def vas_json(vas: VasOffering) -> dict[str, Any]:
    return {
        "id": vas.id,
        "href": f"{BASE}/{vas.id}",
        "@type": "VasOffering",
        "name": vas.name,
        "lifecycleStatus": vas.lifecycle_status,
        "price": {"amount": str(vas.price_amount), "currency": vas.currency},
        "allowanceType": vas.allowance_type,
        "allowanceQuantity": vas.allowance_quantity,
        "unit": vas.allowance_unit,
        "expiryHours": vas.expiry_hours,
    }


@router.get("", summary="List VAS top-ups, cheapest first")
async def list_vas(rt: Runtime = Depends(runtime)) -> list[dict[str, Any]]:
    return [vas_json(v) for v in await catalog_ops.list_vas(rt)]


@router.get("/{id}", summary="One VAS top-up")
async def get_vas(id: str = IdPath, rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    return vas_json(await catalog_ops.get_vas(rt, id))

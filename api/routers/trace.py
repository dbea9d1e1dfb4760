"""The saga of an order as a timeline read from its Temporal workflow histories (not TMF)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path

from api.deps import runtime
from ops import trace as trace_ops
from ops.runtime import Runtime

router = APIRouter(prefix="/bss-api/v1/trace", tags=["Trace"])


@router.get("/order/{id}", summary="Every workflow, activity, timer and child workflow of an order's saga")
async def order_trace(
    order_id: str = Path(alias="id", max_length=40, description="e.g. ORD-000001"),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    return await trace_ops.order_trace(rt, order_id)


@router.get(
    "/subscription/{id}",
    summary="The life of a line: its order's saga and every run of its own workflow",
)
async def subscription_trace(
    subscription_id: str = Path(alias="id", max_length=40, description="e.g. SUB-000001"),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    return await trace_ops.subscription_trace(rt, subscription_id)

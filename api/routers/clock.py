"""The business clock of a test stack (`bss up --test-clock`): read it, freeze it, move it on.

Anywhere else the clock cannot be moved: every write answers 422 `clock.test_clock_disabled`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import context, runtime
from core.context import RequestContext
from ops import clock as clock_ops
from ops.clock import ClockReading
from ops.runtime import Runtime

router = APIRouter(prefix="/bss-api/v1/admin/clock", tags=["Test clock"])


class FreezeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: AwareDatetime | None = Field(None, description="Freeze at this moment (default: now); never earlier.")


class AdvanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration: str = Field(
        min_length=1,
        max_length=40,
        description="How far: 30d, 25h, 90m, 45s, 2w, 1d12h, or ISO 8601 such as PT1H or P30D.",
        examples=["30d"],
    )


def reading_json(r: ClockReading) -> dict[str, Any]:
    body: dict[str, Any] = {
        "now": r.now.isoformat(),
        "frozen": r.frozen,
        "offsetSeconds": r.offset_seconds,
        "testClock": r.test_clock,
    }
    if r.workflows_told is not None:
        body["workflowsSignalled"] = r.workflows_told
    return body


@router.get("", summary="The business clock: now, frozen or not, and how far it runs ahead")
async def read(rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    return reading_json(clock_ops.read(rt))


@router.post("/freeze", summary="Stop business time, now or at a later moment (test stacks only)")
async def freeze(
    body: FreezeIn | None = Body(None),
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return reading_json(await clock_ops.freeze(rt, ctx, body.at if body else None))


@router.post(
    "/advance", summary="Move business time forward; due renewals and expiries run (test stacks only)"
)
async def advance(
    body: AdvanceIn,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return reading_json(await clock_ops.advance(rt, ctx, body.duration))


@router.post("/unfreeze", summary="Let business time run again from where it stood (test stacks only)")
async def unfreeze(rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    return reading_json(await clock_ops.unfreeze(rt, ctx))

"""Provisioning tasks (operator, not TMF): the network steps of each service order, and the two
levers on a stuck one — resolve it (done by hand, with a note) or run it again. Both are signals
to the waiting workflow, so they answer 202 and the task moves on within a moment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import context, read_session, runtime
from api.routers.product_order import ID_PATTERN
from api.routers.service_order import TASKS, task_json
from api.tmf import Paging, choice, listing, one, page
from core.context import RequestContext
from core.errors import NotFound
from domains.service_ordering import rules
from domains.service_ordering.models import ProvisioningTask
from ops import orders as ops
from ops.runtime import Runtime
from ops.som import temporal_guard

TASK_STATES = (rules.PENDING, rules.RUNNING, rules.COMPLETED, rules.FAILED, rules.STUCK)
TaskId = Path(alias="id", pattern=ID_PATTERN, description="e.g. PTK-000001")


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: StrictStr = Field("", max_length=2000, description="What was done by hand; required.")


router = APIRouter(prefix=TASKS, tags=["Provisioning tasks (BSS)"])


async def _task(session: AsyncSession, task_id: str) -> ProvisioningTask:
    task = (await session.exec(select(ProvisioningTask).where(ProvisioningTask.id == task_id))).first()
    if task is None:
        raise NotFound("provisioning_task.not_found", f"No provisioning task {task_id}.", task_id=task_id)
    return task


@router.get("", summary="List provisioning tasks")
async def list_tasks(
    response: Response,
    paging: Paging = Depends(),
    state: str | None = Query(None, max_length=20, description=", ".join(TASK_STATES)),
    service_order_id: str | None = Query(None, alias="serviceOrderId", pattern=ID_PATTERN),
    task_type: str | None = Query(None, alias="taskType", max_length=30),
    session: AsyncSession = Depends(read_session),
) -> list[dict[str, Any]]:
    choice(state, TASK_STATES, "state")
    choice(task_type, rules.TASK_TYPES, "taskType")
    query = select(ProvisioningTask).order_by(col(ProvisioningTask.id))
    if state:
        query = query.where(ProvisioningTask.state == state)
    if service_order_id:
        query = query.where(ProvisioningTask.service_order_id == service_order_id)
    if task_type:
        query = query.where(ProvisioningTask.task_type == task_type)
    rows = await page(session, query, paging, response)
    return listing([task_json(t) for t in rows], paging)


@router.get("/{id}", summary="One provisioning task")
async def get_task(
    task_id: str = TaskId,
    fields: str | None = Query(None, max_length=500),
    session: AsyncSession = Depends(read_session),
) -> dict[str, Any]:
    return one(task_json(await _task(session, task_id)), fields)


@router.post("/{id}/resolve", status_code=202, summary="Resolve a stuck task by hand (note required)")
async def resolve_task(
    body: Resolution,
    task_id: str = TaskId,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    async with temporal_guard("provisioning_task"):
        task = await ops.resolve_task(rt, ctx, task_id, body.note)
    return task_json(task)


@router.post("/{id}/retry", status_code=202, summary="Run a stuck task again")
async def retry_task(
    task_id: str = TaskId, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    async with temporal_guard("provisioning_task"):
        task = await ops.retry_task(rt, ctx, task_id)
    return task_json(task)

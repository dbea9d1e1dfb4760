"""Number porting (MNP), a documented custom API: port-in and port-out requests.

`POST` opens a request (201 `acknowledged`; `Idempotency-Key` honoured) and starts its workflow
`port-PORT-…`; `GET` lists them (`?state=`, `?direction=`, `?customerId=`, `?msisdn=`) or shows
one; `POST /{id}/approve` and `POST /{id}/reject {"reason"}` are the operator's decisions.
States: acknowledged, validated, approved, completed, rejected, failed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from api.deps import context, runtime
from api.tmf import Paging, choice, listing, one
from core.context import RequestContext
from core.errors import Forbidden
from domains.access.rules import Role
from domains.porting.rules import DIRECTIONS, STATES
from ops import porting as ops
from ops.idempotency import check_key
from ops.runtime import Runtime

BASE = ops.BASE
# Two areas for the permission table (api/permissions.py): requests (a channel may open and read
# them) and the operator's decisions on them.
REQUESTS, DECISIONS = ["Number porting (BSS)"], ["Number porting decisions (BSS)"]
router = APIRouter(prefix=BASE)

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
PortId = Path(alias="id", pattern=r"^PORT-[0-9a-f]{8}$", description="e.g. PORT-1a2b3c4d")
IdempotencyKey = Header(None, alias="Idempotency-Key", max_length=200)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PortRequestIn(Strict):
    direction: Literal["port_in", "port_out"]
    msisdn: StrictStr = Field(max_length=15, description="The number to port, 8 digits.")
    requested_port_date: date | datetime = Field(
        alias="requestedPortDate", description="The day (or moment) the number moves."
    )
    donor_carrier: StrictStr | None = Field(
        None, alias="donorCarrier", max_length=64, description="Port-in: the operator the number leaves."
    )
    recipient_carrier: StrictStr | None = Field(
        None,
        alias="recipientCarrier",
        max_length=64,
        description="Port-out: the operator the number goes to.",
    )
    customer_id: StrictStr | None = Field(None, alias="customerId", pattern=ID_PATTERN)
    offering_id: StrictStr | None = Field(
        None, alias="offeringId", pattern=ID_PATTERN, description="Port-in to a new line: its plan."
    )
    subscription_id: StrictStr | None = Field(
        None, alias="subscriptionId", pattern=ID_PATTERN, description="Port-in to (or port-out of) this line."
    )


class RejectIn(Strict):
    reason: StrictStr = Field(min_length=1, max_length=200)


@router.post("", status_code=201, tags=REQUESTS, summary="Open a port-in or port-out request")
async def create_port_request(
    body: PortRequestIn,
    request: Request,
    response: Response,
    idempotency_key: str | None = IdempotencyKey,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    if body.direction == "port_out" and getattr(request.state, "role", None) is Role.CHANNEL:
        # A port-out is another operator's request, taken by an operator, never by a portal or agent.
        raise Forbidden(
            "port.out.channel_forbidden", "A channel may open port-ins only; a port-out is an operator's."
        )
    out = await ops.create(
        rt,
        ctx,
        direction=body.direction,
        msisdn=body.msisdn,
        requested_port_date=body.requested_port_date,
        donor_carrier=body.donor_carrier,
        recipient_carrier=body.recipient_carrier,
        customer_id=body.customer_id,
        offering_id=body.offering_id,
        subscription_id=body.subscription_id,
        idempotency_key=check_key(idempotency_key),
    )
    response.headers["Location"] = out["href"]
    return out


@router.get("", tags=REQUESTS, summary="List port requests")
async def list_port_requests(
    response: Response,
    paging: Paging = Depends(),
    state: str | None = Query(None, max_length=20, description=", ".join(STATES)),
    direction: str | None = Query(None, max_length=10, description=", ".join(DIRECTIONS)),
    customer_id: str | None = Query(None, alias="customerId", pattern=ID_PATTERN),
    msisdn: str | None = Query(None, pattern=r"^[0-9]{1,15}$"),
    rt: Runtime = Depends(runtime),
) -> list[dict[str, Any]]:
    choice(state, STATES, "state")
    choice(direction, DIRECTIONS, "direction")
    total, items = await ops.listing(
        rt,
        state=state,
        direction=direction,
        customer_id=customer_id,
        msisdn=msisdn,
        offset=paging.offset,
        limit=paging.limit,
    )
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(items))
    return listing(items, paging)


@router.get("/{id}", tags=REQUESTS, summary="One port request")
async def get_port_request(
    port_id: str = PortId,
    fields: str | None = Query(None, max_length=500),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    return one(await ops.get(rt, port_id), fields)


@router.post("/{id}/approve", tags=DECISIONS, summary="Approve a validated port request (operator)")
async def approve_port_request(
    port_id: str = PortId, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    return await ops.approve(rt, ctx, port_id)


@router.post("/{id}/reject", tags=DECISIONS, summary="Reject a port request, with the reason (operator)")
async def reject_port_request(
    body: RejectIn,
    port_id: str = PortId,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return await ops.reject(rt, ctx, port_id, body.reason)

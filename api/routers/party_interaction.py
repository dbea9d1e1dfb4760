"""TMF683 Party Interaction: the customer's file of contacts and changes, newest first.

Every CRM write (customer, case, ticket) logs one in its own transaction; an operator may log one
by hand (a call, a visit) with POST. `?relatedParty.id=CUST-…` lists one customer's file.
An interaction names what it was about in `interactionItem` (the case or ticket).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api import tmf
from api.deps import context, runtime
from core.context import RequestContext
from core.db import transaction
from core.errors import InvalidInput, NotFound
from domains.crm.models import Interaction
from ops import crm as ops
from ops.runtime import Runtime

BASE = "/tmf-api/partyInteraction/v4"
router = APIRouter(prefix=BASE, tags=["TMF683 Party Interaction"])
IdPath = Path(alias="id", max_length=64, description="Interaction id, e.g. INT-1a2b3c4d.")


def _t(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def interaction_json(i: Interaction) -> dict[str, Any]:
    parties = []
    if i.customer_id:
        parties.append({"id": i.customer_id, "role": "customer", "@referredType": "Customer"})
    if i.agent_id:
        parties.append({"id": i.agent_id, "role": "agent", "@referredType": "Agent"})
    items = []
    if i.related_case_id:
        items.append(
            {"id": "case", "item": {"id": i.related_case_id, "role": "case", "@referredType": "Case"}}
        )
    if i.related_ticket_id:
        items.append(
            {
                "id": "ticket",
                "item": {"id": i.related_ticket_id, "role": "ticket", "@referredType": "TroubleTicket"},
            }
        )
    body: dict[str, Any] = {
        "id": i.id,
        "href": f"{BASE}/partyInteraction/{i.id}",
        "@type": "PartyInteraction",
        "creationDate": _t(i.occurred_at),
        "description": i.summary,
        "direction": i.direction,
        "reason": i.reason,
        "status": "completed",
        "statusChangeDate": _t(i.occurred_at),
        "interactionDate": {"startDateTime": _t(i.occurred_at), "endDateTime": _t(i.occurred_at)},
        "channel": [{"id": i.channel, "name": i.channel, "role": "interaction channel"}],
        "relatedParty": parties,
        "interactionItem": items,
        "author": i.actor,
    }
    if i.body:
        body["note"] = [{"author": i.actor, "date": _t(i.occurred_at), "text": i.body}]
    return body


class Ref(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(max_length=64)
    href: str | None = Field(None, max_length=500)
    name: str | None = Field(None, max_length=200)
    role: str | None = Field(None, max_length=50)
    at_referred_type: str | None = Field(None, alias="@referredType", max_length=50)
    at_type: str | None = Field(None, alias="@type", max_length=100)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)
    author: str | None = Field(None, max_length=200)


class PartyInteractionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    reason: str = Field(min_length=1, max_length=60)
    direction: str = Field(pattern=r"^(inbound|outbound)$")
    channel: list[Ref] = Field(min_length=1, max_length=5)
    description: str = Field("", max_length=500)
    relatedParty: list[Ref] = Field(min_length=1, max_length=5)
    note: list[NoteIn] = Field(default_factory=list, max_length=10)
    at_type: str | None = Field(None, alias="@type", max_length=100)


@router.get("/partyInteraction", summary="Interactions, newest first (per customer with relatedParty.id)")
async def list_interactions(
    response: Response,
    paging: tmf.Paging = Depends(),
    customer_id: str | None = Query(None, alias="relatedParty.id", max_length=64, description="CUST-…"),
    rt: Runtime = Depends(runtime),
) -> list[dict[str, Any]]:
    rows, total = await ops.interactions_of(
        rt, customer_id=customer_id, offset=paging.offset, limit=paging.limit
    )
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(rows))
    return tmf.listing([interaction_json(i) for i in rows], paging)


@router.get("/partyInteraction/{id}", summary="One interaction")
async def get_interaction(
    interaction_id: str = IdPath,
    fields: str | None = Query(None, max_length=500),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    return tmf.one(interaction_json(await ops.get_interaction(rt, interaction_id)), fields)


@router.post("/partyInteraction", status_code=201, summary="Log an interaction by hand (a call, a visit)")
async def create_interaction(
    body: PartyInteractionIn, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    from dataclasses import replace

    from domains.crm import interactions
    from domains.crm.models import Customer

    customers = [
        p.id for p in body.relatedParty if (p.role or "") == "customer" or p.at_referred_type == "Customer"
    ]
    if len(customers) != 1:
        raise InvalidInput(
            "interaction.create.one_customer", "relatedParty names exactly one customer (role customer)."
        )
    async with transaction(rt.db) as s:
        if await s.get(Customer, customers[0]) is None:
            raise NotFound("interaction.create.customer_not_found", f"No customer {customers[0]}.")
        logged = interactions.log(
            s,
            replace(ctx, channel=body.channel[0].name or body.channel[0].id),
            customer_id=customers[0],
            reason=body.reason,
            summary=body.description or body.reason,
            body="\n".join(n.text for n in body.note),
        )
        logged.direction = body.direction
    return interaction_json(logged)

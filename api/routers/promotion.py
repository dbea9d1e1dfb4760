"""Promotions: promo codes with a percent or absolute discount for one, N or every period, a
validity window, a code kind and a usage cap, public or for a list of customers. An order item's
`promoCode` characteristic applies one (TMF622); see domains/catalog/promotions.py for the rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from api.deps import context, runtime
from api.routers.customer import time_json
from api.tmf import Paging, choice, listing, one
from core.context import RequestContext
from ops import promotions as ops
from ops.runtime import Runtime

BASE = "/bss-api/v1/promotion"
router = APIRouter(prefix=BASE, tags=["Promotions (BSS)"])

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$"
CUSTOMER_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
Code = Path(alias="code", pattern=CODE_PATTERN, description="The promo code, e.g. SUMMER25")
CustomerId = Annotated[str, Field(pattern=CUSTOMER_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NewPromotion(Strict):
    """`codeKind`: `single_use_shared` (one shared code, used once in all), `multi_use` (any
    customer, any number of times, up to `maxUses`), `single_use_per_customer` (each customer once,
    up to `maxUses` in all). `periods`: how many 30-day periods are discounted, the activation
    counting as the first; null = perpetual. `eligibleCustomerIds` makes the code targeted (only
    the listed customers may use it; `assign`/`unassign` edit the list); absent = public."""

    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]*$")
    discount_type: Literal["percent", "absolute"] = Field(alias="discountType")
    discount_value: Decimal = Field(alias="discountValue", gt=0, le=Decimal("99999.99"), decimal_places=2)
    periods: int | None = Field(None, ge=1, le=120)
    code_kind: Literal["single_use_shared", "multi_use", "single_use_per_customer"] = Field(alias="codeKind")
    max_uses: int | None = Field(None, alias="maxUses", ge=1, le=10_000_000)
    valid_from: AwareDatetime | None = Field(None, alias="validFrom")
    valid_to: AwareDatetime | None = Field(None, alias="validTo")
    eligible_customer_ids: list[CustomerId] | None = Field(None, alias="eligibleCustomerIds", max_length=1000)

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value.strip()


class Assignment(Strict):
    customer_id: CustomerId = Field(alias="customerId")


def promotion_json(view: ops.PromotionView) -> dict[str, Any]:
    p = view.promotion
    body: dict[str, Any] = {
        "id": p.code,
        "href": f"{BASE}/{p.code}",
        "@type": "Promotion",
        "code": p.code,
        "name": p.name,
        "discountType": p.discount_type,
        "discountValue": str(p.discount_value),
        "periods": p.periods,
        "codeKind": p.code_kind,
        "maxUses": p.max_uses,
        "uses": p.uses,
        "state": p.state,
        "stateReason": p.state_reason,
        "validFrom": time_json(p.valid_from),
        "validTo": time_json(p.valid_to),
        "audience": "targeted" if p.targeted else "public",
        "eligibleCustomerIds": view.eligible_customer_ids,
        "createdAt": time_json(p.created_at),
    }
    return body


@router.post("", status_code=201, summary="Create a promotion (a promo code and its discount)")
async def create_promotion(
    body: NewPromotion, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> JSONResponse:
    view = await ops.create(
        rt,
        ctx,
        ops.NewPromotion(
            code=body.code,
            name=body.name,
            discount_type=body.discount_type,
            discount_value=body.discount_value,
            periods=body.periods,
            code_kind=body.code_kind,
            max_uses=body.max_uses,
            valid_from=body.valid_from,
            valid_to=body.valid_to,
            eligible_customer_ids=body.eligible_customer_ids,
        ),
    )
    out = promotion_json(view)
    return JSONResponse(out, status_code=201, headers={"Location": out["href"]})


@router.get("", summary="List promotions")
async def list_promotions(
    response: Response,
    state: str | None = Query(None, max_length=20, description="active | exhausted"),
    paging: Paging = Depends(),
    rt: Runtime = Depends(runtime),
) -> list[dict[str, Any]]:
    views, total = await ops.listing(
        rt, state=choice(state, ("active", "exhausted"), "state"), offset=paging.offset, limit=paging.limit
    )
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(views))
    return listing([promotion_json(v) for v in views], paging)


@router.get("/{code}", summary="One promotion, with its uses and eligibility list")
async def show_promotion(
    code: str = Code,
    fields: str | None = Query(None, max_length=500),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    return one(promotion_json(await ops.show(rt, code)), fields)


@router.post("/{code}/exhaust", summary="Stop a promotion for good (claims already made stand)")
async def exhaust_promotion(
    code: str = Code, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    return promotion_json(await ops.exhaust(rt, ctx, code))


@router.post("/{code}/assign", summary="Add a customer to a targeted promotion's eligibility list")
async def assign_customer(
    body: Assignment,
    code: str = Code,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return promotion_json(await ops.assign(rt, ctx, code, body.customer_id))


@router.delete("/{code}/assign/{customerId}", summary="Remove a customer from a targeted promotion's list")
async def unassign_customer(
    code: str = Code,
    customer_id: str = Path(alias="customerId", pattern=CUSTOMER_PATTERN),
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return promotion_json(await ops.unassign(rt, ctx, code, customer_id))

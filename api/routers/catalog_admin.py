"""Operator catalogue administration: new plans, new price rows (promotions, price changes), retirement."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from api.deps import context, runtime
from api.routers.catalog import TEXT_PATTERN, IdPath, offering_json, price_json
from core.context import RequestContext
from ops import catalog as catalog_ops
from ops import subscriptions as subscription_ops
from ops.runtime import Runtime

router = APIRouter(prefix="/bss-api/v1/admin/catalog", tags=["Catalog administration"])

CatalogId = Annotated[str, Field(min_length=2, max_length=48, pattern=r"^[A-Z][A-Z0-9_]*$")]
Amount = Annotated[Decimal, Field(gt=0, le=Decimal("99999.99"), max_digits=7, decimal_places=2)]
Quantity = Annotated[int, Field(ge=-1, le=10_000_000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Allowances(Strict):
    """Per 30-day period; -1 means unlimited. Data and roaming in MB, voice in minutes."""

    data: Quantity | None = None
    voice: Quantity | None = None
    sms: Quantity | None = None
    data_roaming: Quantity | None = Field(None, alias="dataRoaming")

    def given(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class PriceWindow(Strict):
    valid_from: AwareDatetime | None = Field(None, alias="validFrom")
    valid_to: AwareDatetime | None = Field(None, alias="validTo")


class NewOffering(PriceWindow):
    id: CatalogId
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]*$")
    description: str | None = Field(None, max_length=1000, pattern=TEXT_PATTERN)
    amount: Amount
    currency: str = Field("SGD", pattern="^SGD$", description="Only SGD is sold.")
    price_id: CatalogId | None = Field(None, alias="priceId")
    allowances: Allowances

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value.strip()


class NewPrice(PriceWindow):
    id: CatalogId
    amount: Amount
    currency: str = Field("SGD", pattern="^SGD$", description="Only SGD is sold.")


class PriceMigrationIn(Strict):
    """Lines of the plan pay `newPriceId` from their first renewal on or after
    max(effectiveFrom, now + noticeDays)."""

    new_price_id: CatalogId = Field(alias="newPriceId")
    notice_days: int = Field(30, alias="noticeDays", ge=0, le=3650)
    effective_from: AwareDatetime | None = Field(None, alias="effectiveFrom")


OfferingId = IdPath


def _created(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=201, headers={"Location": body["href"]})


@router.post("/offering", status_code=201, summary="Add a plan with its first price and allowances")
async def add_offering(
    body: NewOffering = Body(...),
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> JSONResponse:
    found = await catalog_ops.add_offering(
        rt,
        ctx,
        offering_id=body.id,
        name=body.name,
        description=body.description,
        amount=body.amount,
        allowances=body.allowances.given(),
        price_id=body.price_id,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
    )
    return _created(offering_json(found))


@router.post("/offering/{id}/price", status_code=201, summary="Add a price row (promotion or price change)")
async def add_price(
    body: NewPrice,
    id: str = OfferingId,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> JSONResponse:
    price = await catalog_ops.add_price(rt, ctx, id, body.id, body.amount, body.valid_from, body.valid_to)
    return _created(price_json(price))


@router.post("/offering/{id}/retire", summary="Stop selling a plan; existing lines keep it")
async def retire_offering(
    id: str = OfferingId,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    return offering_json(await catalog_ops.retire_offering(rt, ctx, id))


@router.post(
    "/offering/{id}/migrate-price",
    summary="Move the plan's live lines to a new price at their first renewal after the notice",
)
async def migrate_price(
    body: PriceMigrationIn,
    id: str = OfferingId,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    count = await subscription_ops.migrate_price(
        rt, ctx, id, body.new_price_id, body.notice_days, body.effective_from
    )
    return {"offeringId": id, "newPriceId": body.new_price_id, "linesScheduled": count}

"""TMF620 Product Catalog Management: plans (productOffering), their price rows and specifications.

Besides the TMF attributes an offering carries two extensions for channels that sell it:
`activePrice` (the row that wins now: lowest active price) and `bundledAllowance` (the same
allowances as `prodSpecCharValueUse`, flattened). Money in extensions is a decimal string.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from api import tmf
from api.deps import read_session
from domains.catalog import rules, services
from domains.catalog.models import BundleAllowance, ProductOfferingPrice, ProductSpecification
from domains.catalog.services import OfferingDetails

BASE = "/tmf-api/productCatalogManagement/v4"
router = APIRouter(prefix=BASE, tags=["TMF620 Product Catalog"])

# Identifiers are plain words; the pattern also keeps NUL bytes (which Postgres refuses) out.
ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
TEXT_PATTERN = r"^[^\x00]*$"
IdPath = Path(max_length=64, pattern=ID_PATTERN, description="Identifier, e.g. PLAN_M.")
UNITS = {"mb": "MB", "minutes": "min", "count": "count"}


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def valid_for(start: datetime | None, end: datetime | None) -> dict[str, str]:
    """A TimePeriod; an open bound is simply absent."""
    period = {"startDateTime": _time(start), "endDateTime": _time(end)}
    return {k: v for k, v in period.items() if v}


def price_ref(price: ProductOfferingPrice) -> dict[str, Any]:
    """ProductOfferingPriceRefOrValue: a reference that also carries the amount."""
    return {
        "id": price.id,
        "href": f"{BASE}/productOfferingPrice/{price.id}",
        "name": price.id,
        "priceType": price.price_type,
        "recurringChargePeriod": price.recurring_period_type,
        "recurringChargePeriodLength": price.recurring_period_length,
        "price": {"taxIncludedAmount": {"unit": price.currency, "value": float(price.amount)}},
        "validFor": valid_for(price.valid_from, price.valid_to),
        "@referredType": "ProductOfferingPrice",
    }


def price_json(price: ProductOfferingPrice) -> dict[str, Any]:
    return {
        "id": price.id,
        "href": f"{BASE}/productOfferingPrice/{price.id}",
        "@type": "ProductOfferingPrice",
        "name": price.id,
        "isBundle": False,
        "lifecycleStatus": "Active",
        "lastUpdate": _time(price.created_at),
        "priceType": price.price_type,
        "recurringChargePeriodType": price.recurring_period_type,
        "recurringChargePeriodLength": price.recurring_period_length,
        "price": {"unit": price.currency, "value": float(price.amount)},
        "validFor": valid_for(price.valid_from, price.valid_to),
        "productOffering": {"id": price.offering_id, "href": f"{BASE}/productOffering/{price.offering_id}"},
    }


def allowance_use(allowance: BundleAllowance) -> dict[str, Any]:
    """One allowance as a TMF characteristic value use (-1 means unlimited)."""
    return {
        "id": allowance.id,
        "name": allowance.allowance_type,
        "valueType": "number",
        "productSpecCharacteristicValue": [
            {"isDefault": True, "value": allowance.quantity, "unitOfMeasure": UNITS[allowance.unit]}
        ],
    }


def offering_json(d: OfferingDetails) -> dict[str, Any]:
    o = d.offering
    body: dict[str, Any] = {
        "id": o.id,
        "href": f"{BASE}/productOffering/{o.id}",
        "@type": "ProductOffering",
        "name": o.name,
        "description": o.description or "",
        "lifecycleStatus": o.lifecycle_status,
        "isBundle": o.is_bundle,
        "isSellable": o.is_sellable,
        "lastUpdate": _time(o.updated_at),
        "validFor": valid_for(o.valid_from, o.valid_to),
        "productSpecification": {
            "id": o.spec_id,
            "href": f"{BASE}/productSpecification/{o.spec_id}",
            "@referredType": "ProductSpecification",
        },
        "productOfferingPrice": [price_ref(p) for p in d.prices],
        "prodSpecCharValueUse": [allowance_use(a) for a in d.allowances],
        "bundledAllowance": [
            {"allowanceType": a.allowance_type, "quantity": a.quantity, "unit": a.unit} for a in d.allowances
        ],
        "activePrice": None,
    }
    if d.active_price is not None:
        p = d.active_price
        body["activePrice"] = {"id": p.id, "amount": str(p.amount), "currency": p.currency}
    return body


def specification_json(spec: ProductSpecification) -> dict[str, Any]:
    return {
        "id": spec.id,
        "href": f"{BASE}/productSpecification/{spec.id}",
        "@type": "ProductSpecification",
        "name": spec.name,
        "description": spec.description or "",
        "brand": spec.brand or "",
        "isBundle": True,
        "lifecycleStatus": spec.lifecycle_status,
        "lastUpdate": _time(spec.updated_at),
    }


@router.get("/productOffering", summary="List product offerings (plans)")
async def list_offerings(
    response: Response,
    paging: tmf.Paging = Depends(),
    lifecycle_status: str | None = Query(None, alias="lifecycleStatus", max_length=20),
    name: str | None = Query(
        None, max_length=200, pattern=TEXT_PATTERN, description="Exact name, case-insensitive."
    ),
    session: AsyncSession = Depends(read_session),
) -> list[dict[str, Any]]:
    tmf.choice(lifecycle_status, rules.LIFECYCLE_STATUSES, "lifecycleStatus")
    rows = await tmf.page(session, services.offerings_query(lifecycle_status, name), paging, response)
    found = await services.details(session, list(rows))
    return tmf.listing([offering_json(d) for d in found], paging)


@router.get("/productOffering/{id}", summary="One product offering with its prices and allowances")
async def get_offering(
    id: str = IdPath,
    fields: str | None = Query(None, max_length=500),
    session: AsyncSession = Depends(read_session),
) -> dict[str, Any]:
    offering = await services.get_offering(session, id)
    (found,) = await services.details(session, [offering])
    return tmf.one(offering_json(found), fields)


@router.get("/productOfferingPrice", summary="List price rows")
async def list_prices(
    response: Response,
    paging: tmf.Paging = Depends(),
    offering_id: str | None = Query(None, alias="productOffering.id", max_length=64, pattern=ID_PATTERN),
    session: AsyncSession = Depends(read_session),
) -> list[dict[str, Any]]:
    rows = await tmf.page(session, services.prices_query(offering_id), paging, response)
    return tmf.listing([price_json(p) for p in rows], paging)


@router.get("/productOfferingPrice/{id}", summary="One price row")
async def get_price(
    id: str = IdPath,
    fields: str | None = Query(None, max_length=500),
    session: AsyncSession = Depends(read_session),
) -> dict[str, Any]:
    return tmf.one(price_json(await services.get_price(session, id)), fields)


@router.get("/productSpecification", summary="List product specifications")
async def list_specifications(
    response: Response,
    paging: tmf.Paging = Depends(),
    session: AsyncSession = Depends(read_session),
) -> list[dict[str, Any]]:
    rows = await tmf.page(session, services.specifications_query(), paging, response)
    return tmf.listing([specification_json(s) for s in rows], paging)


@router.get("/productSpecification/{id}", summary="One product specification")
async def get_specification(
    id: str = IdPath,
    fields: str | None = Query(None, max_length=500),
    session: AsyncSession = Depends(read_session),
) -> dict[str, Any]:
    return tmf.one(specification_json(await services.get_specification(session, id)), fields)

"""A line's balances: TMF654 Prepay Balance `bucket` and TMF677 Usage Consumption.

A bucket is one bundle balance of the current period, id `<SUB id>.<allowance type>`
(e.g. `SUB-000001.data_roaming`). Amounts are exact in the balance's unit (MB, min, count): rating
counts data in KB, so 10,000 KB used shows 9.765625 MB. An unlimited bucket has remaining amount
-1 and `remainingValueName` "unlimited" (CONTRACT.md: -1 = unlimited). A blocked line's buckets are
`suspended`, a terminated line's `expired`.

TMF677 answers a usage-consumption report computed at the moment of the query (nothing is
stored): POST `queryUsageConsumption` with `searchCriteria.product[0].id` (the subscription) or
`searchCriteria.logicalResource[0].id` (the MSISDN) answers 201; GET with `product.id` or
`logicalResource.id` answers the same report in a list.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import runtime
from api.tmf import Paging, listing, one
from core.errors import InvalidInput
from domains.usage.rating import BALANCE_UNIT_FACTORS
from domains.usage.services import BucketView
from ops import usage as ops
from ops.runtime import Runtime

BUCKETS = "/tmf-api/prepayBalanceManagement/v4"
CONSUMPTION = "/tmf-api/usageConsumption/v4"
PRODUCT = "/tmf-api/productInventory/v4/product"
RESOURCE = "/tmf-api/resourceInventoryManagement/v4/resource"
CUSTOMER = "/tmf-api/customerManagement/v4/customer"

router = APIRouter()
buckets = APIRouter(prefix=BUCKETS, tags=["TMF654 Prepay Balance"])
consumption = APIRouter(prefix=CONSUMPTION, tags=["TMF677 Usage Consumption"])

UNITS = {"mb": "MB", "minutes": "min", "count": "count"}
NAMES = {"data": "Data", "voice": "Voice", "sms": "SMS", "data_roaming": "Roaming data"}
TMF_USAGE_TYPE = {"data": "data", "voice": "voice", "sms": "sms", "data_roaming": "data"}
STATUS = {"active": "active", "blocked": "suspended", "pending": "suspended", "terminated": "expired"}
SUB_ID = r"^SUB-\d+$"
MSISDN = r"^\d{6,15}$"
CUSTOMER_ID = r"^[A-Za-z0-9_.:-]+$"


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _amount(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _quantity(value: Decimal | int, unit: str) -> dict[str, Any]:
    return {"amount": _amount(Decimal(value)), "units": UNITS.get(unit, unit)}


def _spoken(value: Decimal | None, unit: str) -> str:
    """`4.9 GB`, `512 MB`, `100 min`, `unlimited`: for people."""
    if value is None:
        return "unlimited"
    if unit == "mb" and value >= 1024:
        return f"{(value / 1024).quantize(Decimal('0.1'))} GB"
    shown = value.quantize(Decimal("0.1")) if value != value.to_integral_value() else value
    return f"{shown} {UNITS.get(unit, unit)}"


def _refs(view: BucketView) -> dict[str, Any]:
    sub = view.subscription
    return {
        "product": [
            {"id": sub.id, "href": f"{PRODUCT}/{sub.id}", "name": sub.offering_id, "@referredType": "Product"}
        ],
        "logicalResource": [
            {
                "id": sub.msisdn,
                "href": f"{RESOURCE}/{sub.msisdn}",
                "name": "msisdn",
                "@referredType": "MSISDN",
            }
        ],
        "relatedParty": [
            {
                "id": sub.customer_id,
                "href": f"{CUSTOMER}/{sub.customer_id}",
                "role": "customer",
                "@referredType": "Customer",
            }
        ],
    }


def _common(view: BucketView) -> dict[str, Any]:
    b = view.balance
    remaining = view.remaining
    return {
        "id": view.id,
        "href": f"{BUCKETS}/bucket/{view.id}",
        "name": NAMES.get(b.allowance_type, b.allowance_type),
        "description": f"{NAMES.get(b.allowance_type, b.allowance_type)} allowance of {view.subscription.id}",
        "isShared": False,
        "usageType": TMF_USAGE_TYPE.get(b.allowance_type, "other"),
        "status": STATUS.get(view.subscription.state, "suspended"),
        "remainingValue": _quantity(Decimal(-1) if remaining is None else remaining, b.unit),
        "remainingValueName": _spoken(remaining, b.unit),
        "reservedValue": _quantity(0, b.unit),
        "validFor": {"startDateTime": _time(b.period_start), "endDateTime": _time(b.period_end)},
        **_refs(view),
    }


def bucket_to_tmf(view: BucketView) -> dict[str, Any]:
    """TMF654 Bucket, with the allowance's total and consumption as extensions."""
    b = view.balance
    return {
        **_common(view),
        "@type": "Bucket",
        "allowanceType": b.allowance_type,
        "totalValue": _quantity(b.total, b.unit),
        "consumedValue": _quantity(view.consumed, b.unit),
    }


@buckets.get("/bucket", summary="Balances of lines, as buckets")
async def list_buckets(
    response: Response,
    product_id: str | None = Query(None, alias="product.id", max_length=20, pattern=SUB_ID),
    subscription_id: str | None = Query(None, alias="subscriptionId", max_length=20, pattern=SUB_ID),
    party_id: str | None = Query(None, alias="relatedParty.id", max_length=64, pattern=CUSTOMER_ID),
    msisdn: str | None = Query(None, alias="logicalResource.id", max_length=15, pattern=MSISDN),
    paging: Paging = Depends(),
    rt: Runtime = Depends(runtime),
) -> list[dict[str, Any]]:
    if product_id and subscription_id and product_id != subscription_id:
        raise InvalidInput("bucket.filter_conflict", "product.id and subscriptionId name different lines.")
    total, views = await ops.list_buckets(
        rt,
        subscription_id=product_id or subscription_id,
        customer_id=party_id,
        msisdn=msisdn,
        offset=paging.offset,
        limit=paging.limit,
    )
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(views))
    return listing([bucket_to_tmf(v) for v in views], paging)


@buckets.get("/bucket/{bucket_id}", summary="One bucket")
async def get_bucket(
    bucket_id: str = Path(max_length=64, pattern=r"^SUB-\d+\.[a-z_]+$"),
    fields: str | None = Query(None, max_length=500),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    return one(bucket_to_tmf(await ops.get_bucket(rt, bucket_id)), fields)


# ---- TMF677 ------------------------------------------------------------------------------------


class _Ref(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(max_length=64)


class _Criteria(BaseModel):
    model_config = ConfigDict(extra="ignore")

    product: list[_Ref] | None = Field(default=None, max_length=1)
    logicalResource: list[_Ref] | None = Field(default=None, max_length=1)


class QueryUsageConsumptionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    searchCriteria: _Criteria


def _counter(view: BucketView, report: ops.Consumption) -> dict[str, Any]:
    b = view.balance
    if view.unlimited:
        # An unlimited bucket is never decremented: what was used is what was rated this period.
        used = Decimal(report.rated_since_period_start.get(b.allowance_type, 0)) / BALANCE_UNIT_FACTORS.get(
            b.unit, 1
        )
    else:
        used = view.consumed
    return {
        "counterType": "used",
        "level": "global",
        "value": _quantity(used, b.unit),
        "valueName": _spoken(used, b.unit),
        "consumptionPeriod": {"startDateTime": _time(b.period_start), "endDateTime": _time(report.at)},
    }


def consumption_to_tmf(report: ops.Consumption, criteria: dict[str, Any]) -> dict[str, Any]:
    first = report.buckets[0]
    sub = first.subscription
    query_id = f"{sub.id}@{report.at.strftime('%Y%m%dT%H%M%S')}"
    return {
        "id": query_id,
        "href": f"{CONSUMPTION}/queryUsageConsumption/{query_id}",
        "@type": "QueryUsageConsumption",
        "queryUsageConsumptionDate": _time(report.at),
        "searchCriteria": criteria,
        "usageConsumption": [
            {
                "id": sub.id,
                "@type": "UsageConsumption",
                "name": f"Usage consumption of {sub.msisdn}",
                "creationDate": _time(report.at),
                "lastUpdate": _time(report.at),
                "state": "done",
                "validPeriod": {
                    "startDateTime": _time(sub.current_period_start),
                    "endDateTime": _time(sub.current_period_end),
                },
                **_refs(first),
                "bucketRefOrValue": [
                    {**_common(v), "@type": "BucketRefOrValue", "bucketCounter": [_counter(v, report)]}
                    for v in report.buckets
                ],
            }
        ],
    }


@consumption.post("/queryUsageConsumption", status_code=201, summary="Usage consumption of a line, now")
async def query_usage_consumption(
    body: QueryUsageConsumptionIn, rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    c = body.searchCriteria
    sub_id = c.product[0].id if c.product else None
    msisdn = c.logicalResource[0].id if c.logicalResource else None
    return await _report(rt, sub_id, msisdn)


@consumption.get("/queryUsageConsumption", summary="Usage consumption of a line, now (as a one-item list)")
async def list_usage_consumption(
    product_id: str | None = Query(None, alias="product.id", max_length=20, pattern=SUB_ID),
    msisdn: str | None = Query(None, alias="logicalResource.id", max_length=15, pattern=MSISDN),
    fields: str | None = Query(None, max_length=500),
    rt: Runtime = Depends(runtime),
) -> list[dict[str, Any]]:
    return [one(await _report(rt, product_id, msisdn), fields)]


async def _report(rt: Runtime, sub_id: str | None, msisdn: str | None) -> dict[str, Any]:
    if not sub_id and not msisdn:
        raise InvalidInput(
            "usage_consumption.criteria_required",
            "Say which line: searchCriteria.product[0].id (subscription) or logicalResource[0].id (MSISDN).",
        )
    criteria: dict[str, Any] = {}
    if sub_id:
        criteria["product"] = [{"id": sub_id, "href": f"{PRODUCT}/{sub_id}"}]
    if msisdn:
        criteria["logicalResource"] = [{"id": msisdn, "href": f"{RESOURCE}/{msisdn}"}]
    report = await ops.usage_consumption(rt, subscription_id=sub_id, msisdn=msisdn)
    return consumption_to_tmf(report, criteria)


router.include_router(buckets)
router.include_router(consumption)

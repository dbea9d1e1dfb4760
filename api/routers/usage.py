"""TMF635 Usage Management: record usage (one event, or a bulk of them) and read it back.

A record is a TMF635 `Usage` whose `usageCharacteristic` carry `msisdn`, `quantity`, `unit`
(KB / MB / GB, sec / min, count) and `roaming`. `id` is optional and is the idempotency key: the same
record sent again under its id is counted once, and answers 200 with the event as first rated (a
new one answers 201). The same id with a different record (another number, type, quantity, roaming
flag or usageDate) is a 409 `usage.event_id.conflict` that says nothing of the stored event, which
may be another subscriber's. A refused record answers 422 (or 400) with the rule code and stores
nothing. An implausible `usageDate` is a 400: more than an hour ahead of business time, more than
90 days old, or before the line existed (domains/usage/rules.py).

The bulk endpoint takes a JSON array or JSON lines (Content-Type application/x-ndjson) of up to
50,000 records and MAX_BULK_BYTES, counted while the body is read (a longer body is a 413 as soon
as it passes the limit), rates them in order in one transaction, and answers 200 with the counts
and each rejection (index, id, reason, message), id conflicts included (also counted in
`conflict`). A record that is not even a well-formed Usage object is one rejection
(`request.invalid`), not a refusal of the whole file; a body that is not a JSON array or JSON lines
is a 400.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import context, runtime
from api.tmf import Paging, choice, listing, one
from core.context import RequestContext
from core.errors import DomainError, InvalidInput
from domains.usage.models import UsageEvent
from domains.usage.rating import ID_CONFLICT
from domains.usage.rules import FINE_UNIT, USAGE_TYPES, RawUsage
from domains.usage.store import UsageRecord
from ops import usage as ops
from ops.runtime import Runtime

BASE = "/tmf-api/usageManagement/v4"
PRODUCT = "/tmf-api/productInventory/v4/product"
router = APIRouter(prefix=BASE, tags=["TMF635 Usage"])
# Mounted before the other routers (api/routers/__init__.py): no other router serves BASE, and the
# network posts here at hundreds of events a second.
MATCH_FIRST = True

MAX_BULK_EVENTS = 50_000
MAX_BULK_BYTES = 64 * 1024 * 1024
EVENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"
STATUSES = Literal["received", "rejected", "recycled", "guided", "rated", "rerated", "billed"]
JSON_LINES = (
    "application/x-ndjson",
    "application/jsonl",
    "application/json-lines",
    "application/x-jsonlines",
)


class UsageCharacteristicIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(max_length=64)
    value: bool | int | float | str | None = Field(default=None)
    valueType: str | None = Field(default=None, max_length=32)


class UsageIn(BaseModel):
    """TMF635 Usage_Create, plus the client's own event `id` (the idempotency key)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str | None = Field(default=None, min_length=1, max_length=64, pattern=EVENT_ID)
    usageType: str = Field(max_length=32)
    usageDate: datetime | None = None
    description: str | None = Field(default=None, max_length=500)
    status: STATUSES | None = None
    usageCharacteristic: list[UsageCharacteristicIn] = Field(max_length=32)
    type_: str | None = Field(default=None, alias="@type", max_length=64)
    baseType: str | None = Field(default=None, alias="@baseType", max_length=64)

    def raw(self, index: int = 0) -> RawUsage:
        chars: dict[str, Any] = {}
        for c in self.usageCharacteristic:
            if isinstance(c.value, str) and len(c.value) > 64:
                raise InvalidInput("request.invalid", f"Characteristic {c.name} is too long.")
            chars[c.name] = c.value
        return RawUsage(
            index=index,
            id=self.id,
            usage_type=self.usageType,
            msisdn=chars.get("msisdn"),
            quantity=chars.get("quantity"),
            unit=chars.get("unit"),
            roaming=chars.get("roaming", chars.get("roamingIndicator")),
            usage_date=self.usageDate,
        )


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _char(name: str, value_type: str, value: Any) -> dict[str, Any]:
    return {"name": name, "valueType": value_type, "value": value}


def usage_to_tmf(e: UsageEvent | UsageRecord) -> dict[str, Any]:
    quantity = _number(e.original_quantity)
    return {
        "id": e.id,
        "href": f"{BASE}/usage/{e.id}",
        "@type": "Usage",
        "usageType": e.usage_type,
        "usageDate": _time(e.usage_date),
        "status": e.status,
        "description": f"{quantity} {e.original_unit} of {e.usage_type}{' (roaming)' if e.roaming else ''}",
        "usageCharacteristic": [
            _char("msisdn", "string", e.msisdn),
            _char("quantity", "number", quantity),
            _char("unit", "string", e.original_unit),
            _char("roaming", "boolean", e.roaming),
            _char("subscriptionId", "string", e.subscription_id),
            _char("allowanceType", "string", e.allowance_type),
            _char("ratedQuantity", "integer", e.quantity),
            _char("ratedUnit", "string", FINE_UNIT[e.usage_type]),
            _char("inBundleQuantity", "integer", e.in_bundle),
        ],
        "ratedProductUsage": [
            {
                "@type": "RatedProductUsage",
                "ratingDate": _time(e.rated_at),
                "offerTariffType": "bundle",
                # TMF's tags: inside the bundle, or past an exhausted one
                "usageRatingTag": "included usage" if e.in_bundle == e.quantity else "non included usage",
                "isBilled": False,
                "productRef": {
                    "id": e.subscription_id,
                    "href": f"{PRODUCT}/{e.subscription_id}",
                    "@referredType": "Product",
                },
            }
        ],
    }


@router.post("/usage", status_code=201, summary="Record one usage event (mediated and rated at once)")
async def create_usage(body: UsageIn, request: Request) -> dict[str, Any]:
    # The runtime and the context straight from the request, and the answer as it is: the network
    # posts here hundreds of times a second, and dependencies and response serialisation cost more
    # per request than the lookups they do (the schema still documents the dict).
    recorded = await ops.record_usage(request.app.state.runtime, request.state.ctx, body.raw())
    return JSONResponse(  # type: ignore[return-value]
        usage_to_tmf(recorded.event),
        status_code=201 if recorded.created else 200,
        headers={"Location": f"{BASE}/usage/{recorded.event.id}"},
    )


class PayloadTooLarge(DomainError):
    status = 413
    kind = "PAYLOAD_TOO_LARGE"


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        "usage.bulk.too_large",
        f"A bulk request holds at most {MAX_BULK_BYTES} bytes; split the file.",
        maxBytes=MAX_BULK_BYTES,
    )


async def _read_body(request: Request) -> bytes:
    """The body, refused with a 413 as soon as it passes MAX_BULK_BYTES: a declared length is
    believed at once, and a chunked body is counted as it arrives, never held whole first."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BULK_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BULK_BYTES:
            raise _too_large()
    return bytes(body)


@router.post("/usage/bulk", summary="Record many usage events in order (JSON array or JSON lines)")
async def create_usage_bulk(
    request: Request, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    body = await _read_body(request)
    lines = request.headers.get("content-type", "").split(";")[0].strip().lower() in JSON_LINES
    records, malformed = _parse_bulk(body, lines)
    del body
    result = await ops.record_bulk(rt, ctx, records)
    rejections = [
        {"index": r.index, "id": r.id, "reason": r.error.code, "message": r.error.message}
        for r in result.rejections
    ]
    rejections = sorted(malformed + rejections, key=lambda r: r["index"])
    return {
        "@type": "UsageBulkResult",
        "rated": len(result.rated),
        "duplicate": len(result.duplicates),
        "rejected": len(rejections),
        # Of the rejected: ids already used for a different record (usage.event_id.conflict).
        "conflict": sum(1 for r in result.rejections if r.error.code == ID_CONFLICT),
        "blocked": sorted({sub for sub, _ in result.blocked}),
        "rejections": rejections,
    }


def _parse_bulk(body: bytes, lines: bool) -> tuple[list[RawUsage], list[dict[str, Any]]]:
    """Parse once with the json module and check each record by hand (pydantic models cost ten
    times as much per record at this volume); a record the quick check does not vouch for goes
    through the UsageIn model, so the rules are the model's and one bad record is one rejection."""
    items = _items(body) if lines else _array(body)
    _check_count(len(items))
    raws: list[RawUsage] = []
    malformed: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        raw = _quick(index, item)
        if raw is None:
            try:
                raw = UsageIn.model_validate(item).raw(index)
            except ValidationError as exc:
                malformed.append(_malformed(index, item, _first_problem(exc)))
                continue
            except InvalidInput as exc:
                malformed.append(_malformed(index, item, exc.message, exc.code))
                continue
        raws.append(raw)
    return raws, malformed


_QUICK_KEYS = frozenset({"id", "usageType", "usageDate", "usageCharacteristic", "@type"})
_QUICK_CHAR_KEYS = frozenset({"name", "value", "valueType"})
_EVENT_ID = re.compile(EVENT_ID)


def _quick(index: int, item: Any) -> RawUsage | None:
    """A plainly well-formed record as RawUsage, or None to let the model judge it."""
    if type(item) is not dict or not item.keys() <= _QUICK_KEYS:
        return None
    event_id, usage_type, chars = item.get("id"), item.get("usageType"), item.get("usageCharacteristic")
    if event_id is not None and not (
        type(event_id) is str and len(event_id) <= 64 and _EVENT_ID.match(event_id)
    ):
        return None
    if type(usage_type) is not str or len(usage_type) > 32 or type(chars) is not list or len(chars) > 32:
        return None
    kind = item.get("@type")
    if kind is not None and not (type(kind) is str and len(kind) <= 64):
        return None
    when = item.get("usageDate")
    if when is not None:
        try:
            when = datetime.fromisoformat(when) if type(when) is str else None
        except ValueError:
            return None
        if when is None:
            return None
    values: dict[str, Any] = {}
    for c in chars:
        if type(c) is not dict or not c.keys() <= _QUICK_CHAR_KEYS:
            return None
        name, value, value_type = c.get("name"), c.get("value"), c.get("valueType")
        if type(name) is not str or len(name) > 64 or type(value) in (list, dict):
            return None
        if (type(value) is str and len(value) > 64) or not (
            value_type is None or (type(value_type) is str and len(value_type) <= 32)
        ):
            return None
        values[name] = value
    return RawUsage(
        index,
        event_id,
        usage_type,
        values.get("msisdn"),
        values.get("quantity"),
        values.get("unit"),
        values.get("roaming", values.get("roamingIndicator")),
        when,
    )


def _array(body: bytes) -> list[Any]:
    try:
        items = json.loads(body)
    except ValueError:
        raise InvalidInput(
            "request.invalid", "The body is not JSON: send a JSON array of Usage records."
        ) from None
    if not isinstance(items, list):
        raise InvalidInput("request.invalid", "The body must be a JSON array of Usage records.")
    return items


def _items(body: bytes) -> list[Any]:
    """JSON lines: one record per line; a line that is not JSON is a record the model refuses."""
    items: list[Any] = []
    for chunk in body.split(b"\n"):
        if chunk.strip():
            try:
                items.append(json.loads(chunk))
            except ValueError:
                items.append("<not JSON>")
    return items


def _check_count(n: int) -> None:
    if n > MAX_BULK_EVENTS:
        raise InvalidInput(
            "usage.bulk.too_many_events", f"A bulk request holds at most {MAX_BULK_EVENTS} events; got {n}."
        )


def _malformed(index: int, item: Any, problem: str, reason: str = "request.invalid") -> dict[str, Any]:
    event_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
    return {"index": index, "id": event_id and event_id[:64], "reason": reason, "message": problem}


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))


@router.get("/usage", summary="List rated usage, newest first")
async def list_usage(
    response: Response,
    msisdn: str | None = Query(None, max_length=15, pattern=r"^\d+$"),
    subscription_id: str | None = Query(None, alias="subscriptionId", max_length=20, pattern=r"^[A-Z]+-\d+$"),
    usage_type: str | None = Query(None, alias="usageType", max_length=10),
    paging: Paging = Depends(),
    rt: Runtime = Depends(runtime),
) -> list[dict[str, Any]]:
    choice(usage_type, USAGE_TYPES, "usageType")
    total, events = await ops.list_usage(
        rt,
        msisdn=msisdn,
        subscription_id=subscription_id,
        usage_type=usage_type,
        offset=paging.offset,
        limit=paging.limit,
    )
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(events))
    return listing([usage_to_tmf(e) for e in events], paging)


@router.get("/usage/{usage_id}", summary="One rated usage event")
async def get_usage(
    usage_id: str = Path(max_length=64, pattern=EVENT_ID),
    fields: str | None = Query(None, max_length=500),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    return one(usage_to_tmf(await ops.get_usage(rt, usage_id)), fields)

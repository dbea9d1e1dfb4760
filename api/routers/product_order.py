"""TMF622 Product Ordering: place an order for a plan (the order-to-activation saga starts at once),
read orders with their state history, cancel one before provisioning starts; plus the operator's
list of stuck orders under /bss-api/v1/order/stuck.

Our states are written in TMF's spelling here (in_progress → inProgress). The extensions
`serviceOrder`, `msisdn`, `iccid` and `stateHistory` link the order to what the saga built.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import context, read_session, runtime
from api.tmf import Paging, choice, listing, one
from core.context import RequestContext
from core.errors import InvalidInput, NotFound, PolicyViolation
from domains.catalog.models import ProductOffering
from domains.ordering import rules
from domains.ordering import services as ordering
from domains.ordering.models import OrderStateHistory, ProductOrder, ProductOrderItem
from domains.service_ordering.models import Service
from ops import orders as ops
from ops.idempotency import check_key
from ops.runtime import Runtime
from ops.som import stuck_orders_with_tasks, temporal_guard

BASE = "/tmf-api/productOrderingManagement/v4"
CATALOG = "/tmf-api/productCatalogManagement/v4"
CUSTOMER = "/tmf-api/customerManagement/v4"
PRODUCT = "/tmf-api/productInventory/v4"
SERVICE_ORDERING = "/tmf-api/serviceOrdering/v4"

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
# our state -> TMF622 ProductOrderStateType
TMF_STATE = {
    rules.ACKNOWLEDGED: "acknowledged",
    rules.IN_PROGRESS: "inProgress",
    rules.COMPLETED: "completed",
    rules.FAILED: "failed",
    rules.CANCELLED: "cancelled",
}
OUR_STATE = {tmf: ours for ours, tmf in TMF_STATE.items()}
CHARACTERISTICS = {"msisdn", "promoCode"}

IdempotencyKey = Header(None, alias="Idempotency-Key", max_length=200)
OrderId = Path(alias="id", pattern=ID_PATTERN, description="e.g. ORD-000001")


def time_json(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def customer_party(customer_id: str) -> dict[str, Any]:
    return {
        "id": customer_id,
        "href": f"{CUSTOMER}/customer/{customer_id}",
        "role": "customer",
        "@type": "RelatedParty",
        "@referredType": "Customer",
    }


# ---- request bodies ----------------------------------------------------------------------------


class Tmf(BaseModel):
    """TMF bodies carry @type, @baseType, descriptions and the like: extra fields are allowed."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Ref(Tmf):
    id: StrictStr = Field(pattern=ID_PATTERN)
    href: StrictStr | None = Field(None, max_length=500)
    name: StrictStr | None = Field(None, max_length=200)


class Characteristic(Tmf):
    name: StrictStr = Field(max_length=64)
    value: StrictStr = Field(max_length=64)
    value_type: StrictStr | None = Field(None, alias="valueType", max_length=40)


class ProductValue(Tmf):
    product_characteristic: list[Characteristic] = Field(
        default_factory=list, alias="productCharacteristic", max_length=10
    )


class OrderItemIn(Tmf):
    id: StrictStr = Field(pattern=ID_PATTERN)
    action: Literal["add", "modify", "delete", "noChange"]
    quantity: int | None = Field(None, ge=1, le=1, strict=True)
    product_offering: Ref = Field(alias="productOffering")
    product: ProductValue | None = None
    # Accepted directly on the item too, for convenience.
    product_characteristic: list[Characteristic] = Field(
        default_factory=list, alias="productCharacteristic", max_length=10
    )


class PartyIn(Tmf):
    id: StrictStr = Field(pattern=ID_PATTERN)
    role: StrictStr | None = Field(None, max_length=64)
    name: StrictStr | None = Field(None, max_length=200)
    href: StrictStr | None = Field(None, max_length=500)


class ProductOrderIn(Tmf):
    product_order_item: list[OrderItemIn] = Field(
        default_factory=list, alias="productOrderItem", max_length=20
    )
    related_party: list[PartyIn] = Field(default_factory=list, alias="relatedParty", max_length=20)
    requested_start_date: datetime | None = Field(None, alias="requestedStartDate")
    description: StrictStr | None = Field(None, max_length=1000)
    external_id: StrictStr | None = Field(None, alias="externalId", max_length=64)

    @field_validator("requested_start_date")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2030-01-01T09:00:00Z")
        return value


class OrderRef(Tmf):
    id: StrictStr = Field(pattern=ID_PATTERN)


class CancelIn(Tmf):
    product_order: OrderRef = Field(alias="productOrder")
    cancellation_reason: StrictStr | None = Field(None, alias="cancellationReason", max_length=500)
    requested_cancellation_date: datetime | None = Field(None, alias="requestedCancellationDate")


def order_request(body: ProductOrderIn, idempotency_key: str | None) -> ops.OrderRequest:
    """The one plan line and the customer out of a TMF622 body; anything else is refused."""
    items = body.product_order_item
    if len(items) != 1:
        raise InvalidInput(
            "order.create.one_item_required",
            f"An order holds exactly one productOrderItem (one plan for one new line); got {len(items)}.",
        )
    item = items[0]
    if item.action != "add":
        raise PolicyViolation(
            "order.create.unsupported_action",
            f"Only action 'add' (a new line) is supported on a product order; got {item.action!r}. "
            "Change or end a line through its subscription.",
            action=item.action,
        )
    customers = [p for p in body.related_party if (p.role or "").lower() == "customer"]
    if len(customers) != 1:
        raise InvalidInput(
            "order.create.customer_party_required",
            'Name the customer once in relatedParty: [{"id": "CUST-…", "role": "customer"}].',
        )
    chars: dict[str, str] = {}
    for c in [*(item.product.product_characteristic if item.product else []), *item.product_characteristic]:
        if c.name not in CHARACTERISTICS:
            raise InvalidInput(
                "order.create.unknown_characteristic",
                f"Unknown characteristic {c.name!r}; an order item takes {' and '.join(sorted(CHARACTERISTICS))}.",
            )
        if chars.setdefault(c.name, c.value) != c.value:
            raise InvalidInput(
                "order.create.conflicting_characteristic", f"Characteristic {c.name!r} is given twice."
            )
    return ops.OrderRequest(
        customer_id=customers[0].id,
        offering_id=item.product_offering.id,
        msisdn_preference=chars.get("msisdn"),
        promo_code=chars.get("promoCode"),
        requested_start=body.requested_start_date,
        idempotency_key=idempotency_key,
    )


# ---- responses ---------------------------------------------------------------------------------


async def order_views(session: AsyncSession, orders: Sequence[ProductOrder]) -> list[dict[str, Any]]:
    """TMF622 bodies for a page of orders, with their items, offerings, histories and lines
    loaded in one query each rather than one per order."""
    ids = [o.id for o in orders]
    if not ids:
        return []
    items: dict[str, list[ProductOrderItem]] = {}
    for item in await session.exec(
        select(ProductOrderItem)
        .where(col(ProductOrderItem.order_id).in_(ids))
        .order_by(col(ProductOrderItem.id))
    ):
        items.setdefault(item.order_id, []).append(item)
    history: dict[str, list[OrderStateHistory]] = {}
    for h in await session.exec(
        select(OrderStateHistory)
        .where(col(OrderStateHistory.order_id).in_(ids))
        .order_by(col(OrderStateHistory.id))
    ):
        history.setdefault(h.order_id, []).append(h)
    names = dict(
        (
            await session.exec(
                select(ProductOffering.id, ProductOffering.name).where(
                    col(ProductOffering.id).in_({o.offering_id for o in orders})
                )
            )
        ).all()
    )
    so_ids = [o.service_order_id for o in orders if o.service_order_id]
    lines: dict[str, dict[str, Any]] = {}
    if so_ids:
        for svc in await session.exec(
            select(Service).where(col(Service.service_order_id).in_(so_ids), Service.type == "CFS")
        ):
            lines[svc.service_order_id] = svc.characteristics or {}
    return [
        order_json(
            o,
            items.get(o.id, []),
            history.get(o.id, []),
            names.get(o.offering_id),
            lines.get(o.service_order_id or "", {}),
        )
        for o in orders
    ]


def order_json(
    o: ProductOrder,
    items: list[ProductOrderItem],
    history: list[OrderStateHistory],
    offering_name: str | None,
    line: dict[str, Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": o.id,
        "href": f"{BASE}/productOrder/{o.id}",
        "@type": "ProductOrder",
        "state": TMF_STATE.get(o.state, o.state),
        "orderDate": time_json(o.created_at),
        "relatedParty": [customer_party(o.customer_id)],
        "productOrderItem": [item_json(o, i, offering_name) for i in items],
        "orderTotalPrice": [_price(o)],
        "stateHistory": [
            {
                "from": TMF_STATE.get(h.from_state, h.from_state) if h.from_state else None,
                "to": TMF_STATE.get(h.to_state, h.to_state),
                "at": time_json(h.at),
                "actor": h.actor,
                "reason": h.reason,
            }
            for h in history
        ],
    }
    if o.completed_at:
        body["completionDate"] = time_json(o.completed_at)
    if o.state in (rules.FAILED, rules.CANCELLED):
        ended = next((h.at for h in reversed(history) if h.to_state == o.state), o.updated_at)
        body["note"] = [
            {
                "text": o.failure_reason or f"The order was {o.state}.",
                "date": time_json(ended),
                "author": "bss",
            }
        ]
        if o.state == rules.CANCELLED:
            body["cancellationDate"] = time_json(ended)
            body["cancellationReason"] = o.failure_reason
    if o.service_order_id:
        body["serviceOrder"] = [
            {
                "id": o.service_order_id,
                "href": f"{SERVICE_ORDERING}/serviceOrder/{o.service_order_id}",
                "@referredType": "ServiceOrder",
            }
        ]
    if o.state not in (rules.FAILED, rules.CANCELLED):
        for name in ("msisdn", "iccid"):
            if line.get(name):
                body[name] = line[name]
    if o.msisdn_preference:
        body["msisdnPreference"] = o.msisdn_preference
    if o.promo_code:
        body["promoCode"] = o.promo_code
    if o.note:  # e.g. why the promo code did not apply
        body.setdefault("note", []).insert(
            0, {"text": o.note, "date": time_json(o.created_at), "author": "bss"}
        )
    return body


def _price(o: ProductOrder) -> dict[str, Any]:
    body: dict[str, Any] = {
        "priceType": "recurring",
        "recurringChargePeriod": "30 days",
        "price": {"taxIncludedAmount": {"unit": o.price_currency, "value": float(o.price_amount)}},
        "productOfferingPrice": {"id": o.price_id, "href": f"{CATALOG}/productOfferingPrice/{o.price_id}"},
    }
    if o.promo_amount is not None:
        # The promotion snapshotted with the price: the discounted price, for how many periods
        # (the activation the first; absent: every period).
        alteration: dict[str, Any] = {
            "priceType": "discount",
            "name": o.promo_code,
            "description": f"{o.promo_discount_type} {o.promo_discount_value}",
            "price": {"taxIncludedAmount": {"unit": o.price_currency, "value": float(o.promo_amount)}},
        }
        if o.promo_periods is not None and o.promo_periods > 0:
            alteration["applicationDuration"] = o.promo_periods
        body["priceAlteration"] = [alteration]
    return body


def item_json(o: ProductOrder, item: ProductOrderItem, offering_name: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": item.id,
        "action": item.action,
        "quantity": 1,
        "state": TMF_STATE.get(item.state, item.state),
        "productOffering": {
            "id": item.offering_id,
            "href": f"{CATALOG}/productOffering/{item.offering_id}",
            "@referredType": "ProductOffering",
        },
        "itemPrice": [_price(o)],
        "@type": "ProductOrderItem",
    }
    if offering_name:
        body["productOffering"]["name"] = offering_name
    subscription_id = item.subscription_id or (o.subscription_id if o.state == rules.COMPLETED else None)
    if subscription_id:
        body["product"] = {
            "id": subscription_id,
            "href": f"{PRODUCT}/product/{subscription_id}",
            "@referredType": "Product",
        }
    return body


async def load_order(session: AsyncSession, order_id: str) -> dict[str, Any]:
    return (await order_views(session, [await ordering.get_order(session, order_id)]))[0]


# ---- TMF622 ------------------------------------------------------------------------------------

tmf = APIRouter(prefix=BASE, tags=["TMF622 Product Ordering"])


@tmf.post("/productOrder", status_code=201, summary="Order a plan: a new line, activated by the saga")
async def create_product_order(
    body: ProductOrderIn,
    response: Response,
    idempotency_key: str | None = IdempotencyKey,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    req = order_request(body, check_key(idempotency_key))
    async with temporal_guard("order"):
        order = await ops.create_order(rt, ctx, req)
    async with rt.db() as s:
        view = await load_order(s, order.id)
    response.headers["Location"] = view["href"]
    return view


@tmf.get("/productOrder", summary="List product orders")
async def list_product_orders(
    response: Response,
    paging: Paging = Depends(),
    state: str | None = Query(None, max_length=20, description=", ".join(OUR_STATE)),
    customer_id: str | None = Query(None, alias="customerId", pattern=ID_PATTERN),
    party_id: str | None = Query(None, alias="relatedParty.id", pattern=ID_PATTERN),
    session: AsyncSession = Depends(read_session),
) -> list[dict[str, Any]]:
    choice(state, tuple(OUR_STATE), "state")
    if customer_id and party_id and customer_id != party_id:
        raise InvalidInput("customerId.conflict", "customerId and relatedParty.id name different customers.")
    orders, total = await ordering.list_orders(
        session,
        state=OUR_STATE[state] if state else None,
        customer_id=customer_id or party_id,
        offset=paging.offset,
        limit=paging.limit,
    )
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(orders))
    return listing(await order_views(session, orders), paging)


@tmf.get("/productOrder/{id}", summary="One product order, with its state history")
async def get_product_order(
    order_id: str = OrderId,
    fields: str | None = Query(None, max_length=500),
    session: AsyncSession = Depends(read_session),
) -> dict[str, Any]:
    return one(await load_order(session, order_id), fields)


def cancel_json(order: dict[str, Any], requested: datetime | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": cancel_id(order["id"]),
        "href": f"{BASE}/cancelProductOrder/{cancel_id(order['id'])}",
        "@type": "CancelProductOrder",
        "state": "done",
        "productOrder": {"id": order["id"], "href": order["href"], "@referredType": "ProductOrder"},
        "cancellationReason": order.get("cancellationReason"),
        "effectiveCancellationDate": order.get("cancellationDate"),
    }
    if requested:
        body["requestedCancellationDate"] = time_json(requested)
    return body


def cancel_id(order_id: str) -> str:
    # One cancellation per order at most, so the request is named after the order it ended.
    return f"CANCEL-{order_id}"


@tmf.post("/cancelProductOrder", status_code=201, summary="Cancel an order before provisioning starts")
async def cancel_product_order(
    body: CancelIn,
    response: Response,
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    order_id = body.product_order.id
    async with temporal_guard("order"):
        await ops.cancel_order(rt, ctx, order_id, body.cancellation_reason)
    async with rt.db() as s:
        view = await load_order(s, order_id)
    if view["state"] != "cancelled":
        # The workflow moved on before the cancellation landed (it failed or completed meanwhile).
        raise PolicyViolation(
            "order.transition.invalid", f"Order {order_id} is {view['state']}; it was not cancelled."
        )
    result = cancel_json(view, body.requested_cancellation_date)
    response.headers["Location"] = result["href"]
    return result


@tmf.get("/cancelProductOrder/{id}", summary="A cancellation, by CANCEL-<order id>")
async def get_cancel_product_order(
    cancel: str = Path(alias="id", pattern=r"^CANCEL-[A-Za-z0-9_.:-]{1,64}$"),
    session: AsyncSession = Depends(read_session),
) -> dict[str, Any]:
    order_id = cancel.removeprefix("CANCEL-")
    try:
        view = await load_order(session, order_id)
    except NotFound:
        view = None
    if view is None or view["state"] != "cancelled":
        raise NotFound("cancel_product_order.not_found", f"No cancellation {cancel}.")
    return cancel_json(view, None)


# ---- operator: stuck orders --------------------------------------------------------------------

bss = APIRouter(prefix="/bss-api/v1/order", tags=["Orders (BSS)"])


@bss.get("/stuck", summary="Orders whose workflow waits on an operator (BssStuck=true)")
async def stuck(response: Response, rt: Runtime = Depends(runtime)) -> list[dict[str, Any]]:
    rows = await stuck_orders_with_tasks(rt)
    response.headers["X-Total-Count"] = response.headers["X-Result-Count"] = str(len(rows))
    return rows


router = APIRouter()
router.include_router(bss)
router.include_router(tmf)

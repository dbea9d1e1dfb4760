"""Product order services. Every write is idempotent, because the order-to-activation workflow's
activities may run twice: moving an order to the state it is already in does nothing."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.db import insert_unless_exists
from core.errors import NotFound, PolicyViolation
from core.ids import id_sql
from domains.audit.services import record
from domains.ordering import rules
from domains.ordering.models import OrderStateHistory, ProductOrder, ProductOrderItem

if TYPE_CHECKING:
    from domains.catalog.models import ProductOfferingPrice

AGGREGATE = "ProductOrder"


async def get_order(session: AsyncSession, order_id: str, *, for_update: bool = False) -> ProductOrder:
    stmt = select(ProductOrder).where(ProductOrder.id == order_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    order = (await session.exec(stmt)).first()
    if order is None:
        raise NotFound("order.not_found", f"No product order {order_id}.", order_id=order_id)
    return order


async def order_items(session: AsyncSession, order_id: str) -> list[ProductOrderItem]:
    rows = await session.exec(
        select(ProductOrderItem)
        .where(ProductOrderItem.order_id == order_id)
        .order_by(col(ProductOrderItem.id))
    )
    return list(rows)


async def list_orders(
    session: AsyncSession,
    *,
    state: str | None = None,
    customer_id: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[ProductOrder], int]:
    where: list[Any] = []
    if state is not None:
        where.append(ProductOrder.state == state)
    if customer_id is not None:
        where.append(ProductOrder.customer_id == customer_id)
    total = (await session.exec(select(func.count()).select_from(ProductOrder).where(*where))).one()
    rows = await session.exec(
        select(ProductOrder)
        .where(*where)
        .order_by(col(ProductOrder.created_at).desc(), col(ProductOrder.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows), int(total)


async def order_history(session: AsyncSession, order_id: str) -> list[OrderStateHistory]:
    await get_order(session, order_id)
    rows = await session.exec(
        select(OrderStateHistory)
        .where(OrderStateHistory.order_id == order_id)
        .order_by(col(OrderStateHistory.id))
    )
    return list(rows)


async def _by_idempotency_key(session: AsyncSession, key: str, customer_id: str) -> ProductOrder | None:
    order = (await session.exec(select(ProductOrder).where(ProductOrder.idempotency_key == key))).first()
    if order is not None and order.customer_id != customer_id:
        raise PolicyViolation(
            "order.create.idempotency_key_reused",
            "This idempotency key was already used for another customer's order.",
        )
    return order


async def _validated_sale(session: AsyncSession, customer_id: str, offering_id: str) -> ProductOfferingPrice:
    """The customer may buy, the plan is on sale, a card is on file: the price that wins now."""
    from domains.catalog.services import require_sellable
    from domains.crm.models import Customer
    from domains.payment.services import has_default_payment_method

    # The customer's status and whether a card is on file, in one read (checked in this order).
    found = (
        await session.exec(
            select(Customer.status, has_default_payment_method(customer_id)).where(Customer.id == customer_id)
        )
    ).first()
    if found is None:
        raise PolicyViolation(
            "order.create.customer_not_found", f"No customer {customer_id}.", customer_id=customer_id
        )
    status, has_card = found
    if status != "active":
        raise PolicyViolation(
            "order.create.customer_not_active",
            f"Customer {customer_id} is {status}; only an active customer can order.",
            customer_id=customer_id,
        )
    try:
        _, price = await require_sellable(session, offering_id)
    except NotFound:
        raise PolicyViolation(
            "order.create.offering_not_found", f"No offering {offering_id}.", offering_id=offering_id
        ) from None
    except PolicyViolation as exc:
        # The reference names a missing active price the same way as an offering off sale.
        if exc.code != "catalog.price.no_active_row":
            raise
        raise PolicyViolation(
            "policy.offering.not_sellable_now", exc.message, offering_id=offering_id
        ) from None
    if not has_card:
        raise PolicyViolation(
            "order.create.no_payment_method",
            f"Customer {customer_id} has no card on file; add one before ordering.",
            customer_id=customer_id,
        )
    return price


async def create_order(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    customer_id: str,
    offering_id: str,
    msisdn_preference: str | None = None,
    promo_code: str | None = None,
    idempotency_key: str | None = None,
    requested_start: datetime | None = None,
) -> ProductOrder:
    rules.check_msisdn_preference(msisdn_preference)
    rules.check_promo_code(promo_code)
    rules.check_idempotency_key(idempotency_key)
    if idempotency_key is not None:
        existing = await _by_idempotency_key(session, idempotency_key, customer_id)
        if existing is not None:
            return existing
    price = await _validated_sale(session, customer_id, offering_id)

    now = clock.now()
    order = ProductOrder(
        id=None,  # from its sequence, in the INSERT
        customer_id=customer_id,
        state=rules.ACKNOWLEDGED,
        offering_id=offering_id,
        price_id=price.id,
        price_amount=price.amount,
        price_currency=price.currency,
        msisdn_preference=msisdn_preference,
        promo_code=promo_code,
        idempotency_key=idempotency_key,
        created_at=now,
        updated_at=now,
    )
    promo_rejection = await _apply_promo(session, order, now) if promo_code else None
    # Inserted first (its item and history point at it); one statement, no savepoint.
    if not await insert_unless_exists(session, order, id_sql=id_sql("ORD")):
        # A concurrent request with the same key won the race: answer with its order.
        winner = (
            None
            if idempotency_key is None
            else await _by_idempotency_key(session, idempotency_key, customer_id)
        )
        if winner is None:  # only the key is unique besides the sequence's id
            raise RuntimeError(f"order {order.id} was refused by a unique constraint other than its key")
        return winner

    item = ProductOrderItem(
        id=None, order_id=order.id, action="add", offering_id=offering_id, state=rules.ACKNOWLEDGED
    )
    if not await insert_unless_exists(session, item, id_sql=id_sql("OI")):  # a fresh id: never
        raise RuntimeError(f"the item of order {order.id} was refused by a unique constraint")
    session.add(
        OrderStateHistory(
            order_id=order.id, from_state=None, to_state=rules.ACKNOWLEDGED, at=now, actor=ctx.actor
        )
    )
    record(
        session,
        ctx,
        "order.acknowledged",
        AGGREGATE,
        order.id,
        {
            "customerId": customer_id,
            "offeringId": offering_id,
            "priceId": price.id,
            "priceAmount": str(price.amount),
            "priceCurrency": price.currency,
            "msisdnPreference": msisdn_preference,
            "promoCode": promo_code,
            "promoAmount": str(order.promo_amount) if order.promo_amount is not None else None,
            # Kept for a workflow started later (ops/orders.py sweeper): not a column of the order.
            "requestedStart": requested_start.isoformat() if requested_start else None,
        },
    )
    if promo_rejection is not None:
        from domains.catalog.promotions import reject_on_order

        reject_on_order(session, ctx, order, promo_rejection)
    await session.flush()
    return order


async def _apply_promo(session: AsyncSession, order: ProductOrder, at: datetime) -> str | None:
    """Snapshot the discount of a code valid now (lowest active price, then the discount); the
    reason when it does not apply (the order then goes at full price, never refused for it)."""
    from domains.catalog import promotions

    check = await promotions.check_code(session, order.promo_code, order.customer_id, at)
    if not check.ok:
        return check.reason
    promo = check.promotion
    order.promo_code = promo.code
    order.promo_discount_type, order.promo_discount_value = promo.discount_type, promo.discount_value
    order.promo_periods = promotions.PERPETUAL if promo.periods is None else promo.periods
    order.promo_amount = promotions.discounted(order.price_amount, promo.discount_type, promo.discount_value)
    return None


async def unstarted_orders(
    session: AsyncSession, *, before: datetime, limit: int = 500
) -> list[ProductOrder]:
    """Orders still `acknowledged` that were stored before `before`, oldest first."""
    rows = await session.exec(
        select(ProductOrder)
        .where(ProductOrder.state == rules.ACKNOWLEDGED, col(ProductOrder.created_at) < before)
        .order_by(col(ProductOrder.created_at))
        .limit(limit)
    )
    return list(rows)


async def requested_start(session: AsyncSession, order_id: str) -> datetime | None:
    """The TMF622 requestedStartDate the order was placed with (from its acknowledged record)."""
    from domains.audit.models import DomainEvent

    event = (
        await session.exec(
            select(DomainEvent).where(
                DomainEvent.aggregate_type == AGGREGATE,
                DomainEvent.aggregate_id == order_id,
                DomainEvent.event_type == "order.acknowledged",
            )
        )
    ).first()
    value = (event.payload or {}).get("requestedStart") if event is not None else None
    return datetime.fromisoformat(value) if value else None


async def cancel_unstarted_order(
    session: AsyncSession, ctx: RequestContext, order_id: str, reason: str
) -> bool:
    """Close an order whose workflow never took it up: acknowledged → cancelled (the reference's
    only way out of acknowledged besides starting), with the reason. False when it moved on."""
    order = await get_order(session, order_id, for_update=True)
    if order.state != rules.ACKNOWLEDGED:
        return False
    order.failure_reason = reason[:1000]
    await _move(session, ctx, order, "cancel", reason=reason)
    return True


async def _move(
    session: AsyncSession,
    ctx: RequestContext,
    order: ProductOrder,
    trigger: str,
    *,
    reason: str | None = None,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Apply one lifecycle trigger; False when the order already sits in the target state."""
    if order.state == rules.TARGET[trigger]:
        return False
    target = rules.order_lifecycle.next(trigger, order.state, code=rules.TRANSITION_CODE)
    now = clock.now()
    session.add(
        OrderStateHistory(
            order_id=order.id, from_state=order.state, to_state=target, at=now, actor=ctx.actor, reason=reason
        )
    )
    record(
        session,
        ctx,
        f"order.{target}",
        AGGREGATE,
        order.id,
        {"from": order.state, "reason": reason, **(payload or {})},
    )
    order.state = target
    order.updated_at = now
    # The items follow the order: one UPDATE, no read (items loaded in this session are refreshed).
    values: dict[str, Any] = {"state": target}
    if order.subscription_id is not None:
        values["subscription_id"] = order.subscription_id
    await session.execute(
        update(ProductOrderItem)
        .where(col(ProductOrderItem.order_id) == order.id)
        .values(**values)
        .execution_options(synchronize_session="fetch")
    )
    session.add(order)
    return True


async def start_order(session: AsyncSession, ctx: RequestContext, order_id: str) -> ProductOrder:
    order = await get_order(session, order_id, for_update=True)
    await _move(session, ctx, order, "start")
    return order


async def mark_som_started(
    session: AsyncSession, ctx: RequestContext, order_id: str, service_order_id: str
) -> ProductOrder:
    """From here on the network is being touched, so the order can no longer be cancelled."""
    with session.no_autoflush:  # the caller's pending rows (the service order's) go in with ours
        order = await get_order(session, order_id, for_update=True)
    if order.som_started_at is not None:
        return order
    if order.state != rules.IN_PROGRESS:
        raise PolicyViolation(
            rules.TRANSITION_CODE,
            f"Service ordering starts only for an order in progress; {order_id} is {order.state}.",
            order_id=order_id,
            current=order.state,
        )
    order.service_order_id = service_order_id
    order.som_started_at = order.updated_at = clock.now()
    session.add(order)
    record(session, ctx, "order.som_started", AGGREGATE, order.id, {"serviceOrderId": service_order_id})
    return order


async def complete_order(
    session: AsyncSession, ctx: RequestContext, order_id: str, subscription_id: str
) -> ProductOrder:
    order = await get_order(session, order_id, for_update=True)
    if order.state == rules.COMPLETED:
        return order
    rules.order_lifecycle.next("complete", order.state, code=rules.TRANSITION_CODE)
    order.subscription_id = subscription_id
    order.completed_at = clock.now()
    await _move(session, ctx, order, "complete", payload={"subscriptionId": subscription_id})
    return order


async def fail_order(session: AsyncSession, ctx: RequestContext, order_id: str, reason: str) -> ProductOrder:
    order = await get_order(session, order_id, for_update=True)
    if order.state == rules.FAILED:
        return order
    rules.order_lifecycle.next("fail", order.state, code=rules.TRANSITION_CODE)
    order.failure_reason = reason[:1000]
    await _move(session, ctx, order, "fail", reason=reason)
    return order


async def cancel_order(
    session: AsyncSession, ctx: RequestContext, order_id: str, reason: str
) -> ProductOrder:
    order = await get_order(session, order_id, for_update=True)
    if order.state == rules.CANCELLED:
        return order
    rules.order_lifecycle.next("cancel", order.state, code=rules.TRANSITION_CODE)
    if order.som_started_at is not None:
        raise PolicyViolation(
            "order.cancel.forbidden_after_som_started",
            f"Order {order_id} is already being provisioned (service order {order.service_order_id}); "
            "it can no longer be cancelled.",
            order_id=order_id,
            service_order_id=order.service_order_id,
        )
    order.failure_reason = reason[:1000]
    await _move(session, ctx, order, "cancel", reason=reason)
    return order


def is_terminal(order: ProductOrder) -> bool:
    return order.state in rules.TERMINAL

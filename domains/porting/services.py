"""Port request services: open a request, move it through its states, read it.

Every write takes the row's lock and is idempotent (an activity may run twice): asking for the
state a request is already in changes nothing. Each state change writes the audit event the
notifications read (`port.<state>`, aggregate `port_request`, payload customer_id, msisdn,
direction and, when there is one, reason).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import Conflict, NotFound, PolicyViolation
from core.ids import random_id
from domains.audit.services import record
from domains.porting import rules
from domains.porting.models import PortRequest

AGGREGATE = "port_request"
# The carrier a port-out leaves and a port-in joins.
OUR_CARRIER = "bss"
TIMESTAMP_OF = {
    rules.VALIDATED: "validated_at",
    rules.APPROVED: "approved_at",
    rules.COMPLETED: "completed_at",
}


async def get_port_request(session: AsyncSession, port_id: str, *, for_update: bool = False) -> PortRequest:
    query = select(PortRequest).where(PortRequest.id == port_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = (await session.exec(query)).first()
    if row is None:
        raise NotFound("port.request.not_found", f"No port request {port_id}.", port_id=port_id)
    return row


async def live_request_for(session: AsyncSession, msisdn: str) -> PortRequest | None:
    query = select(PortRequest).where(
        PortRequest.msisdn == msisdn, col(PortRequest.state).in_(rules.LIVE_STATES)
    )
    return (await session.exec(query)).first()


async def list_port_requests(
    session: AsyncSession,
    *,
    state: str | None = None,
    direction: str | None = None,
    customer_id: str | None = None,
    msisdn: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[PortRequest]]:
    query = select(PortRequest)
    if state is not None:
        query = query.where(PortRequest.state == state)
    if direction is not None:
        query = query.where(PortRequest.direction == direction)
    if customer_id is not None:
        query = query.where(PortRequest.customer_id == customer_id)
    if msisdn is not None:
        query = query.where(PortRequest.msisdn == msisdn)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(
        query.order_by(col(PortRequest.created_at).desc(), col(PortRequest.id)).offset(offset).limit(limit)
    )
    return int(total), list(rows)


async def create_port_request(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    direction: str,
    msisdn: str,
    requested_port_date: date | datetime,
    donor_carrier: str | None = None,
    recipient_carrier: str | None = None,
    customer_id: str | None = None,
    offering_id: str | None = None,
    subscription_id: str | None = None,
    idempotency_key: str | None = None,
) -> PortRequest:
    """Check and store a request (`acknowledged`); its workflow does the rest."""
    rules.check_direction(direction)
    rules.check_msisdn(msisdn)
    rules.check_target(direction, customer_id, offering_id, subscription_id)
    if idempotency_key is not None:
        existing = (
            await session.exec(select(PortRequest).where(PortRequest.idempotency_key == idempotency_key))
        ).first()
        if existing is not None:
            if (existing.direction, existing.msisdn) != (direction, msisdn):
                raise PolicyViolation(
                    "idempotency_key.reused", "This Idempotency-Key was already used for a different request."
                )
            return existing
    if direction == rules.PORT_IN:
        donor = rules.check_carrier(donor_carrier, "donorCarrier")
        recipient = OUR_CARRIER
    else:
        donor = OUR_CARRIER
        recipient = rules.check_carrier(recipient_carrier or donor_carrier, "recipientCarrier")
    when = rules.port_instant(requested_port_date)
    rules.check_port_date(when, clock.now())

    live = await live_request_for(session, msisdn)
    if live is not None:
        raise _already_open(msisdn, live.id)
    if direction == rules.PORT_IN:
        customer_id, subscription_id = await _port_in_target(
            session, msisdn, customer_id, offering_id, subscription_id
        )
    else:
        customer_id, subscription_id = await _port_out_line(session, msisdn, customer_id, subscription_id)

    now = clock.now()
    row = PortRequest(
        id=random_id("PORT"),
        direction=direction,
        donor_carrier=donor,
        recipient_carrier=recipient,
        msisdn=msisdn,
        requested_port_date=when,
        customer_id=customer_id,
        offering_id=offering_id,
        subscription_id=subscription_id,
        state=rules.ACKNOWLEDGED,
        idempotency_key=idempotency_key,
        created_at=now,
        updated_at=now,
    )
    await session.flush()
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        # A concurrent request won the race: for the same key it is the answer, else the number is taken.
        if idempotency_key is not None:
            winner = (
                await session.exec(select(PortRequest).where(PortRequest.idempotency_key == idempotency_key))
            ).first()
            if winner is not None:
                return winner
        live = await live_request_for(session, msisdn)
        raise _already_open(msisdn, live.id if live else None) from None
    _event(session, ctx, row, rules.ACKNOWLEDGED)
    await session.flush()
    return row


def _already_open(msisdn: str, port_id: str | None) -> Conflict:
    return Conflict(
        "port.request.already_open",
        f"Number {msisdn} already has a port request under way ({port_id}); one at a time.",
        msisdn=msisdn,
        port_id=port_id,
    )


async def _port_in_target(
    session: AsyncSession,
    msisdn: str,
    customer_id: str | None,
    offering_id: str | None,
    subscription_id: str | None,
) -> tuple[str | None, str | None]:
    from domains.catalog.services import get_offering
    from domains.crm.services import get_customer
    from domains.inventory.models import Msisdn
    from domains.subscription.services import get_subscription

    ours = await session.get(Msisdn, msisdn)
    if ours is not None:
        if ours.status == "ported_out":
            raise PolicyViolation(
                "port.in.number_ported_out",
                f"Number {msisdn} was ported out of this network and cannot be sold here again.",
                msisdn=msisdn,
            )
        raise PolicyViolation(
            "port.request.msisdn_ours",
            f"Number {msisdn} is already in our pool ({ours.status}); there is nothing to port in.",
            msisdn=msisdn,
            number_status=ours.status,
        )
    if subscription_id is not None:
        sub = await get_subscription(session, subscription_id)
        if sub.state not in ("active", "blocked"):
            raise PolicyViolation(
                "port.in.line_not_live",
                f"{subscription_id} is {sub.state}; a number can only be ported to a live line.",
                subscription_id=subscription_id,
            )
        if customer_id is not None and customer_id != sub.customer_id:
            raise PolicyViolation(
                "port.in.line_not_customers",
                f"{subscription_id} does not belong to {customer_id}.",
                subscription_id=subscription_id,
            )
        return sub.customer_id, subscription_id
    await get_customer(session, customer_id)
    await get_offering(session, offering_id)
    return customer_id, None


async def _port_out_line(
    session: AsyncSession, msisdn: str, customer_id: str | None, subscription_id: str | None
) -> tuple[str, str]:
    from domains.subscription.models import Subscription

    line = (
        await session.exec(
            select(Subscription).where(Subscription.msisdn == msisdn, Subscription.state != "terminated")
        )
    ).first()
    if line is None or (subscription_id is not None and line.id != subscription_id):
        raise PolicyViolation(
            "port.out.not_our_number",
            f"Number {msisdn} is not on a live line of ours{' ' + subscription_id if subscription_id else ''}; "
            "only our numbers can be ported out.",
            msisdn=msisdn,
        )
    if customer_id is not None and customer_id != line.customer_id:
        raise PolicyViolation(
            "port.out.not_our_number",
            f"Number {msisdn} does not belong to {customer_id}.",
            msisdn=msisdn,
        )
    return line.customer_id, line.id


def _event(
    session: AsyncSession, ctx: RequestContext, row: PortRequest, state: str, reason: str | None = None
) -> None:
    payload: dict[str, Any] = {
        "customer_id": row.customer_id,
        "msisdn": row.msisdn,
        "direction": row.direction,
        "port_request_id": row.id,
    }
    if reason is not None:
        payload["reason"] = reason
    if row.subscription_id:
        payload["subscription_id"] = row.subscription_id
    if row.order_id:
        payload["order_id"] = row.order_id
    record(session, ctx, f"port.{state}", AGGREGATE, row.id, payload)


async def move(
    session: AsyncSession,
    ctx: RequestContext,
    port_id: str,
    trigger: str,
    *,
    reason: str | None = None,
    reason_code: str | None = None,
    **fields: Any,
) -> PortRequest:
    """Apply `trigger`; a request already in the target state is returned unchanged (a retry)."""
    row = await get_port_request(session, port_id, for_update=True)
    target = rules.PORT_REQUEST.table.get((trigger, row.state))
    if target is None and row.state == _target_of(trigger):
        return row
    target = rules.PORT_REQUEST.next(trigger, row.state, code="port.request.transition_invalid")
    if trigger in ("reject", "fail"):
        reason = rules.check_reason(reason)
    now = clock.now()
    row.state = target
    row.updated_at = now
    if target in TIMESTAMP_OF:
        setattr(row, TIMESTAMP_OF[target], now)
    if target in rules.FINAL_STATES:
        row.ended_at = now
    if reason is not None:
        row.reason = reason[: rules.MAX_REASON]
    if reason_code is not None:
        row.reason_code = reason_code[:80]
    if target == rules.APPROVED:
        row.approved_by = ctx.actor[:100]
    for name, value in fields.items():
        if value is not None:
            setattr(row, name, value)
    session.add(row)
    _event(session, ctx, row, target, row.reason if trigger in ("reject", "fail") else None)
    await session.flush()
    return row


def _target_of(trigger: str) -> str | None:
    targets = {t for (trig, _), t in rules.PORT_REQUEST.table.items() if trig == trigger}
    return targets.pop() if len(targets) == 1 else None


async def note_result(
    session: AsyncSession,
    port_id: str,
    *,
    order_id: str | None = None,
    subscription_id: str | None = None,
    previous_msisdn: str | None = None,
) -> PortRequest:
    """Remember what the port made (the new line's order, the line, the number it replaced)."""
    row = await get_port_request(session, port_id, for_update=True)
    if order_id is not None:
        row.order_id = order_id
    if subscription_id is not None:
        row.subscription_id = subscription_id
    if previous_msisdn is not None:
        row.previous_msisdn = previous_msisdn
    row.updated_at = clock.now()
    session.add(row)
    await session.flush()
    return row

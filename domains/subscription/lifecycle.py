"""The line's life after activation: renewals, plan changes, price migrations, termination, and
the status the workflow's query shows. Top-ups and the day pass are in `topups`, re-exported here.

The SubscriptionWorkflow calls these through activities, so every one of them is idempotent: money
moves only through `payment.charges.charge` with the caller's idempotency key, and a repeated call
finds its first answer (the renewal row, the VAS purchase row) instead of acting twice. Each one
locks the subscription row first, so a renewal, a top-up and a termination of the same line never
interleave. The workflow's renewals (`renew_in_steps`) do not hold that lock while the gateway
answers: they check under the lock, charge by the period's key, then lock again, check again and
apply (a line that ended or was renewed by hand meanwhile gets its money back).

Choices worth knowing:
- A renewal charges the line's snapshot price. A scheduled plan change pivots at the next renewal
  (scheduled or `renew_now`) at the lowest price the target offers at that moment (the same rule as
  a new sale); the price quoted when it was scheduled (`pending_price_id`) is only the fallback when
  the target has no price left then. An operator's price migration applies at the first renewal on
  or after its effective date; a plan change wins over a migration of the old plan.
- A declined renewal is an answer, not an error: the declined payment and the blocked line are
  committed with the caller's transaction and the outcome says `declined`. A renewal our side
  cannot charge (gateway or database down) is an error the workflow retries; after its grace
  period the line is held `renewal_pending` (`hold_for_renewal`) until the charge goes through.
- `renew` does not compare with the business clock: the workflow's timer says when a period is
  due (workflow time and the business clock differ under time-skipping tests).
- Termination keeps the last period's balances as they stood, for the record; the state gates use.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import NotFound, PolicyViolation
from domains.audit.services import AUDIT_COLUMNS, audit_select, record
from domains.payment.charges import (
    PAYMENT_CTE,
    PAYMENT_EVENT,
    Authorized,
    Payment,
    authorize,
    charge,
    key_lock,
    lock_name,
    payment_params,
    record_payment,
    recorded,
)
from domains.payment.gateway import PaymentGateway
from domains.subscription import migrations, rules
from domains.subscription.history import EXHAUSTED, RENEWAL_DECLINED, RENEWAL_PENDING, move
from domains.subscription.migrations import schedule_price_migration
from domains.subscription.models import BundleBalance, Subscription, SubscriptionRenewal
from domains.subscription.services import AGGREGATE, get_subscription, subscription_view
from domains.subscription.topups import (
    VasOutcome,
    expire_day_pass,
    lock_balances,
    purchase_vas,
    running_passes,
)

__all__ = [
    "EXHAUSTED",
    "RENEWAL_DECLINED",
    "RENEWAL_PENDING",
    "RenewalOutcome",
    "VasOutcome",
    "cancel_plan_change",
    "expire_day_pass",
    "purchase_vas",
    "renew",
    "renew_in_steps",
    "renew_now",
    "hold_for_renewal",
    "schedule_plan_change",
    "schedule_price_migration",
    "status_view",
    "terminate",
]

LIVE = (rules.ACTIVE, rules.BLOCKED)


@dataclass(frozen=True)
class RenewalOutcome:
    status: str  # renewed | declined | skipped
    subscription_id: str
    new_period_end: datetime | None = None
    amount: Decimal | None = None
    offering_id: str | None = None
    payment_id: str | None = None
    reason: str | None = None
    # The line as the renewal left it (`line_mirror`), when the caller asked for it.
    line: dict[str, Any] | None = None


# --------------------------------------------------------------------------- renewal


async def renew(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    subscription_id: str,
    period_start: datetime,
    idempotency_key: str,
    gateway: PaymentGateway,
) -> RenewalOutcome:
    """Renew the period that begins at `period_start` (the line's current period end when the
    workflow's timer fired). Asked again for a period already renewed, it answers as before.

    In one transaction, the line locked throughout; the workflow's activity uses
    `renew_in_steps`, which does not hold the line across the gateway call."""
    return await _renew_in_one(session, ctx, subscription_id, idempotency_key, gateway, period_start)


async def renew_now(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    subscription_id: str,
    idempotency_key: str,
    gateway: PaymentGateway,
) -> RenewalOutcome:
    """The manual escape hatch: charge once and start a new period from now, reactivating the line.

    Everything is checked before the card is touched (the reference charged, then failed).
    """
    return await _renew_in_one(session, ctx, subscription_id, idempotency_key, gateway, None)


async def _renew_in_one(
    session: AsyncSession,
    ctx: RequestContext,
    subscription_id: str,
    idempotency_key: str,
    gateway: PaymentGateway,
    period_start: datetime | None,
) -> RenewalOutcome:
    """Check, charge and apply in the caller's one transaction (the line locked throughout)."""
    step = await prepare_renewal(
        session,
        ctx,
        subscription_id=subscription_id,
        period_start=period_start,
        idempotency_key=idempotency_key,
    )
    if isinstance(step, RenewalOutcome):
        return step
    payment = None if step.free else await _charge_plan(session, ctx, step, gateway)
    approved = payment is not None and payment.status == "approved"
    return await apply_renewal(session, ctx, step, payment and payment.id, gateway, approved=approved)


async def renew_in_steps(
    db: Any,
    ctx: RequestContext,
    *,
    subscription_id: str,
    idempotency_key: str,
    gateway: PaymentGateway,
    period_start: datetime | None = None,
    promo: bool = False,
    read_line: bool = False,
) -> RenewalOutcome:
    """`renew` (a `period_start`) or `renew_now` (none) in three steps of one transaction, so the
    line's row is never locked while the gateway answers: (1) read and check (one statement, no
    lock: step 3 checks again), (2) charge with the period's idempotency key (the key, not the line,
    is held across the call), (3) lock the line, check it again and apply. Nothing of them commits
    unless all do; a retry repeats all three and the key makes the charge happen once (the gateway
    answers a key it has seen from its own record), and step 3 finds a renewal already applied by
    its key. A line with no card to charge is declined in step 1, asked again under the line's lock.
    In statements: step 1 also takes the charge's key lock and reads the key's payment and the card;
    an approved new payment and a renewal that changes only the period are written in one statement
    that locks the line and applies only if it is as step 1 found it (`_apply_paid`): with the
    gateway's own, three statements in all.

    `read_line`: the outcome carries the line as the last of those steps left it (`line_mirror`,
    read inside it), so the workflow needs no read of its own afterwards."""
    from core.db import transaction

    def prepare(s: AsyncSession, lock: bool) -> Any:
        return prepare_renewal(
            s,
            ctx,
            subscription_id=subscription_id,
            period_start=period_start,
            idempotency_key=idempotency_key,
            promo=promo,
            lock=lock,
            lock_key=not lock,
        )

    async with transaction(db) as s:
        # The first read takes the key's lock too (the charge's, charges.key_lock) and reads the
        # key's payment and the card to charge: two round trips fewer than the charge doing both.
        step = await prepare(s, lock=False)
        if step is _WRITES:  # the declined path writes: again, under the lock
            step = await prepare(s, lock=True)
        if isinstance(step, RenewalOutcome):
            return await _with_line(s, step, read_line)
        if step.free:  # a promotion may make a period free: nothing to charge
            return await _with_line(s, await apply_renewal(s, ctx, step, None, gateway), read_line)
        facts = s.info[_FACTS]  # as step 1 read them, with the key's lock
        paid = await authorize(
            s,
            ctx,
            **_charge_of(step),
            gateway=gateway,
            key_locked=True,
            known=(facts.key_payment, facts.card),
        )
        return await _with_line(s, await _apply_paid(s, ctx, step, paid, gateway), read_line)


async def _apply_paid(
    session: AsyncSession,
    ctx: RequestContext,
    plan: RenewalPlan,
    paid: Payment | Authorized,
    gateway: PaymentGateway,
) -> RenewalOutcome:
    """Step 3 after the gateway's answer (`paid`, charges.authorize): a new approved payment and
    a renewal that changes only the period are written in one statement (`_renew_if_unchanged`);
    otherwise the payment is recorded and applied by `apply_renewal`."""
    if isinstance(paid, Payment):  # the key's payment, recorded before
        return await apply_renewal(session, ctx, plan, paid.id, gateway, approved=paid.status == "approved")
    if paid.result.approved and plan.promo_claim_id is None and not plan.migrates:
        payment_id, outcome = await _renew_if_unchanged(session, ctx, plan, paid=paid)
        if payment_id is not None:
            recorded(session, paid, payment_id)
            return outcome or await apply_renewal(session, ctx, plan, payment_id, gateway)
    payment = await record_payment(session, paid)
    return await apply_renewal(session, ctx, plan, payment.id, gateway, approved=payment.status == "approved")


async def _with_line(session: AsyncSession, outcome: RenewalOutcome, read_line: bool) -> RenewalOutcome:
    """The line as this step left it: from the row the step read (locked, or read-only) and
    changed, without a query when no day pass runs; else read."""
    if not read_line:
        return outcome
    facts = session.info.get(_FACTS)
    if facts is not None and facts.sub.id == outcome.subscription_id and not facts.has_passes:
        return replace(outcome, line=_mirror_of(facts.sub, {}))
    return replace(outcome, line=await line_mirror(session, outcome.subscription_id))


@dataclass(frozen=True)
class RenewalPlan:
    """What step 1 of a renewal decided: who pays what for which period."""

    subscription_id: str
    customer_id: str
    kind: str  # scheduled | manual
    start: datetime
    due_at: datetime
    idempotency_key: str
    offering_id: str
    price_id: str
    amount: Decimal
    currency: str
    migrates: bool
    # The line's promotion (domains/catalog/promotions.py): what is charged instead of `amount`,
    # and the claim whose period this uses.
    charge_amount: Decimal | None = None
    promo_claim_id: int | None = None

    @property
    def free(self) -> bool:
        return self.charge_amount is not None and self.charge_amount <= 0


# prepare_renewal(lock=False) found that it has to write (a decline): ask again with the lock.
_WRITES: Any = object()


async def prepare_renewal(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    subscription_id: str,
    idempotency_key: str,
    period_start: datetime | None = None,
    promo: bool = False,
    lock: bool = True,
    lock_key: bool = False,
) -> RenewalPlan | RenewalOutcome:
    """Step 1, under the line's lock: an answer already given, a skip, a decline for want of a
    card (scheduled), a refusal (manual), or the plan to charge. What it needs of the line is read
    in one statement (`_line_facts`). `lock=False` (renew_in_steps): read only; where it would
    decline it answers `_WRITES` instead. `lock_key`: the read takes the charge's lock on the key
    too (charges.key_lock), held to the end of the transaction, and reads the key's payment and
    the customer's default card (the facts' `key_payment` and `card`)."""
    manual = period_start is None
    facts = await _line_facts(
        session, subscription_id, idempotency_key, lock=lock, promo=promo, lock_key=lock_key
    )
    sub, previous = facts.sub, facts.previous
    if previous is not None:
        return _renewal_outcome(previous)
    if sub.state not in LIVE:
        if manual:
            raise PolicyViolation(
                "subscription.renew.only_if_active_or_blocked",
                f"{sub.id} is {sub.state}; only an active or blocked line can be renewed.",
                subscription_id=sub.id,
                state=sub.state,
            )
        return RenewalOutcome("skipped", sub.id, offering_id=sub.offering_id, reason=f"line_{sub.state}")
    if not manual and sub.current_period_end != period_start:
        # Renewed already by a scheduled run (same answer) or by hand (`renew_now`: skipped).
        paid = await _paid_renewal(session, sub.id, period_start)
        if paid is not None:
            return _renewal_outcome(paid)
        return RenewalOutcome(
            "skipped",
            sub.id,
            new_period_end=sub.current_period_end,
            offering_id=sub.offering_id,
            reason="not_the_current_period",
        )
    if not facts.has_card:
        if manual:
            raise PolicyViolation(
                "subscription.renew.no_payment_method",
                f"Customer {sub.customer_id} has no card on file to renew {sub.id}; add one first.",
                subscription_id=sub.id,
            )
        if not lock:
            return _WRITES
        terms = await _renewal_terms(session, sub, period_start, facts.migration)
        return await _decline(
            session, ctx, sub, terms, "scheduled", idempotency_key, None, "no_payment_method"
        )
    start = clock.now() if manual else period_start
    terms = await _renewal_terms(session, sub, start, facts.migration)
    charge_amount, claim_id = None, None
    claim = facts.claim
    if promo and claim is not None and terms.offering_id == sub.offering_id and not terms.migrates:
        from domains.catalog import promotions

        claim_id = claim.id
        charge_amount = promotions.discounted(terms.amount, claim.discount_type, claim.discount_value)
    return RenewalPlan(
        sub.id,
        sub.customer_id,
        "manual" if manual else "scheduled",
        start,
        sub.current_period_end,
        idempotency_key,
        terms.offering_id,
        terms.price_id,
        terms.amount,
        terms.currency,
        terms.migrates,
        charge_amount,
        claim_id,
    )


async def _charge_plan(
    session: AsyncSession, ctx: RequestContext, plan: RenewalPlan, gateway: PaymentGateway
):
    """Step 2: the charge, once per key (a gateway error propagates: the caller retries)."""
    return await charge(session, ctx, **_charge_of(plan), gateway=gateway)


def _charge_of(plan: RenewalPlan) -> dict[str, Any]:
    """What the renewal `plan` charges (the arguments of charges.charge and authorize)."""
    return {
        "customer_id": plan.customer_id,
        "amount": plan.amount if plan.charge_amount is None else plan.charge_amount,
        "currency": plan.currency,
        "purpose": "renewal",
        "idempotency_key": plan.idempotency_key,
    }


async def apply_renewal(
    session: AsyncSession,
    ctx: RequestContext,
    plan: RenewalPlan,
    payment_id: str | None,
    gateway: PaymentGateway,
    *,
    approved: bool = False,
) -> RenewalOutcome:
    """Step 3, under the line's lock again: apply the charge's answer to the line as it is now.
    A line that ended, or whose period moved on (renewed by hand meanwhile), while it was being
    charged gets its money back instead of a period. `approved`: the payment `payment_id` was
    approved; a renewal that changes only the period is then first tried in one statement
    (`_renew_if_unchanged`), which applies it only if the line is still as the plan found it."""
    from domains.payment.charges import refund

    if approved and payment_id is not None and plan.promo_claim_id is None and not plan.migrates:
        _, outcome = await _renew_if_unchanged(session, ctx, plan, payment_id=payment_id)
        if outcome is not None:
            return outcome
    facts = await _line_facts(
        session,
        plan.subscription_id,
        plan.idempotency_key,
        payment_id=payment_id,
        allowances_of=plan.offering_id,
    )
    sub, previous = facts.sub, facts.previous
    if previous is not None:
        return _renewal_outcome(previous)
    migration = facts.migration
    if migration is not None:  # resolved below when it applies or is superseded: locked
        migration = await migrations.pending_migration(session, sub.id, for_update=True)
    terms = _Terms(plan.offering_id, plan.price_id, plan.amount, plan.currency, migration, plan.migrates)
    if payment_id is None:  # a free period (promotion): nothing was charged
        if sub.state not in LIVE or sub.current_period_end != plan.due_at:
            return RenewalOutcome("skipped", sub.id, offering_id=sub.offering_id, reason="line_changed")
        return await _renew_with(
            session,
            ctx,
            sub,
            terms,
            plan.kind,
            plan.start,
            plan.idempotency_key,
            None,
            plan,
            facts,
        )
    payment = facts.payment
    if payment is None:
        raise NotFound("payment.not_found", f"No payment {payment_id}.", payment_id=payment_id)
    moved = sub.state not in LIVE or sub.current_period_end != plan.due_at
    if payment.status != "approved":
        if moved:
            return RenewalOutcome("skipped", sub.id, offering_id=sub.offering_id, reason="line_changed")
        return await _decline(
            session, ctx, sub, terms, plan.kind, plan.idempotency_key, payment.id, payment.decline_code
        )
    if moved:
        await refund(session, ctx, idempotency_key=plan.idempotency_key, gateway=gateway)
        record(
            session,
            ctx,
            "subscription.renewal_refunded",
            AGGREGATE,
            sub.id,
            {"paymentId": payment.id, "reason": "line changed while it was charged", "state": sub.state},
        )
        return RenewalOutcome(
            "skipped", sub.id, offering_id=sub.offering_id, payment_id=payment.id, reason="line_changed"
        )
    return await _renew_with(
        session,
        ctx,
        sub,
        terms,
        plan.kind,
        plan.start,
        plan.idempotency_key,
        payment.id,
        plan,
        facts,
    )


async def hold_for_renewal(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    subscription_id: str,
    reason: str,
    note: str | None = None,
    period_start: datetime | None = None,
) -> Subscription:
    """Block a live line because its renewal is unpaid: `renewal_pending` (our side cannot charge
    yet; the grace period is over) or `renewal_declined` (an operator gave up charging it). A paid
    renewal lifts either. Asking again changes nothing."""
    if reason not in (RENEWAL_PENDING, RENEWAL_DECLINED):
        raise PolicyViolation("subscription.hold.reason_invalid", f"No hold reason {reason}.", reason=reason)
    sub = await get_subscription(session, subscription_id, for_update=True)
    if sub.state not in LIVE or (sub.state == rules.BLOCKED and sub.state_reason == reason):
        return sub
    if period_start is not None and sub.current_period_end != period_start:
        return sub  # that period was paid meanwhile (renew_now)
    if sub.state == rules.ACTIVE:
        move(session, ctx, sub, "renew_fail", reason, note=note or reason)
    else:
        move(session, ctx, sub, None, reason, note=note or reason)
    record(session, ctx, "subscription.renewal_held", AGGREGATE, sub.id, {"reason": reason, "note": note})
    await session.flush()
    return sub


@dataclass(frozen=True)
class _Terms:
    """What the next period costs and gives."""

    offering_id: str
    price_id: str
    amount: Decimal
    currency: str
    migration: migrations.PriceMigration | None  # pending for this line, if any
    migrates: bool  # the migration's price applies now


async def _renewal_terms(
    session: AsyncSession, sub: Subscription, at: datetime, migration: migrations.PriceMigration | None
) -> _Terms:
    """`migration`: the line's pending price migration, if any (read with the line)."""
    from domains.catalog.rules import lowest_active_price
    from domains.catalog.services import get_price, prices_of

    if sub.pending_offering_id is not None:
        price = lowest_active_price(await prices_of(session, [sub.pending_offering_id]), at)
        if price is None and sub.pending_price_id is not None:
            price = await get_price(session, sub.pending_price_id)
        if price is not None:
            return _Terms(sub.pending_offering_id, price.id, price.amount, price.currency, migration, False)
    if migration is not None and migration.offering_id == sub.offering_id and migration.effective_at <= at:
        return _Terms(
            sub.offering_id, migration.new_price_id, migration.new_amount, migration.currency, migration, True
        )
    return _Terms(sub.offering_id, sub.price_id, sub.price_amount, sub.price_currency, migration, False)


async def _renew_with(
    session: AsyncSession,
    ctx: RequestContext,
    sub: Subscription,
    terms: _Terms,
    kind: str,
    start: datetime,
    key: str,
    payment_id: str | None,
    plan: RenewalPlan | None = None,
    facts: _LineFacts | None = None,
) -> RenewalOutcome:
    due_at, end = sub.current_period_end, start + rules.PERIOD
    charged = terms.amount if plan is None or plan.charge_amount is None else plan.charge_amount
    previous_offering, previous_price = sub.offering_id, sub.price_id
    if terms.migration is not None and (terms.migrates or terms.offering_id != previous_offering):
        migrations.resolve(terms.migration, migrations.APPLIED if terms.migrates else migrations.SUPERSEDED)
        session.add(terms.migration)
    sub.offering_id, sub.price_id = terms.offering_id, terms.price_id
    sub.price_amount, sub.price_currency = terms.amount, terms.currency
    sub.pending_offering_id = sub.pending_price_id = None
    sub.current_period_start, sub.current_period_end = start, end
    await _reset_balances(session, sub, start, end, facts)
    move(session, ctx, sub, "renew", None, note=f"{kind} renewal")
    renewal = SubscriptionRenewal(
        subscription_id=sub.id,
        kind=kind,
        status="renewed",
        idempotency_key=key,
        due_at=due_at,
        attempted_at=clock.now(),
        offering_id=terms.offering_id,
        price_id=terms.price_id,
        amount=charged,
        currency=terms.currency,
        payment_id=payment_id,
        period_start=start,
        period_end=end,
    )
    session.add(renewal)
    payload: dict[str, Any] = {
        "kind": kind,
        "paymentId": payment_id,
        "amount": str(charged),
        "priceId": terms.price_id,
        "offeringId": terms.offering_id,
        "periodStart": start.isoformat(),
        "periodEnd": end.isoformat(),
    }
    record(session, ctx, "subscription.renewed", AGGREGATE, sub.id, payload)
    await _promotion_after_renewal(session, ctx, sub.id, terms, previous_offering, plan)
    if terms.offering_id != previous_offering:
        change = {"from": previous_offering, "to": terms.offering_id, "priceId": terms.price_id}
        record(session, ctx, "subscription.plan_changed", AGGREGATE, sub.id, change)
    elif terms.migrates:
        change = {"fromPriceId": previous_price, "toPriceId": terms.price_id, "amount": str(terms.amount)}
        record(session, ctx, "subscription.price_migrated", AGGREGATE, sub.id, change)
    await session.flush()
    return _renewal_outcome(renewal)


async def _renew_if_unchanged(
    session: AsyncSession,
    ctx: RequestContext,
    plan: RenewalPlan,
    *,
    payment_id: str | None = None,
    paid: Authorized | None = None,
) -> tuple[str | None, RenewalOutcome | None]:
    """`_renew_with` for a paid renewal that changes only the period, in one statement and with no
    read before it: it locks the line and applies only if the line is still live, on the plan's
    offering and due at the plan's period end, with no renewal under the key, no pending price
    migration and no day pass running; then the line, its buckets, its history row, the renewal
    row and the audit event are written together. The payment is `payment_id`, or `paid` (an
    approved answer not recorded yet), which the statement inserts first with its audit event
    (charges.PAYMENT_CTE; the renewal applies only if it did). Answers (the payment's id, None if
    `paid` could not be inserted: its key has a row; the outcome, None when it did not apply: the
    caller reads the line under its lock and decides). The line's object in the session (the one
    step 1 read) takes the written values as its own."""
    from sqlalchemy.orm.attributes import set_committed_value

    from domains.audit.services import audit_fields

    now = clock.now()
    start, end = plan.start, plan.start + rules.PERIOD
    charged = plan.amount if plan.charge_amount is None else plan.charge_amount
    state = rules.subscription_lifecycle.next("renew", rules.ACTIVE)
    payload: dict[str, Any] = {
        "kind": plan.kind,
        "paymentId": payment_id,
        "amount": str(charged),
        "priceId": plan.price_id,
        "offeringId": plan.offering_id,
        "periodStart": start.isoformat(),
        "periodEnd": end.isoformat(),
    }
    audit = audit_fields(ctx, "subscription.renewed", AGGREGATE, plan.subscription_id, payload)
    params = payment_params(paid) if paid is not None else {}
    inserted, applied = (
        await session.execute(
            _RENEW_IF_UNCHANGED if paid is None else _PAY_AND_RENEW,
            params
            | {
                "sub_id": plan.subscription_id,
                "live": list(LIVE),
                "start": start,
                "end": end,
                "now": now,
                "offering_id": plan.offering_id,
                "price_id": plan.price_id,
                "price_amount": plan.amount,
                "currency": plan.currency,
                "state": state,
                "note": f"{plan.kind} renewal"[:200],
                "kind": plan.kind,
                "key": plan.idempotency_key,
                "due_at": plan.due_at,
                "charged": charged,
                "payment_id": payment_id,
                "pending": migrations.PENDING,
                "event_id": uuid.uuid4(),
                **{k: v for k, v in audit.items() if k != "aggregate_id"},
            },
        )
    ).one()
    payment_id = payment_id or inserted
    if not applied:
        return payment_id, None
    facts = session.info.get(_FACTS)
    if facts is not None and facts.sub.id == plan.subscription_id:
        for attr, value in (
            ("offering_id", plan.offering_id),
            ("price_id", plan.price_id),
            ("price_amount", plan.amount),
            ("price_currency", plan.currency),
            ("pending_offering_id", None),
            ("pending_price_id", None),
            ("current_period_start", start),
            ("current_period_end", end),
            ("state", state),
            ("state_reason", None),
            ("updated_at", now),
        ):
            set_committed_value(facts.sub, attr, value)
        session.info[_FACTS] = replace(facts, has_passes=False)
    return payment_id, RenewalOutcome(
        status="renewed",
        subscription_id=plan.subscription_id,
        new_period_end=end,
        amount=charged,
        offering_id=plan.offering_id,
        payment_id=payment_id,
    )


async def _promotion_after_renewal(
    session: AsyncSession,
    ctx: RequestContext,
    subscription_id: str,
    terms: _Terms,
    previous_offering: str,
    plan: RenewalPlan | None,
) -> None:
    """A discounted renewal uses one of the promotion's periods; a plan change or a price
    migration ends the promotion."""
    from domains.catalog import promotions

    if terms.offering_id != previous_offering or terms.migrates:
        why = "plan_change" if terms.offering_id != previous_offering else "price_migration"
        await promotions.end_line_discount(session, ctx, subscription_id, why)
    elif plan is not None and plan.promo_claim_id is not None:
        await promotions.use_period(session, ctx, plan.promo_claim_id, subscription_id)


async def _decline(
    session: AsyncSession,
    ctx: RequestContext,
    sub: Subscription,
    terms: _Terms,
    kind: str,
    key: str,
    payment_id: str | None,
    why: str | None,
) -> RenewalOutcome:
    """The period does not advance and a pending change stays pending; the line waits blocked."""
    renewal = SubscriptionRenewal(
        subscription_id=sub.id,
        kind=kind,
        status="declined",
        idempotency_key=key,
        due_at=sub.current_period_end,
        attempted_at=clock.now(),
        offering_id=terms.offering_id,
        price_id=terms.price_id,
        amount=terms.amount,
        currency=terms.currency,
        payment_id=payment_id,
        reason=(why or "card_declined")[:200],
    )
    session.add(renewal)
    if sub.state == rules.ACTIVE:
        move(session, ctx, sub, "renew_fail", RENEWAL_DECLINED, note=renewal.reason)
    elif sub.state_reason != RENEWAL_DECLINED:
        move(session, ctx, sub, None, RENEWAL_DECLINED, note=renewal.reason)
    record(
        session,
        ctx,
        "subscription.renewal_declined",
        AGGREGATE,
        sub.id,
        {"kind": kind, "paymentId": payment_id, "amount": str(terms.amount), "reason": renewal.reason},
    )
    await session.flush()
    return _renewal_outcome(renewal)


async def _reset_balances(
    session: AsyncSession, sub: Subscription, start: datetime, end: datetime, facts: _LineFacts | None = None
) -> None:
    """Each bucket back to the plan's allowance; buckets the plan no longer has go (VAS ones too).
    A day pass still running keeps its bucket unlimited and will hand back the new allowance.
    `facts` (read under the line's lock) may hold the plan's allowances and say no pass runs."""
    from domains.catalog.services import allowances_of

    if facts is not None and facts.allowances is not None and not facts.has_passes:
        await _reset_balances_at_once(session, sub.id, facts.allowances, start, end)
        return
    if facts is not None and facts.allowances is not None:
        plan = {kind: (quantity, unit) for kind, quantity, unit in facts.allowances}
    else:
        offered = (await allowances_of(session, [sub.offering_id]))[sub.offering_id]
        plan = {a.allowance_type: (a.quantity, a.unit) for a in offered}
    rows = {b.allowance_type: b for b in await lock_balances(session, sub.id)}
    running = [] if facts is not None and not facts.has_passes else await running_passes(session, sub.id)
    passes = {p.allowance_type: p for p in running}
    for kind, (quantity, unit) in plan.items():
        row = rows.pop(kind, None) or BundleBalance(
            subscription_id=sub.id,
            allowance_type=kind,
            total=0,
            unit=unit,
            period_start=start,
            period_end=end,
        )
        row.total, row.consumed, row.unit, row.period_start, row.period_end = quantity, 0, unit, start, end
        if kind in passes:
            passes[kind].restored_remaining = quantity
            session.add(passes[kind])
            row.total = rules.UNLIMITED
        session.add(row)
    for stale in rows.values():
        await session.delete(stale)
    await session.flush()


async def _reset_balances_at_once(
    session: AsyncSession,
    subscription_id: str,
    allowances: list[tuple[str, int, str]],
    start: datetime,
    end: datetime,
) -> None:
    """_reset_balances when no day pass runs and the plan's allowances are known (under the line's
    lock): the buckets updated, the missing ones inserted and the stale ones deleted in one
    statement, with no read of them before."""
    await session.execute(
        _RESET_BALANCES,
        {
            "sub_id": subscription_id,
            "kinds": [kind for kind, _, _ in allowances],
            "totals": [quantity for _, quantity, _ in allowances],
            "units": [unit for _, _, unit in allowances],
            "start": start,
            "end": end,
        },
    )


def _balances_ctes(plan: str, gate: str = "true") -> str:
    """The buckets reset to `plan` (kind, total, unit, seq: the allowances, seq in catalogue order)
    for the period :start to :end, as CTEs: the kept ones updated, the stale ones deleted (only if
    `gate` holds); _BALANCES_INSERT then inserts the missing ones."""
    return f"""plan AS (
    {plan}
), updated AS (
    UPDATE subscription.bundle_balance b
    SET total = p.total, consumed = 0, unit = p.unit,
        period_start = CAST(:start AS timestamptz), period_end = CAST(:end AS timestamptz)
    FROM plan p
    WHERE b.subscription_id = CAST(:sub_id AS text) AND b.allowance_type = p.kind
    RETURNING b.allowance_type
), removed AS (
    DELETE FROM subscription.bundle_balance b
    WHERE b.subscription_id = CAST(:sub_id AS text) AND b.allowance_type NOT IN (SELECT kind FROM plan)
        AND {gate}
)"""


# The plan's allowances given as arrays (:kinds, :totals, :units), and read from the catalogue for
# :offering_id once `ok` (see _RENEW_IF_UNCHANGED) has the line.
_GIVEN = (
    "SELECT * FROM unnest(CAST(:kinds AS text[]), CAST(:totals AS bigint[]), CAST(:units AS text[]))"
    " WITH ORDINALITY AS p(kind, total, unit, seq)"
)
_OFFERED = (
    "SELECT a.allowance_type AS kind, a.quantity AS total, a.unit, a.id AS seq"
    " FROM catalog.bundle_allowance AS a, ok WHERE a.offering_id = CAST(:offering_id AS text)"
)
_BALANCES_INSERT = """INSERT INTO subscription.bundle_balance
    (subscription_id, allowance_type, total, consumed, unit, period_start, period_end)
SELECT CAST(:sub_id AS text), p.kind, p.total, 0, p.unit, CAST(:start AS timestamptz), CAST(:end AS timestamptz)
FROM plan p
WHERE p.kind NOT IN (SELECT allowance_type FROM updated)
ORDER BY p.seq"""
_RESET_BALANCES = text(f"WITH {_balances_ctes(_GIVEN)}\n{_BALANCES_INSERT}")


def _renew_statement(paying: bool) -> Any:
    """_renew_if_unchanged's statement: `ok` is the line, locked, when the renewal applies as
    planned (else no row, and nothing of the renewal is written); its buckets are reset to the
    offering's allowances. `paying`: the payment is inserted first (charges.PAYMENT_CTE), and its
    audit event before the renewal's; the renewal applies only if it was. It answers (the
    inserted payment's id, whether the renewal applied)."""
    payment_id = "(SELECT id FROM payment)" if paying else "CAST(:payment_id AS text)"
    payload = f"jsonb_set(:payload, '{{paymentId}}', to_jsonb({payment_id}))" if paying else ":payload"
    renewed_event = audit_select("ok", "ok.id", payload)
    columns = ", ".join(AUDIT_COLUMNS)
    if paying:  # the payment's event first (its id, from the sequence, lower)
        events = f"""SELECT {columns} FROM (
        SELECT e.*, 1 AS seq FROM ({PAYMENT_EVENT}) AS e ({columns})
        UNION ALL
        SELECT e.*, 2 AS seq FROM ({renewed_event}) AS e ({columns})
    ) AS e ORDER BY seq"""
    else:
        events = renewed_event
    return text(
        f"""
WITH {PAYMENT_CTE + ", " if paying else ""}line AS (
    SELECT s.id, s.state FROM subscription.subscription AS s
    WHERE s.id = CAST(:sub_id AS text) AND s.state = ANY(CAST(:live AS text[]))
        AND s.current_period_end = CAST(:due_at AS timestamptz) AND s.offering_id = CAST(:offering_id AS text)
    FOR UPDATE
), ok AS (
    SELECT line.id, line.state FROM line
    WHERE NOT EXISTS (
        SELECT 1 FROM subscription.subscription_renewal AS r WHERE r.idempotency_key = CAST(:key AS text)
    ) AND NOT EXISTS (
        SELECT 1 FROM subscription.price_migration AS m
        WHERE m.subscription_id = line.id AND m.status = CAST(:pending AS text)
    ) AND NOT EXISTS (
        SELECT 1 FROM subscription.vas_purchase AS v
        WHERE v.subscription_id = line.id AND v.expires_at IS NOT NULL AND v.ended_at IS NULL
    ){" AND EXISTS (SELECT 1 FROM payment)" if paying else ""}
), renewed AS (
    UPDATE subscription.subscription AS s
    SET price_id = CAST(:price_id AS text), price_amount = CAST(:price_amount AS numeric),
        price_currency = CAST(:currency AS text), pending_offering_id = NULL, pending_price_id = NULL,
        current_period_start = CAST(:start AS timestamptz), current_period_end = CAST(:end AS timestamptz),
        state = CAST(:state AS text), state_reason = NULL, updated_at = CAST(:now AS timestamptz)
    FROM ok WHERE s.id = ok.id
), {_balances_ctes(_OFFERED, "EXISTS (SELECT 1 FROM ok)")}, added AS (
{_BALANCES_INSERT}
), history AS (
    INSERT INTO subscription.subscription_state_history (subscription_id, from_state, to_state, at, actor, reason)
    SELECT ok.id, ok.state, CAST(:state AS text), CAST(:now AS timestamptz), CAST(:actor AS text),
        CAST(:note AS text)
    FROM ok
), renewal AS (
    INSERT INTO subscription.subscription_renewal
        (subscription_id, kind, status, idempotency_key, due_at, attempted_at, offering_id, price_id,
         amount, currency, payment_id, period_start, period_end, reason)
    SELECT ok.id, CAST(:kind AS text), 'renewed', CAST(:key AS text), CAST(:due_at AS timestamptz),
        CAST(:now AS timestamptz), CAST(:offering_id AS text), CAST(:price_id AS text),
        CAST(:charged AS numeric), CAST(:currency AS text), {payment_id},
        CAST(:start AS timestamptz), CAST(:end AS timestamptz), NULL
    FROM ok
), audit AS (
    INSERT INTO audit.domain_event ({columns})
    {events}
)
SELECT {"(SELECT id FROM payment)" if paying else "NULL"}, EXISTS (SELECT 1 FROM ok)
"""
    ).bindparams(
        *(bindparam(p, type_=JSONB) for p in (("payload", "pay_payload") if paying else ("payload",)))
    )


_RENEW_IF_UNCHANGED = _renew_statement(paying=False)
_PAY_AND_RENEW = _renew_statement(paying=True)


@dataclass(frozen=True)
class _LineFacts:
    """What a renewal step reads of the line, in one statement."""

    sub: Subscription
    previous: SubscriptionRenewal | None  # the renewal already made with this key
    migration: migrations.PriceMigration | None  # pending (not locked)
    has_card: bool  # the customer has an active default card
    has_passes: bool  # a day pass is running
    claim: Any = None  # the promotion claim discounting the line's renewals (promo only)
    payment: Any = None  # the payment `payment_id` names, if asked
    # (allowance_type, quantity, unit) of the offering asked for, in catalogue order
    allowances: list[tuple[str, int, str]] | None = None
    key_payment: Any = None  # the payment made with the key, read with its lock (lock_key only)
    card: Any = None  # the customer's active default card (lock_key only)


async def _line_facts(
    session: AsyncSession,
    subscription_id: str,
    key: str,
    *,
    lock: bool = True,
    promo: bool = False,
    payment_id: str | None = None,
    allowances_of: str | None = None,
    lock_key: bool = False,
) -> _LineFacts:
    """The line (locked unless `lock=False`), the renewal already made with `key`, its pending
    price migration, whether a card and a running day pass exist, and (`promo`) the claim still
    discounting it, (`payment_id`) that payment, (`allowances_of`) that offering's allowances:
    one statement where there were up to seven. The session remembers the facts (see _with_line)."""
    variant = (lock, promo, payment_id is not None, allowances_of is not None, lock_key)
    stmt = _FACTS_STATEMENTS.get(variant)
    if stmt is None:
        stmt = _FACTS_STATEMENTS[variant] = _facts_statement(*variant)
    params = {"sub_id": subscription_id, "key": key, "payment_id": payment_id, "offering_id": allowances_of}
    if lock_key:
        params["key_lock"] = lock_name(key)
    row = (await session.execute(stmt, params)).first()
    if row is None:
        raise NotFound(
            "subscription.not_found", f"No subscription {subscription_id}.", subscription_id=subscription_id
        )
    sub, previous, migration, card, passes, claim, payment, offered = row[:8]
    key_payment, default_card = (row[8], row[9]) if lock_key else (None, None)
    if previous is not None and previous.subscription_id != sub.id:
        raise PolicyViolation(
            "subscription.renew.idempotency_key_reused",
            f"Idempotency key {key} already renewed {previous.subscription_id}.",
            subscription_id=sub.id,
        )
    allowances = None if allowances_of is None else [tuple(a) for a in offered or []]
    facts = _LineFacts(
        sub,
        previous,
        migration,
        bool(card),
        bool(passes),
        claim,
        payment,
        allowances,
        key_payment,
        default_card,
    )
    session.info[_FACTS] = facts
    return facts


_FACTS = "subscription.line_facts"
# One statement per variant, built once: SQLAlchemy memoises its cache key on the object, so a
# call only binds its parameters (building it per call cost more than its round trip).
_FACTS_STATEMENTS: dict[tuple[bool, bool, bool, bool, bool], Any] = {}


def _facts_statement(lock: bool, promo: bool, payment: bool, allowances: bool, lock_key: bool) -> Any:
    from sqlalchemy import and_, bindparam, exists, func, literal
    from sqlalchemy import select as core_select

    from domains.catalog import promotions
    from domains.catalog.models import BundleAllowance
    from domains.payment.charges import Payment
    from domains.payment.models import PaymentMethod
    from domains.payment.services import is_default_of
    from domains.subscription.models import VasPurchase

    Claim = promotions.PromotionClaim
    has_card = exists().where(
        PaymentMethod.customer_id == Subscription.customer_id,
        PaymentMethod.status == "active",
        col(PaymentMethod.is_default).is_(True),
    )
    has_passes = exists().where(
        VasPurchase.subscription_id == Subscription.id,
        col(VasPurchase.expires_at).is_not(None),
        col(VasPurchase.ended_at).is_(None),
    )
    offered = (
        core_select(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_array(
                        BundleAllowance.allowance_type, BundleAllowance.quantity, BundleAllowance.unit
                    ),
                    BundleAllowance.id,
                )
            )
        )
        .where(BundleAllowance.offering_id == bindparam("offering_id"))
        .scalar_subquery()
    )
    stmt = (
        core_select(
            Subscription,
            SubscriptionRenewal,
            migrations.PriceMigration,
            has_card.label("has_card"),
            has_passes.label("has_passes"),
            Claim if promo else literal(None),
            Payment if payment else literal(None),
            offered if allowances else literal(None),
        )
        .select_from(Subscription)
        .outerjoin(SubscriptionRenewal, SubscriptionRenewal.idempotency_key == bindparam("key"))
        .outerjoin(
            migrations.PriceMigration,
            and_(
                migrations.PriceMigration.subscription_id == Subscription.id,
                migrations.PriceMigration.status == migrations.PENDING,
            ),
        )
        .where(Subscription.id == bindparam("sub_id"))
        .limit(1)
        .execution_options(populate_existing=True)
    )
    if promo:  # as promotions.line_discount
        stmt = stmt.outerjoin(
            Claim,
            and_(
                Claim.subscription_id == Subscription.id,
                Claim.state == promotions.REDEEMED,
                Claim.periods_remaining != 0,
            ),
        )
    if payment:
        stmt = stmt.outerjoin(Payment, Payment.id == bindparam("payment_id"))
    if lock:
        stmt = stmt.with_for_update(of=Subscription)
    if lock_key:  # the key's lock, then (charges.charge's `known`) its payment and the card
        from sqlalchemy.orm import aliased

        keyed, card = aliased(Payment), aliased(PaymentMethod)  # apart from has_card's subquery
        stmt = (
            stmt.add_columns(keyed, card, key_lock(bindparam("key_lock")).label("key_lock"))
            .outerjoin(keyed, keyed.idempotency_key == bindparam("key"))
            .outerjoin(card, and_(*is_default_of(Subscription.customer_id, card)))
        )
    return stmt


async def _paid_renewal(
    session: AsyncSession, subscription_id: str, due_at: datetime
) -> SubscriptionRenewal | None:
    return (
        await session.exec(
            select(SubscriptionRenewal).where(
                SubscriptionRenewal.subscription_id == subscription_id,
                SubscriptionRenewal.due_at == due_at,
                SubscriptionRenewal.status == "renewed",
                SubscriptionRenewal.kind == "scheduled",
            )
        )
    ).first()


def _renewal_outcome(renewal: SubscriptionRenewal) -> RenewalOutcome:
    return RenewalOutcome(
        status=renewal.status,
        subscription_id=renewal.subscription_id,
        new_period_end=renewal.period_end,
        amount=renewal.amount,
        offering_id=renewal.offering_id,
        payment_id=renewal.payment_id,
        reason=renewal.reason,
    )


# --------------------------------------------------------------------------- top-ups


# --------------------------------------------------------------------------- plan change


async def schedule_plan_change(
    session: AsyncSession, ctx: RequestContext, *, subscription_id: str, offering_id: str
) -> Subscription:
    """Move an active line to `offering_id` at its next renewal. Asking again for the same target
    is a no-op; asking for another while one is pending is refused (cancel it first)."""
    from domains.catalog.services import require_sellable

    sub = await get_subscription(session, subscription_id, for_update=True)
    if sub.state != rules.ACTIVE:
        raise PolicyViolation(
            "subscription.plan_change.not_eligible_state",
            f"{sub.id} is {sub.state}; only an active line can change plan.",
            subscription_id=sub.id,
        )
    if offering_id == sub.offering_id:
        raise PolicyViolation(
            "subscription.plan_change.same_offering",
            f"{sub.id} is already on {offering_id}.",
            subscription_id=sub.id,
        )
    if sub.pending_offering_id == offering_id:
        return sub
    if sub.pending_offering_id is not None:
        raise PolicyViolation(
            "subscription.plan_change.already_pending",
            f"{sub.id} already moves to {sub.pending_offering_id} at renewal; cancel that first.",
            subscription_id=sub.id,
            pending_offering_id=sub.pending_offering_id,
        )
    try:
        _, price = await require_sellable(session, offering_id)
    except (NotFound, PolicyViolation) as exc:
        code = (
            "target_no_active_price"
            if exc.code == "catalog.price.no_active_row"
            else "target_not_sellable_now"
        )
        raise PolicyViolation(
            f"subscription.plan_change.{code}", exc.message, subscription_id=sub.id, offering_id=offering_id
        ) from None
    sub.pending_offering_id, sub.pending_price_id = offering_id, price.id
    sub.updated_at = clock.now()
    session.add(sub)
    record(
        session,
        ctx,
        "subscription.plan_change_scheduled",
        AGGREGATE,
        sub.id,
        {
            "from": sub.offering_id,
            "to": offering_id,
            "quotedPriceId": price.id,
            "quotedAmount": str(price.amount),
            "effectiveAt": sub.current_period_end.isoformat(),
        },
    )
    await session.flush()
    return sub


async def cancel_plan_change(
    session: AsyncSession, ctx: RequestContext, *, subscription_id: str
) -> Subscription:
    """Nothing pending is not an error: the line is returned as it is."""
    sub = await get_subscription(session, subscription_id, for_update=True)
    if sub.pending_offering_id is None:
        return sub
    cancelled = sub.pending_offering_id
    sub.pending_offering_id = sub.pending_price_id = None
    sub.updated_at = clock.now()
    session.add(sub)
    record(session, ctx, "subscription.plan_change_cancelled", AGGREGATE, sub.id, {"to": cancelled})
    await session.flush()
    return sub


# --------------------------------------------------------------------------- termination


async def terminate(
    session: AsyncSession, ctx: RequestContext, *, subscription_id: str, reason: str | None = None
) -> Subscription:
    """End the line: the number rests 90 days in quarantine, the eSIM goes back to the pool under a
    new matching id, pending changes and running passes end. Terminating again changes nothing."""
    from domains.inventory.models import Msisdn
    from domains.inventory.services import quarantine_msisdn, recycle_esim

    sub = await get_subscription(session, subscription_id, for_update=True)
    if sub.state == rules.TERMINATED:
        return sub
    now = clock.now()
    move(
        session,
        ctx,
        sub,
        "terminate",
        (reason or "terminated")[:200],
        note=reason,
        code="subscription.terminate.invalid_state",
    )
    sub.terminated_at = now
    sub.pending_offering_id = sub.pending_price_id = None
    migration = await migrations.pending_migration(session, sub.id, for_update=True)
    if migration is not None:
        migrations.resolve(migration, migrations.CANCELLED)
        session.add(migration)
    for running in await running_passes(session, sub.id):
        running.ended_at = now
        session.add(running)
    await session.flush()  # the line is no longer live before its number and eSIM are released

    number = await session.get(Msisdn, sub.msisdn, populate_existing=True)
    # A number ported out before the line ended has left the pool: nothing to quarantine.
    if number is not None and number.status == "assigned" and number.assigned_to_subscription_id == sub.id:
        await quarantine_msisdn(session, ctx, msisdn=sub.msisdn)
    await recycle_esim(session, ctx, iccid=sub.iccid, subscription_id=sub.id)
    record(
        session,
        ctx,
        "subscription.terminated",
        AGGREGATE,
        sub.id,
        {"reason": reason, "msisdn": sub.msisdn, "iccid": sub.iccid},
    )
    await session.flush()
    return sub


# --------------------------------------------------------------------------- state and views


async def line_mirror(session: Any, subscription_id: str) -> dict[str, Any]:
    """What the line's workflow mirrors of it, in one statement (the line and the day passes still
    running): state, stateReason, offeringId, currentPeriodEnd (ISO), pendingOfferingId, and
    dayPasses (vas purchase id -> expiresAt, ISO). `session` is a session or a connection."""
    global _MIRROR_STATEMENT
    if _MIRROR_STATEMENT is None:
        _MIRROR_STATEMENT = _mirror_statement()
    rows = (await session.execute(_MIRROR_STATEMENT, {"sub_id": subscription_id})).all()
    if not rows:
        raise NotFound(
            "subscription.not_found", f"No subscription {subscription_id}.", subscription_id=subscription_id
        )
    line = rows[0]
    return {
        "id": subscription_id,
        "state": line.state,
        "stateReason": line.state_reason,
        "offeringId": line.offering_id,
        "currentPeriodEnd": _utc_iso(line.current_period_end),
        "pendingOfferingId": line.pending_offering_id,
        "dayPasses": {row[5]: _utc_iso(row[6]) for row in rows if row[5] is not None},
    }


_MIRROR_STATEMENT: Any = None  # built once (see _FACTS_STATEMENTS)


def _mirror_statement() -> Any:
    from sqlalchemy import and_, bindparam

    from domains.subscription.models import VasPurchase

    running = and_(
        VasPurchase.subscription_id == Subscription.id,
        col(VasPurchase.expires_at).is_not(None),
        col(VasPurchase.ended_at).is_(None),
    )
    return (
        select(
            Subscription.state,
            Subscription.state_reason,
            Subscription.offering_id,
            Subscription.current_period_end,
            Subscription.pending_offering_id,
            VasPurchase.id,
            VasPurchase.expires_at,
        )
        .outerjoin(VasPurchase, running)
        .where(Subscription.id == bindparam("sub_id"))
        .order_by(col(VasPurchase.applied_at))
    )


def _mirror_of(sub: Subscription, day_passes: dict[str, str]) -> dict[str, Any]:
    """line_mirror's answer from a row in hand."""
    return {
        "id": sub.id,
        "state": sub.state,
        "stateReason": sub.state_reason,
        "offeringId": sub.offering_id,
        "currentPeriodEnd": _utc_iso(sub.current_period_end),
        "pendingOfferingId": sub.pending_offering_id,
        "dayPasses": day_passes,
    }


def _utc_iso(at: datetime) -> str:
    """As Postgres hands a timestamptz back (UTC), whether read or computed."""
    return at.astimezone(UTC).isoformat()


async def status_view(session: AsyncSession, subscription_id: str) -> dict[str, Any]:
    """The line for the workflow's query and the API: the contract view plus the pending plan
    change, the pending price migration and the day passes still running."""
    view = await subscription_view(session, subscription_id)
    sub = await session.get(Subscription, subscription_id)  # loaded by subscription_view: no query
    assert sub is not None
    migration = await migrations.pending_migration(session, subscription_id)
    passes = await running_passes(session, subscription_id)
    view["terminatedAt"] = sub.terminated_at.isoformat() if sub.terminated_at else None
    view["pendingChange"] = (
        {
            "offeringId": sub.pending_offering_id,
            "quotedPriceId": sub.pending_price_id,
            "effectiveAt": sub.current_period_end.isoformat(),
        }
        if sub.pending_offering_id
        else None
    )
    view["pendingPriceMigration"] = (
        {
            "priceId": migration.new_price_id,
            "amount": str(migration.new_amount),
            "currency": migration.currency,
            "effectiveAt": migration.effective_at.isoformat(),
        }
        if migration
        else None
    )
    view["dayPasses"] = [
        {
            "id": p.id,
            "vasOfferingId": p.vas_offering_id,
            "allowanceType": p.allowance_type,
            "expiresAt": p.expires_at.isoformat() if p.expires_at else None,
            "restoredRemaining": p.restored_remaining,
        }
        for p in passes
    ]
    return view

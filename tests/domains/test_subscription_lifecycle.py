"""Subscription lifecycle services against the real Postgres, with the business clock frozen and
moved: snapshot renewals charged once per period, promo and migrated prices, plan changes at the
pivot, declined renewals and the manual renew, VAS rules and unblocking, the day pass, termination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from core.errors import DomainError, NotFound, PolicyViolation
from domains.payment.mock_gateway import MockGateway
from domains.subscription import lifecycle, services

WORKER = RequestContext(actor="workflow:subscription-test", channel="system", service_identity="worker")
OPERATOR = RequestContext(actor="ops@bss", channel="cli", service_identity="operator")
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
PERIOD = timedelta(days=30)
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


@pytest.fixture
def gateway(runtime) -> MockGateway:
    return MockGateway(runtime.db)


@pytest.fixture(autouse=True)
def _frozen() -> None:
    clock.freeze(T0)


async def run(runtime, fn, *args: Any, **kwargs: Any) -> Any:
    async with transaction(runtime.db) as s:
        return await fn(s, *args, **kwargs)


async def sql(runtime, statement: str, **params: Any) -> list[Any]:
    async with runtime.engine.begin() as conn:
        result = await conn.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


_customers = iter(range(1, 1000))


async def new_customer(runtime, card: str | None = GOOD_CARD) -> str:
    from domains.crm.services import create_customer
    from domains.payment.services import add_payment_method

    async with transaction(runtime.db) as s:
        customer = await create_customer(
            s, OPERATOR, given_name="Mei", family_name="Tan", email=f"mei{next(_customers)}@example.sg"
        )
        if card:
            await add_payment_method(
                s, OPERATOR, customer_id=customer.id, card_number=card, exp_month=12, exp_year=2099
            )
        return customer.id


async def add_card(runtime, customer_id: str, card: str = GOOD_CARD) -> str:
    from domains.payment.services import add_payment_method

    async with transaction(runtime.db) as s:
        method = await add_payment_method(
            s,
            OPERATOR,
            customer_id=customer_id,
            card_number=card,
            exp_month=12,
            exp_year=2099,
            set_default=True,
        )
        return method.id


_orders = iter(range(1, 1000))


async def new_line(runtime, offering_id: str = "PLAN_S", *, card: str | None = GOOD_CARD) -> str:
    """A line sold now at the catalogue's lowest active price, as the order saga does it."""
    from domains.catalog.services import require_sellable
    from domains.inventory.services import reserve_esim, reserve_msisdn

    customer_id = await new_customer(runtime, card)
    order_id = f"ORD-{next(_orders):06d}"
    async with transaction(runtime.db) as s:
        _, price = await require_sellable(s, offering_id)
        msisdn = await reserve_msisdn(s, WORKER, reserved_for=order_id)
        profile = await reserve_esim(s, WORKER, reserved_for=order_id)
        sub = await services.create_subscription(
            s,
            WORKER,
            order_id=order_id,
            customer_id=customer_id,
            offering_id=offering_id,
            msisdn=msisdn,
            iccid=profile.iccid,
            service_order_id="SO-000001",
            price_id=price.id,
            price_amount=price.amount,
            price_currency=price.currency,
        )
        return sub.id


async def line(runtime, sub_id: str):
    return await run(runtime, services.get_subscription, sub_id)


async def buckets(runtime, sub_id: str) -> dict[str, tuple[int, int, int]]:
    rows = await run(runtime, services.balances, sub_id)
    return {b.allowance_type: (b.total, b.consumed, b.remaining) for b in rows}


async def use(runtime, sub_id: str, allowance: str, amount: int) -> None:
    """Consumption as rating records it."""
    await sql(
        runtime,
        "UPDATE subscription.bundle_balance SET consumed = consumed + :n WHERE subscription_id = :s AND allowance_type = :a",
        n=amount,
        s=sub_id,
        a=allowance,
    )


async def exhaust(runtime, sub_id: str) -> None:
    """What rating does when the primary data runs out: consumed up to the total, line blocked."""
    await sql(
        runtime,
        "UPDATE subscription.bundle_balance SET consumed = total WHERE subscription_id = :s AND allowance_type = 'data'",
        s=sub_id,
    )
    await sql(
        runtime,
        "UPDATE subscription.subscription SET state = 'blocked', state_reason = :r WHERE id = :s",
        r=lifecycle.EXHAUSTED,
        s=sub_id,
    )


async def payments(runtime, customer_id: str) -> list[tuple[str, Decimal, str]]:
    rows = await sql(
        runtime,
        "SELECT purpose, amount, status FROM payment.payment WHERE customer_id = :c ORDER BY id",
        c=customer_id,
    )
    return [tuple(r) for r in rows]


async def footprint(runtime, sub_id: str) -> dict[str, Any]:
    """Everything a refused request must leave as it was."""
    counts = {}
    for table in (
        "payment.payment",
        "subscription.vas_purchase",
        "subscription.subscription_renewal",
        "subscription.subscription_state_history",
        "subscription.price_migration",
        "audit.domain_event",
    ):
        counts[table] = (await sql(runtime, f"SELECT count(*) FROM {table}"))[0][0]
    sub = await line(runtime, sub_id)
    counts["line"] = sub.model_dump()
    counts["buckets"] = await buckets(runtime, sub_id)
    return counts


async def renew(
    runtime, gateway, sub_id: str, key: str | None = None, period_start: datetime | None = None
) -> lifecycle.RenewalOutcome:
    """The workflow's renewal: for the current period end, keyed by it."""
    start = period_start or (await line(runtime, sub_id)).current_period_end
    return await run(
        runtime,
        lifecycle.renew,
        WORKER,
        subscription_id=sub_id,
        period_start=start,
        idempotency_key=key or f"subscription-{sub_id}/renewal/{start.isoformat()}",
        gateway=gateway,
    )


async def buy(runtime, gateway, sub_id: str, vas: str, key: str | None = None) -> lifecycle.VasOutcome:
    return await run(
        runtime,
        lifecycle.purchase_vas,
        WORKER,
        subscription_id=sub_id,
        vas_offering_id=vas,
        idempotency_key=key or f"subscription-{sub_id}/vas/{vas}/{clock.now().isoformat()}",
        gateway=gateway,
    )


async def refused(runtime, sub_id: str, code: str, fn, *args: Any, **kwargs: Any) -> DomainError:
    before = await footprint(runtime, sub_id)
    with pytest.raises(DomainError) as exc:
        await run(runtime, fn, *args, **kwargs)
    assert exc.value.code == code
    assert await footprint(runtime, sub_id) == before
    return exc.value


# --------------------------------------------------------------------------- renewal


async def test_renewal_charges_the_snapshot_exactly_once_per_period(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_M")
    customer = (await line(runtime, sub_id)).customer_id
    await use(runtime, sub_id, "data", 700)
    clock.advance(PERIOD)

    first = await renew(runtime, gateway, sub_id)
    again = await run(
        runtime,
        lifecycle.renew,
        WORKER,
        subscription_id=sub_id,
        period_start=T0 + PERIOD,
        idempotency_key=f"subscription-{sub_id}/renewal/{(T0 + PERIOD).isoformat()}",
        gateway=gateway,
    )
    other_key = await run(
        runtime,
        lifecycle.renew,
        WORKER,
        subscription_id=sub_id,
        period_start=T0 + PERIOD,
        idempotency_key="another-attempt-for-the-same-period",
        gateway=gateway,
    )

    assert first.status == "renewed" and first.amount == Decimal("25.00")
    assert first.new_period_end == T0 + 2 * PERIOD
    assert again == first and other_key == first
    assert gateway.authorizations == 1
    assert await payments(runtime, customer) == [("renewal", Decimal("25.00"), "approved")]
    sub = await line(runtime, sub_id)
    assert (sub.state, sub.current_period_start, sub.current_period_end) == (
        "active",
        T0 + PERIOD,
        T0 + 2 * PERIOD,
    )
    assert (await buckets(runtime, sub_id))["data"] == (30720, 0, 30720)


async def test_twelve_renewals_charge_the_snapshot_twelve_times_even_after_the_catalogue_price_rises(
    runtime, gateway
) -> None:
    from domains.catalog.services import active_price, add_price

    sub_id = await new_line(runtime, "PLAN_S")
    customer = (await line(runtime, sub_id)).customer_id
    # The catalogue's price goes up for new sales; the line keeps its own.
    await sql(
        runtime,
        "UPDATE catalog.product_offering_price SET valid_to = :t WHERE id = 'PRICE_PLAN_S'",
        t=T0 + DAY,
    )
    await run(runtime, add_price, OPERATOR, "PLAN_S", "PRICE_PLAN_S_2026", Decimal("14.00"), T0 + DAY, None)
    for _ in range(12):
        clock.advance(PERIOD)
        due = (await line(runtime, sub_id)).current_period_end
        first = await renew(runtime, gateway, sub_id, period_start=due)
        # The activity retried after its commit, and a second timer for the same period.
        assert await renew(runtime, gateway, sub_id, period_start=due) == first
        assert await renew(runtime, gateway, sub_id, key=f"other-{due}", period_start=due) == first
        assert (first.status, first.amount) == ("renewed", Decimal("10.00"))
    assert (await run(runtime, active_price, "PLAN_S")).amount == Decimal("14.00")
    charged = [p for p in await payments(runtime, customer) if p[0] == "renewal" and p[2] == "approved"]
    assert charged == [("renewal", Decimal("10.00"), "approved")] * 12
    assert gateway.authorizations == 12
    assert (await line(runtime, sub_id)).current_period_end == T0 + 13 * PERIOD


async def test_renew_for_a_period_already_past_is_skipped_and_charges_nothing(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    before = await footprint(runtime, sub_id)
    outcome = await run(
        runtime,
        lifecycle.renew,
        WORKER,
        subscription_id=sub_id,
        period_start=T0,
        idempotency_key="stale-timer",
        gateway=gateway,
    )
    assert (outcome.status, outcome.reason) == ("skipped", "not_the_current_period")
    assert gateway.authorizations == 0
    assert await footprint(runtime, sub_id) == before


async def test_a_promo_window_price_stays_the_line_price_after_the_window_closes(runtime, gateway) -> None:
    from domains.catalog.services import active_price, add_price

    await run(
        runtime, add_price, OPERATOR, "PLAN_M", "PRICE_PLAN_M_CNY", Decimal("19.00"), T0 - DAY, T0 + 10 * DAY
    )
    sub_id = await new_line(runtime, "PLAN_M")
    assert (await line(runtime, sub_id)).price_amount == Decimal("19.00")
    clock.advance(PERIOD)
    assert (await run(runtime, active_price, "PLAN_M")).amount == Decimal("25.00")  # the window has closed
    outcome = await renew(runtime, gateway, sub_id)
    assert (outcome.status, outcome.amount) == ("renewed", Decimal("19.00"))
    sub = await line(runtime, sub_id)
    assert (sub.price_id, sub.price_amount) == ("PRICE_PLAN_M_CNY", Decimal("19.00"))


async def test_the_workflows_renewal_is_one_transaction_of_a_few_statements(runtime, gateway) -> None:
    """renew_in_steps (the line's charge): the read, the charge and the apply commit together (the
    gateway's record commits on its own), in 3 statements where it took three transactions and
    17, then one and 13 (issue 12), writing the same rows; the line comes back with it."""
    from sqlalchemy import event

    sub_id = await new_line(runtime, "PLAN_S")
    clock.advance(PERIOD)
    now = clock.now()
    start = (await line(runtime, sub_id)).current_period_end
    last_event = (await sql(runtime, "SELECT max(id) FROM audit.domain_event"))[0][0]
    statements: list[str] = []
    commits: list[int] = []

    def count(_conn, _cursor, statement, *_) -> None:
        statements.append(statement)

    def commit(_conn) -> None:
        commits.append(1)

    engine = runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    event.listen(engine, "commit", commit)
    try:
        outcome = await lifecycle.renew_in_steps(
            runtime.db,
            WORKER,
            subscription_id=sub_id,
            period_start=start,
            idempotency_key=f"subscription-{sub_id}/renewal/{start.isoformat()}",
            gateway=gateway,
            read_line=True,
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
        event.remove(engine, "commit", commit)
    assert outcome.status == "renewed"
    assert outcome.line["currentPeriodEnd"] == (start + PERIOD).isoformat()
    assert len(commits) == 1
    assert len(statements) <= 3, [s[:70] for s in statements]
    assert (await buckets(runtime, sub_id))["data"] == (5120, 0, 5120)
    end, key, pay = start + PERIOD, f"subscription-{sub_id}/renewal/{start.isoformat()}", outcome.payment_id
    sub = await line(runtime, sub_id)
    assert (sub.state, sub.state_reason, sub.current_period_start, sub.current_period_end) == (
        "active",
        None,
        start,
        end,
    )
    assert (sub.offering_id, sub.price_id, sub.price_amount, sub.updated_at) == (
        "PLAN_S",
        "PRICE_PLAN_S",
        Decimal("10.00"),
        now,
    )
    assert await sql(
        runtime,
        "SELECT kind, status, idempotency_key, due_at, attempted_at, offering_id, price_id, amount, currency,"
        " payment_id, period_start, period_end, reason FROM subscription.subscription_renewal"
        " WHERE subscription_id = :s",
        s=sub_id,
    ) == [
        (
            "scheduled",
            "renewed",
            key,
            start,
            now,
            "PLAN_S",
            "PRICE_PLAN_S",
            Decimal("10.00"),
            "SGD",
            pay,
            start,
            end,
            None,
        )
    ]
    history = await run(runtime, services.subscription_history, sub_id)
    assert (
        history[-1].from_state,
        history[-1].to_state,
        history[-1].at,
        history[-1].actor,
        history[-1].reason,
    ) == (
        "active",
        "active",
        now,
        WORKER.actor,
        "scheduled renewal",
    )
    assert await sql(
        runtime,
        "SELECT customer_id, amount, purpose, status, decline_code, idempotency_key, attempted_at, refunded_at"
        " FROM payment.payment WHERE id = :p",
        p=pay,
    ) == [(sub.customer_id, Decimal("10.00"), "renewal", "approved", None, key, now, None)]
    events = await sql(
        runtime,
        "SELECT event_type, aggregate_type, aggregate_id, occurred_at, actor, channel, service_identity, payload"
        " FROM audit.domain_event WHERE id > :i ORDER BY id",
        i=last_event,
    )
    who = (now, WORKER.actor, WORKER.channel, WORKER.service_identity)
    gateway_ref = events[0][-1]["gatewayRef"]
    assert events == [
        (
            "payment.approved",
            "payment",
            pay,
            *who,
            {
                "customerId": sub.customer_id,
                "paymentMethodId": events[0][-1]["paymentMethodId"],
                "amount": "10.00",
                "currency": "SGD",
                "purpose": "renewal",
                "status": "approved",
                "gatewayRef": gateway_ref,
                "declineCode": None,
                "idempotencyKey": key,
                "refundRef": None,
            },
        ),
        (
            "subscription.renewed",
            "Subscription",
            sub_id,
            *who,
            {
                "kind": "scheduled",
                "paymentId": pay,
                "amount": "10.00",
                "priceId": "PRICE_PLAN_S",
                "offeringId": "PLAN_S",
                "periodStart": start.isoformat(),
                "periodEnd": end.isoformat(),
            },
        ),
    ]
    assert gateway_ref.startswith("pi_")


async def test_a_line_renewed_by_hand_while_the_workflow_charged_it_gets_that_charge_back(
    runtime, gateway
) -> None:
    """renew_in_steps does not hold the line while the gateway answers: a renew_now committed
    meanwhile moves the period, so the charge is refunded and the period is not renewed twice."""
    sub_id = await new_line(runtime, "PLAN_S")
    customer = (await line(runtime, sub_id)).customer_id
    clock.advance(PERIOD)
    start = (await line(runtime, sub_id)).current_period_end
    authorize = gateway.authorize

    async def authorize_while_renewed_by_hand(token, amount, currency, key):
        if key.startswith("subscription-"):
            manual = await run(
                runtime,
                lifecycle.renew_now,
                OPERATOR,
                subscription_id=sub_id,
                idempotency_key="by-hand",
                gateway=gateway,
            )
            assert manual.status == "renewed"
        return await authorize(token, amount, currency, key)

    gateway.authorize = authorize_while_renewed_by_hand
    outcome = await lifecycle.renew_in_steps(
        runtime.db,
        WORKER,
        subscription_id=sub_id,
        period_start=start,
        idempotency_key=f"subscription-{sub_id}/renewal/{start.isoformat()}",
        gateway=gateway,
        read_line=True,
    )
    assert (outcome.status, outcome.reason) == ("skipped", "line_changed")
    assert await payments(runtime, customer) == [
        ("renewal", Decimal("10.00"), "approved"),  # by hand
        ("renewal", Decimal("10.00"), "refunded"),  # the workflow's
    ]
    renewals = await sql(
        runtime,
        "SELECT idempotency_key FROM subscription.subscription_renewal WHERE subscription_id = :s",
        s=sub_id,
    )
    assert [r[0] for r in renewals] == ["by-hand"]
    assert outcome.line["currentPeriodEnd"] == (await line(runtime, sub_id)).current_period_end.isoformat()


async def test_a_renewal_whose_key_left_an_errored_payment_records_the_answer_on_it(runtime, gateway) -> None:
    """A payment left `errored` under the renewal's key (an attempt whose outcome was unknown)
    takes the gateway's answer when the renewal is asked again: one payment, then renewed."""
    sub_id = await new_line(runtime, "PLAN_S")
    customer = (await line(runtime, sub_id)).customer_id
    clock.advance(PERIOD)
    start = (await line(runtime, sub_id)).current_period_end
    key = f"subscription-{sub_id}/renewal/{start.isoformat()}"
    await sql(
        runtime,
        "INSERT INTO payment.payment (id, customer_id, payment_method_id, amount, currency, purpose, status,"
        " decline_code, idempotency_key, attempted_at) SELECT 'PAY-999999', CAST(:c AS text), id, 10.00, 'SGD', 'renewal',"
        " 'errored', 'gateway_error', :k, :t FROM payment.payment_method WHERE customer_id = CAST(:c AS text)",
        c=customer,
        k=key,
        t=clock.now(),
    )
    outcome = await lifecycle.renew_in_steps(
        runtime.db, WORKER, subscription_id=sub_id, period_start=start, idempotency_key=key, gateway=gateway
    )
    assert (outcome.status, outcome.payment_id) == ("renewed", "PAY-999999")
    assert await payments(runtime, customer) == [("renewal", Decimal("10.00"), "approved")]
    assert (await line(runtime, sub_id)).current_period_end == start + PERIOD


async def test_a_renewal_brings_back_a_line_blocked_for_exhaustion_with_fresh_balances(
    runtime, gateway
) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    await exhaust(runtime, sub_id)
    clock.advance(PERIOD)
    assert (await renew(runtime, gateway, sub_id)).status == "renewed"
    sub = await line(runtime, sub_id)
    assert (sub.state, sub.state_reason) == ("active", None)
    assert (await buckets(runtime, sub_id))["data"] == (5120, 0, 5120)
    history = await run(runtime, services.subscription_history, sub_id)
    assert (history[-1].from_state, history[-1].to_state) == ("blocked", "active")


async def test_a_declined_renewal_blocks_the_line_and_keeps_the_period(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S", card=DECLINED_CARD)
    customer = (await line(runtime, sub_id)).customer_id
    clock.advance(PERIOD)
    outcome = await renew(runtime, gateway, sub_id)
    replay = await renew(runtime, gateway, sub_id)
    assert outcome.status == "declined" and outcome.payment_id is not None
    assert replay == outcome and gateway.authorizations == 1
    sub = await line(runtime, sub_id)
    assert (sub.state, sub.state_reason, sub.current_period_end) == (
        "blocked",
        "renewal_declined",
        T0 + PERIOD,
    )
    assert await payments(runtime, customer) == [("renewal", Decimal("10.00"), "declined")]
    recorded = await sql(
        runtime,
        "SELECT status, due_at FROM subscription.subscription_renewal WHERE subscription_id = :s",
        s=sub_id,
    )
    assert recorded == [("declined", T0 + PERIOD)]
    history = await run(runtime, services.subscription_history, sub_id)
    assert (history[-1].from_state, history[-1].to_state) == ("active", "blocked")


async def test_renewal_without_a_card_on_file_is_a_decline_that_charges_nothing(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S", card=None)
    clock.advance(PERIOD)
    outcome = await renew(runtime, gateway, sub_id)
    assert (outcome.status, outcome.payment_id, outcome.reason) == ("declined", None, "no_payment_method")
    assert gateway.authorizations == 0
    assert (await line(runtime, sub_id)).state_reason == "renewal_declined"


async def test_renew_now_with_no_card_charges_nothing_and_changes_nothing(runtime, gateway) -> None:
    from domains.payment.services import list_payment_methods, remove_payment_method

    sub_id = await new_line(runtime, "PLAN_S", card=DECLINED_CARD)
    customer = (await line(runtime, sub_id)).customer_id
    clock.advance(PERIOD)
    await renew(runtime, gateway, sub_id)
    for method in await run(runtime, list_payment_methods, customer):
        await run(runtime, remove_payment_method, OPERATOR, method.id)
    authorizations = gateway.authorizations
    await refused(
        runtime,
        sub_id,
        "subscription.renew.no_payment_method",
        lifecycle.renew_now,
        WORKER,
        subscription_id=sub_id,
        idempotency_key="renew-now-1",
        gateway=gateway,
    )
    assert gateway.authorizations == authorizations


async def test_renew_now_after_a_good_card_charges_once_and_reactivates(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S", card=DECLINED_CARD)
    customer = (await line(runtime, sub_id)).customer_id
    clock.advance(PERIOD + 2 * DAY)
    assert (await renew(runtime, gateway, sub_id)).status == "declined"
    await add_card(runtime, customer)

    args = {"subscription_id": sub_id, "idempotency_key": "renew-now-1", "gateway": gateway}
    first = await run(runtime, lifecycle.renew_now, WORKER, **args)
    again = await run(runtime, lifecycle.renew_now, WORKER, **args)
    assert first.status == "renewed" and again == first
    now = clock.now()
    sub = await line(runtime, sub_id)
    assert (sub.state, sub.state_reason) == ("active", None)
    assert (sub.current_period_start, sub.current_period_end) == (now, now + PERIOD)
    assert await payments(runtime, customer) == [
        ("renewal", Decimal("10.00"), "declined"),
        ("renewal", Decimal("10.00"), "approved"),
    ]
    # The workflow's stale timer for the declined period finds it renewed by hand: nothing charged.
    stale = await run(
        runtime,
        lifecycle.renew,
        WORKER,
        subscription_id=sub_id,
        period_start=T0 + PERIOD,
        idempotency_key="subscription-retry-of-the-old-period",
        gateway=gateway,
    )
    assert stale.status == "skipped" and gateway.authorizations == 2


async def test_renew_now_declined_leaves_the_line_blocked_without_raising(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S", card=DECLINED_CARD)
    outcome = await run(
        runtime, lifecycle.renew_now, WORKER, subscription_id=sub_id, idempotency_key="rn", gateway=gateway
    )
    assert outcome.status == "declined"
    sub = await line(runtime, sub_id)
    assert (sub.state, sub.state_reason, sub.current_period_end) == (
        "blocked",
        "renewal_declined",
        T0 + PERIOD,
    )


async def test_renew_now_refuses_a_terminated_line_before_charging(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    await run(runtime, lifecycle.terminate, WORKER, subscription_id=sub_id)
    await refused(
        runtime,
        sub_id,
        "subscription.renew.only_if_active_or_blocked",
        lifecycle.renew_now,
        WORKER,
        subscription_id=sub_id,
        idempotency_key="rn",
        gateway=gateway,
    )
    assert gateway.authorizations == 0
    clock.advance(PERIOD)
    assert (await renew(runtime, gateway, sub_id)).status == "skipped"


# --------------------------------------------------------------------------- plan change


async def test_a_plan_change_pivots_at_renewal_with_the_new_price_and_allowances_and_not_before(
    runtime, gateway
) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    customer = (await line(runtime, sub_id)).customer_id
    await run(runtime, lifecycle.schedule_plan_change, WORKER, subscription_id=sub_id, offering_id="PLAN_L")
    clock.advance(PERIOD - DAY)
    sub = await line(runtime, sub_id)
    assert (sub.offering_id, sub.price_amount, sub.pending_offering_id) == (
        "PLAN_S",
        Decimal("10.00"),
        "PLAN_L",
    )
    assert (await buckets(runtime, sub_id))["data"] == (5120, 0, 5120)
    view = await run(runtime, lifecycle.status_view, sub_id)
    assert view["pendingChange"] == {
        "offeringId": "PLAN_L",
        "quotedPriceId": "PRICE_PLAN_L",
        "effectiveAt": (T0 + PERIOD).isoformat(),
    }

    clock.advance(DAY)
    outcome = await renew(runtime, gateway, sub_id)
    assert (outcome.status, outcome.offering_id, outcome.amount) == ("renewed", "PLAN_L", Decimal("45.00"))
    sub = await line(runtime, sub_id)
    assert (sub.offering_id, sub.price_id, sub.price_amount) == ("PLAN_L", "PRICE_PLAN_L", Decimal("45.00"))
    assert sub.pending_offering_id is None and sub.pending_price_id is None
    assert await buckets(runtime, sub_id) == {
        "data": (153600, 0, 153600),
        "voice": (-1, 0, -1),
        "sms": (-1, 0, -1),
        "data_roaming": (2048, 0, 2048),
    }
    assert await payments(runtime, customer) == [("renewal", Decimal("45.00"), "approved")]
    # The next renewal charges the new snapshot.
    clock.advance(PERIOD)
    assert (await renew(runtime, gateway, sub_id)).amount == Decimal("45.00")


async def test_a_plan_change_drops_the_buckets_the_new_plan_does_not_have(runtime, gateway) -> None:
    from domains.catalog.services import add_offering

    await run(
        runtime,
        add_offering,
        OPERATOR,
        offering_id="PLAN_DATA",
        name="Data only",
        amount=Decimal("8.00"),
        allowances={"data": 2048},
    )
    sub_id = await new_line(runtime, "PLAN_S")
    await run(
        runtime, lifecycle.schedule_plan_change, WORKER, subscription_id=sub_id, offering_id="PLAN_DATA"
    )
    clock.advance(PERIOD)
    await renew(runtime, gateway, sub_id)
    assert await buckets(runtime, sub_id) == {"data": (2048, 0, 2048)}


async def test_plan_change_rules_refuse_by_name_and_change_nothing(runtime, gateway) -> None:
    from domains.catalog.services import add_offering, retire_offering

    sub_id = await new_line(runtime, "PLAN_S")
    await run(
        runtime,
        add_offering,
        OPERATOR,
        offering_id="PLAN_OLD",
        name="Old",
        amount=Decimal("5.00"),
        allowances={"data": 1},
    )
    await run(runtime, retire_offering, OPERATOR, "PLAN_OLD")
    await run(
        runtime,
        add_offering,
        OPERATOR,
        offering_id="PLAN_LATER",
        name="Later",
        amount=Decimal("5.00"),
        allowances={"data": 1},
        valid_from=T0 + 10 * DAY,
    )
    change = lifecycle.schedule_plan_change
    await refused(
        runtime,
        sub_id,
        "subscription.plan_change.same_offering",
        change,
        WORKER,
        subscription_id=sub_id,
        offering_id="PLAN_S",
    )
    for target in ("PLAN_OLD", "PLAN_LATER", "PLAN_NOPE"):
        await refused(
            runtime,
            sub_id,
            "subscription.plan_change.target_not_sellable_now",
            change,
            WORKER,
            subscription_id=sub_id,
            offering_id=target,
        )

    await run(runtime, change, WORKER, subscription_id=sub_id, offering_id="PLAN_M")
    before = await footprint(runtime, sub_id)
    await run(
        runtime, change, WORKER, subscription_id=sub_id, offering_id="PLAN_M"
    )  # the same again: a no-op
    assert await footprint(runtime, sub_id) == before
    await refused(
        runtime,
        sub_id,
        "subscription.plan_change.already_pending",
        change,
        WORKER,
        subscription_id=sub_id,
        offering_id="PLAN_L",
    )

    await exhaust(runtime, sub_id)
    await refused(
        runtime,
        sub_id,
        "subscription.plan_change.not_eligible_state",
        change,
        WORKER,
        subscription_id=sub_id,
        offering_id="PLAN_L",
    )


async def test_cancel_plan_change_clears_it_and_is_a_no_op_when_nothing_is_pending(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    before = await footprint(runtime, sub_id)
    await run(runtime, lifecycle.cancel_plan_change, WORKER, subscription_id=sub_id)
    assert await footprint(runtime, sub_id) == before

    await run(runtime, lifecycle.schedule_plan_change, WORKER, subscription_id=sub_id, offering_id="PLAN_M")
    sub = await run(runtime, lifecycle.cancel_plan_change, WORKER, subscription_id=sub_id)
    assert sub.pending_offering_id is None and sub.pending_price_id is None
    clock.advance(PERIOD)
    outcome = await renew(runtime, gateway, sub_id)
    assert (outcome.offering_id, outcome.amount) == ("PLAN_S", Decimal("10.00"))


# --------------------------------------------------------------------------- price migration


async def test_a_price_migration_applies_only_after_its_notice(runtime, gateway) -> None:
    from domains.catalog.services import add_price

    sub_id = await new_line(runtime, "PLAN_M")
    other_plan = await new_line(runtime, "PLAN_S")
    clock.advance(DAY)
    await run(
        runtime, add_price, OPERATOR, "PLAN_M", "PRICE_PLAN_M_2027", Decimal("29.00"), T0 + 60 * DAY, None
    )
    lines = await run(
        runtime,
        lifecycle.schedule_price_migration,
        OPERATOR,
        offering_id="PLAN_M",
        new_price_id="PRICE_PLAN_M_2027",
    )
    assert lines == 1
    effective = T0 + DAY + 30 * DAY
    view = await run(runtime, lifecycle.status_view, sub_id)
    assert view["pendingPriceMigration"] == {
        "priceId": "PRICE_PLAN_M_2027",
        "amount": "29.00",
        "currency": "SGD",
        "effectiveAt": effective.isoformat(),
    }
    assert (await run(runtime, lifecycle.status_view, other_plan))["pendingPriceMigration"] is None

    clock.advance(PERIOD - DAY)  # T0 + 30 days: still inside the notice
    assert (await renew(runtime, gateway, sub_id)).amount == Decimal("25.00")
    clock.advance(PERIOD)  # T0 + 60 days: notice over
    assert (await renew(runtime, gateway, sub_id)).amount == Decimal("29.00")
    sub = await line(runtime, sub_id)
    assert (sub.price_id, sub.price_amount) == ("PRICE_PLAN_M_2027", Decimal("29.00"))
    assert (await run(runtime, lifecycle.status_view, sub_id))["pendingPriceMigration"] is None
    clock.advance(PERIOD)
    assert (await renew(runtime, gateway, sub_id)).amount == Decimal("29.00")


async def test_a_price_migration_honours_a_later_effective_date_and_reruns_keep_the_notice(runtime) -> None:
    from domains.catalog.services import add_price

    sub_id = await new_line(runtime, "PLAN_M")
    await run(runtime, add_price, OPERATOR, "PLAN_M", "PRICE_PLAN_M_NEW", Decimal("27.00"))
    args = {"offering_id": "PLAN_M", "new_price_id": "PRICE_PLAN_M_NEW", "effective_from": T0 + 90 * DAY}
    assert await run(runtime, lifecycle.schedule_price_migration, OPERATOR, **args) == 1
    clock.advance(10 * DAY)
    assert await run(runtime, lifecycle.schedule_price_migration, OPERATOR, **args, notice_days=0) == 1
    rows = await sql(
        runtime,
        "SELECT status, effective_at FROM subscription.price_migration WHERE subscription_id = :s",
        s=sub_id,
    )
    assert rows == [("pending", T0 + 90 * DAY)]


async def test_price_migration_refuses_a_price_it_cannot_use_and_changes_nothing(runtime) -> None:
    sub_id = await new_line(runtime, "PLAN_M")
    migrate = lifecycle.schedule_price_migration
    await refused(
        runtime,
        sub_id,
        "subscription.migrate_price.unknown_price",
        migrate,
        OPERATOR,
        offering_id="PLAN_M",
        new_price_id="PRICE_NOPE",
    )
    await refused(
        runtime,
        sub_id,
        "subscription.migrate_price.price_not_on_offering",
        migrate,
        OPERATOR,
        offering_id="PLAN_M",
        new_price_id="PRICE_PLAN_L",
    )


# --------------------------------------------------------------------------- VAS


async def test_vas_rules_refuse_by_name_and_change_nothing(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    kw = {"subscription_id": sub_id, "idempotency_key": "vas-1", "gateway": gateway}
    buy_vas = lifecycle.purchase_vas
    await refused(
        runtime,
        sub_id,
        "subscription.vas_purchase.vas_offering_sellable",
        buy_vas,
        WORKER,
        vas_offering_id="VAS_NOPE",
        **kw,
    )
    await sql(
        runtime, "UPDATE catalog.vas_offering SET lifecycle_status = 'Retired' WHERE id = 'VAS_DATA_5GB'"
    )
    await refused(
        runtime,
        sub_id,
        "subscription.vas_purchase.vas_offering_sellable",
        buy_vas,
        WORKER,
        vas_offering_id="VAS_DATA_5GB",
        **kw,
    )

    no_card = await new_line(runtime, "PLAN_S", card=None)
    await refused(
        runtime, no_card, "subscription.vas_purchase.requires_active_cof", buy_vas, WORKER,
        subscription_id=no_card, vas_offering_id="VAS_DATA_1GB", idempotency_key="vas-2", gateway=gateway,
    )  # fmt: skip

    await run(runtime, lifecycle.terminate, WORKER, subscription_id=sub_id)
    await refused(
        runtime,
        sub_id,
        "subscription.vas_purchase.not_if_terminated",
        buy_vas,
        WORKER,
        vas_offering_id="VAS_DATA_1GB",
        **kw,
    )
    assert gateway.authorizations == 0


async def test_a_declined_vas_keeps_the_payment_and_leaves_the_line_unchanged(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S", card=DECLINED_CARD)
    customer = (await line(runtime, sub_id)).customer_id
    before = await buckets(runtime, sub_id)
    outcome = await buy(runtime, gateway, sub_id, "VAS_DATA_1GB", key="vas-declined")
    assert (outcome.status, outcome.vas_purchase_id) == ("declined", None)
    assert outcome.violation().code == "subscription.vas_purchase.requires_active_cof"
    assert await buckets(runtime, sub_id) == before
    assert await payments(runtime, customer) == [("vas", Decimal("3.00"), "declined")]
    assert await sql(runtime, "SELECT count(*) FROM subscription.vas_purchase") == [(0,)]
    assert (await buy(runtime, gateway, sub_id, "VAS_DATA_1GB", key="vas-declined")) == outcome
    assert gateway.authorizations == 1


async def test_a_data_top_up_adds_once_per_key(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    customer = (await line(runtime, sub_id)).customer_id
    first = await buy(runtime, gateway, sub_id, "VAS_DATA_1GB", key="k1")
    again = await buy(runtime, gateway, sub_id, "VAS_DATA_1GB", key="k1")
    assert first.status == "applied" and again.vas_purchase_id == first.vas_purchase_id
    assert (
        first.vas_purchase_id.startswith(f"{sub_id}-VAS-") and len(first.vas_purchase_id) == len(sub_id) + 13
    )
    assert (await buckets(runtime, sub_id))["data"] == (5120 + 1024, 0, 6144)
    assert await payments(runtime, customer) == [("vas", Decimal("3.00"), "approved")]
    rows = await sql(
        runtime,
        "SELECT vas_offering_id, allowance_type, allowance_added, payment_id IS NOT NULL, expires_at FROM subscription.vas_purchase",
    )
    assert rows == [("VAS_DATA_1GB", "data", 1024, True, None)]
    other = await new_line(runtime, "PLAN_S")
    await refused(
        runtime, other, "subscription.vas_purchase.idempotency_key_reused", lifecycle.purchase_vas, WORKER,
        subscription_id=other, vas_offering_id="VAS_DATA_1GB", idempotency_key="k1", gateway=gateway,
    )  # fmt: skip


async def test_an_exhausted_line_comes_back_with_data_but_not_with_roaming(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    await exhaust(runtime, sub_id)
    roaming = await buy(runtime, gateway, sub_id, "VAS_ROAMING_1GB")
    sub = await line(runtime, sub_id)
    assert not roaming.unblocked and (sub.state, sub.state_reason) == ("blocked", lifecycle.EXHAUSTED)
    assert (await buckets(runtime, sub_id))["data_roaming"] == (1024, 0, 1024)

    data = await buy(runtime, gateway, sub_id, "VAS_DATA_1GB")
    sub = await line(runtime, sub_id)
    assert data.unblocked and (sub.state, sub.state_reason) == ("active", None)
    assert (await buckets(runtime, sub_id))["data"] == (6144, 5120, 1024)
    history = await run(runtime, services.subscription_history, sub_id)
    assert (history[-1].from_state, history[-1].to_state) == ("blocked", "active")


async def test_a_top_up_does_not_lift_a_block_for_a_declined_renewal(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S", card=DECLINED_CARD)
    clock.advance(PERIOD)
    await renew(runtime, gateway, sub_id)
    await add_card(runtime, (await line(runtime, sub_id)).customer_id)
    outcome = await buy(runtime, gateway, sub_id, "VAS_DATA_1GB")
    sub = await line(runtime, sub_id)
    assert outcome.status == "applied" and not outcome.unblocked
    assert (sub.state, sub.state_reason) == ("blocked", "renewal_declined")


async def test_a_vas_for_a_missing_allowance_creates_the_bucket(runtime, gateway) -> None:
    from domains.catalog.services import add_offering

    await run(
        runtime,
        add_offering,
        OPERATOR,
        offering_id="PLAN_HOME",
        name="Home",
        amount=Decimal("9.00"),
        allowances={"data": 1024},
    )
    sub_id = await new_line(runtime, "PLAN_HOME")
    await buy(runtime, gateway, sub_id, "VAS_ROAMING_1GB")
    assert (await buckets(runtime, sub_id))["data_roaming"] == (1024, 0, 1024)


# --------------------------------------------------------------------------- day pass


async def test_the_day_pass_makes_data_unlimited_and_its_end_restores_the_remaining_exactly(
    runtime, gateway
) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    await use(runtime, sub_id, "data", 5000)
    outcome = await buy(runtime, gateway, sub_id, "VAS_UNLIMITED_DAY")
    assert outcome.expires_at == T0 + timedelta(hours=24)
    assert (await buckets(runtime, sub_id))["data"][2] == -1
    view = await run(runtime, lifecycle.status_view, sub_id)
    assert view["dayPasses"] == [
        {
            "id": outcome.vas_purchase_id,
            "vasOfferingId": "VAS_UNLIMITED_DAY",
            "allowanceType": "data",
            "expiresAt": (T0 + timedelta(hours=24)).isoformat(),
            "restoredRemaining": 120,
        }
    ]
    await use(runtime, sub_id, "data", 40_000)  # a big day
    clock.advance(timedelta(hours=24))
    args = {"subscription_id": sub_id, "vas_purchase_id": outcome.vas_purchase_id}
    assert await run(runtime, lifecycle.expire_day_pass, WORKER, **args) is True
    data = (await buckets(runtime, sub_id))["data"]
    assert data[2] == 120 and data[1] == 45_000
    before = await footprint(runtime, sub_id)
    assert await run(runtime, lifecycle.expire_day_pass, WORKER, **args) is False
    assert await footprint(runtime, sub_id) == before
    assert (await run(runtime, lifecycle.status_view, sub_id))["dayPasses"] == []
    assert (await line(runtime, sub_id)).state == "active"


async def test_a_day_pass_lifts_exhaustion_and_its_end_blocks_again(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    await exhaust(runtime, sub_id)
    outcome = await buy(runtime, gateway, sub_id, "VAS_UNLIMITED_DAY")
    assert outcome.unblocked and (await line(runtime, sub_id)).state == "active"
    clock.advance(timedelta(hours=24))
    await run(
        runtime,
        lifecycle.expire_day_pass,
        WORKER,
        subscription_id=sub_id,
        vas_purchase_id=outcome.vas_purchase_id,
    )
    sub = await line(runtime, sub_id)
    assert (sub.state, sub.state_reason) == ("blocked", lifecycle.EXHAUSTED)
    assert (await buckets(runtime, sub_id))["data"][2] == 0


async def test_a_top_up_during_a_day_pass_is_kept_for_when_it_ends(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    await use(runtime, sub_id, "data", 5120)
    day = await buy(runtime, gateway, sub_id, "VAS_UNLIMITED_DAY")
    await buy(runtime, gateway, sub_id, "VAS_DATA_1GB")
    assert (await buckets(runtime, sub_id))["data"][0] == -1
    await run(
        runtime,
        lifecycle.expire_day_pass,
        WORKER,
        subscription_id=sub_id,
        vas_purchase_id=day.vas_purchase_id,
    )
    assert (await buckets(runtime, sub_id))["data"][2] == 1024


async def test_a_renewal_during_a_day_pass_keeps_it_running_and_its_end_gives_the_new_allowance(
    runtime, gateway
) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    clock.advance(PERIOD - timedelta(hours=2))
    await use(runtime, sub_id, "data", 4000)
    day = await buy(runtime, gateway, sub_id, "VAS_UNLIMITED_DAY")
    clock.advance(timedelta(hours=2))
    await renew(runtime, gateway, sub_id)
    assert (await buckets(runtime, sub_id))["data"] == (-1, 0, -1)
    await use(runtime, sub_id, "data", 300)
    await run(
        runtime,
        lifecycle.expire_day_pass,
        WORKER,
        subscription_id=sub_id,
        vas_purchase_id=day.vas_purchase_id,
    )
    assert (await buckets(runtime, sub_id))["data"] == (5420, 300, 5120)


async def test_expiring_an_unknown_pass_is_not_found(runtime) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    with pytest.raises(NotFound) as exc:
        await run(runtime, lifecycle.expire_day_pass, WORKER, subscription_id=sub_id, vas_purchase_id="nope")
    assert exc.value.code == "subscription.vas_purchase.not_found"


# --------------------------------------------------------------------------- termination


async def test_terminate_quarantines_the_number_for_90_days_and_recycles_the_esim(runtime, gateway) -> None:
    from domains.inventory.services import get_esim, get_msisdn, mark_esim_installed, mark_esim_prepared

    sub_id = await new_line(runtime, "PLAN_M")
    sub = await line(runtime, sub_id)
    await run(runtime, mark_esim_prepared, WORKER, iccid=sub.iccid)
    await run(runtime, mark_esim_installed, WORKER, iccid=sub.iccid)
    old_matching = (await run(runtime, get_esim, sub.iccid)).matching_id
    await run(runtime, lifecycle.schedule_plan_change, WORKER, subscription_id=sub_id, offering_id="PLAN_L")
    clock.advance(5 * DAY)

    ended = await run(
        runtime, lifecycle.terminate, OPERATOR, subscription_id=sub_id, reason="customer request"
    )
    assert (ended.state, ended.terminated_at, ended.pending_offering_id) == ("terminated", clock.now(), None)
    number = await run(runtime, get_msisdn, sub.msisdn)
    assert (number.status, number.quarantine_until) == ("quarantine", clock.now() + timedelta(days=90))
    profile = await run(runtime, get_esim, sub.iccid)
    assert profile.profile_state == "available" and profile.matching_id != old_matching
    assert profile.assigned_to_subscription_id is None and profile.matching_id in profile.activation_code
    history = await run(runtime, services.subscription_history, sub_id)
    assert (history[-1].from_state, history[-1].to_state, history[-1].actor) == (
        "active",
        "terminated",
        "ops@bss",
    )

    before = await footprint(runtime, sub_id)
    again = await run(runtime, lifecycle.terminate, OPERATOR, subscription_id=sub_id)
    assert again.state == "terminated" and await footprint(runtime, sub_id) == before


async def test_terminate_a_blocked_line_ends_its_running_day_pass(runtime, gateway) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    day = await buy(runtime, gateway, sub_id, "VAS_UNLIMITED_DAY")
    await exhaust(runtime, sub_id)
    await run(runtime, lifecycle.terminate, WORKER, subscription_id=sub_id)
    assert (await run(runtime, lifecycle.status_view, sub_id))["dayPasses"] == []
    ended = await run(
        runtime,
        lifecycle.expire_day_pass,
        WORKER,
        subscription_id=sub_id,
        vas_purchase_id=day.vas_purchase_id,
    )
    assert ended is False


async def test_status_view_shows_state_period_balances_and_pending_work(runtime) -> None:
    sub_id = await new_line(runtime, "PLAN_S")
    view = await run(runtime, lifecycle.status_view, sub_id)
    assert (view["state"], view["stateReason"], view["offeringId"]) == ("active", None, "PLAN_S")
    assert (view["currentPeriodStart"], view["currentPeriodEnd"]) == (
        T0.isoformat(),
        (T0 + PERIOD).isoformat(),
    )
    assert view["pendingChange"] is None and view["pendingPriceMigration"] is None and view["dayPasses"] == []
    assert [b["allowanceType"] for b in view["balances"]] == ["data", "voice", "sms", "data_roaming"]
    with pytest.raises(NotFound):
        await run(runtime, lifecycle.status_view, "SUB-999999")
    with pytest.raises(PolicyViolation):
        await run(
            runtime, lifecycle.schedule_plan_change, WORKER, subscription_id=sub_id, offering_id="PLAN_S"
        )

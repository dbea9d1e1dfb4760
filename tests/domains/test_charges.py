"""Card charges against the real Postgres: exactly once per idempotency key (also under concurrent
calls), declines kept and returned, idempotent refunds, the reference's rule codes, audit rows; and
unknown outcomes (timeout, lost answer, a crash before the commit) reconciled with the gateway's
ledger by key, refunds that reconcile first and raise retryable errors for gateway trouble."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

import pytest
from sqlalchemy import text

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from core.errors import InvalidInput, PolicyViolation
from domains.audit.services import events_for
from domains.payment import charges
from domains.payment.gateway import (
    GatewayError,
    GatewayResponseLost,
    GatewayResult,
    GatewayTimeout,
    GatewayUnavailable,
    RefundDeclined,
)
from domains.payment.mock_gateway import (
    MockGateway,
    authorizations_for,
    live_authorizations_for,
    refunds_for,
)
from domains.payment.models import PaymentMethod
from simulators.faults import Fault, FixedFaults

SAGA = RequestContext(actor="workflow:order-ORD-000001", channel="system", service_identity="worker")
CUSTOMER = "CUST-0000aaaa"
OTHER = "CUST-0000bbbb"


async def add_card(
    runtime, pm_id: str, customer_id: str = CUSTOMER, *, token: str | None = None, **fields
) -> None:
    async with transaction(runtime.db) as s:
        s.add(
            PaymentMethod(
                id=pm_id,
                customer_id=customer_id,
                token=token or f"tok_{pm_id}",
                last4="4242",
                brand="visa",
                exp_month=12,
                exp_year=2099,
                is_default=fields.pop("is_default", True),
                status=fields.pop("status", "active"),
                created_at=clock.now(),
                **fields,
            )
        )


async def do_charge(runtime, gateway, key: str = "order-ORD-000001:activation", **kwargs) -> charges.Payment:
    args = {
        "customer_id": CUSTOMER,
        "amount": Decimal("25.00"),
        "currency": "SGD",
        "purpose": "activation",
        "idempotency_key": key,
        "gateway": gateway,
    } | kwargs
    async with transaction(runtime.db) as s:
        return await charges.charge(s, SAGA, **args)


async def count_payments(runtime) -> int:
    async with runtime.engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM payment.payment"))).scalar_one()


async def test_a_charge_is_approved_and_audited(runtime):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway(runtime.db)
    payment = await do_charge(runtime, gateway)
    assert re.fullmatch(r"PAY-\d{6}", payment.id)
    assert payment.status == "approved"
    assert payment.gateway_ref.startswith("pi_")
    assert payment.payment_method_id == "PM-000001"
    assert payment.amount == Decimal("25.00") and payment.decline_code is None
    async with runtime.db() as s:
        events = await events_for(s, "payment", payment.id)
    assert [e.event_type for e in events] == ["payment.approved"]
    assert events[0].actor == SAGA.actor and events[0].payload["amount"] == "25.00"


async def test_a_payment_the_callers_read_missed_is_returned_as_it_is(runtime):
    """charge(known=...): the caller read the key's payment in the statement that took the key's
    lock, which may miss a charge of the key committed while it waited; the gateway answers the key
    from its record and that payment comes back unchanged, with no second row or audit event."""
    await add_card(runtime, "PM-000001")
    gateway = MockGateway(runtime.db)
    first = await do_charge(runtime, gateway)
    async with transaction(runtime.db) as s:
        card = await s.get(PaymentMethod, "PM-000001")
        again = await charges.charge(
            s,
            SAGA,
            customer_id=CUSTOMER,
            amount=Decimal("25.00"),
            currency="SGD",
            purpose="activation",
            idempotency_key="order-ORD-000001:activation",
            gateway=gateway,
            key_locked=True,
            known=(None, card),
        )
    assert (again.id, again.status, again.attempted_at) == (first.id, "approved", first.attempted_at)
    assert await count_payments(runtime) == 1
    async with runtime.db() as s:
        assert len(await authorizations_for(s, "order-ORD-000001:")) == 1
        assert [e.event_type for e in await events_for(s, "payment", first.id)] == ["payment.approved"]


async def test_the_same_key_charges_once(runtime):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway(runtime.db)
    first = await do_charge(runtime, gateway)
    second = await do_charge(runtime, gateway)
    assert second.id == first.id and second.gateway_ref == first.gateway_ref
    assert gateway.authorizations == 1
    assert await count_payments(runtime) == 1


async def test_ten_concurrent_charges_with_one_key_make_one_row_and_one_authorization(runtime):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway(
        runtime.db, latency=0.05
    )  # the first call is still at the gateway while the others arrive
    results = await asyncio.gather(*(do_charge(runtime, gateway) for _ in range(10)))
    assert len({p.id for p in results}) == 1
    assert {p.status for p in results} == {"approved"}
    assert gateway.authorizations == 1
    assert await count_payments(runtime) == 1


async def test_different_keys_are_different_charges(runtime):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway(runtime.db)
    a = await do_charge(runtime, gateway, key="subscription-SUB-000001:renewal-1", purpose="renewal")
    b = await do_charge(runtime, gateway, key="subscription-SUB-000001:renewal-2", purpose="renewal")
    assert a.id != b.id and gateway.authorizations == 2
    async with runtime.db() as s:
        both = await charges.payments_for_key(s, "subscription-SUB-000001:")
        rows, total = await charges.list_payments(s, customer_id=CUSTOMER, limit=1)
    assert [p.id for p in both] == [a.id, b.id]
    assert total == 2 and [p.id for p in rows] == [b.id]  # newest first


async def test_a_decline_is_persisted_and_returned_not_raised(runtime):
    await add_card(runtime, "PM-000001", token="tok_DECLINE_me")
    gateway = MockGateway(runtime.db)
    payment = await do_charge(runtime, gateway)
    assert payment.status == "declined"
    assert payment.decline_code == "card_declined"
    assert payment.decline_reason == "card_declined_by_issuer"
    async with runtime.db() as s:
        stored = await charges.get_payment(s, payment.id)
        events = await events_for(s, "payment", payment.id)
    assert stored.status == "declined"
    assert [e.event_type for e in events] == ["payment.declined"]
    # Retrying the key returns the decline; it does not try the card again.
    assert (await do_charge(runtime, gateway)).id == payment.id and gateway.authorizations == 1


async def test_a_token_containing_fail_is_declined(runtime):
    await add_card(runtime, "PM-000001", token="tok_fail_42")
    assert (await do_charge(runtime, MockGateway(runtime.db))).status == "declined"


async def test_an_explicit_method_is_charged_instead_of_the_default(runtime):
    await add_card(runtime, "PM-000001")
    await add_card(runtime, "PM-000002", token="tok_DECLINE", is_default=False)
    payment = await do_charge(runtime, MockGateway(runtime.db), payment_method_id="PM-000002")
    assert payment.payment_method_id == "PM-000002" and payment.status == "declined"


class FlakyGateway(MockGateway):
    def __init__(self, db) -> None:
        super().__init__(db)
        self.down = True

    async def authorize(self, token, amount, currency, idempotency_key) -> GatewayResult:
        if self.down:
            raise ConnectionError("acquirer unreachable")
        return await super().authorize(token, amount, currency, idempotency_key)


async def test_a_gateway_error_is_retried_with_the_same_key(runtime):
    await add_card(runtime, "PM-000001")
    gateway = FlakyGateway(runtime.db)
    async with transaction(runtime.db) as s:
        with pytest.raises(ConnectionError):
            await charges.charge(
                s,
                SAGA,
                customer_id=CUSTOMER,
                amount=Decimal("25.00"),
                currency="SGD",
                purpose="activation",
                idempotency_key="k1",
                gateway=gateway,
            )
        errored = await charges.payment_for_key(s, "k1")
        assert errored.status == "errored" and errored.decline_code == "gateway_error"
    gateway.down = False
    payment = await do_charge(runtime, gateway, key="k1")
    assert payment.id == errored.id and payment.status == "approved"
    assert await count_payments(runtime) == 1


@pytest.mark.parametrize(
    ("setup", "kwargs", "code"),
    [
        ("none", {}, "payment.charge.method_not_found"),
        ("removed", {}, "payment.charge.method_not_found"),
        ("ok", {"amount": Decimal("0")}, "payment.charge.positive_amount"),
        ("ok", {"amount": Decimal("-5.00")}, "payment.charge.positive_amount"),
        ("other", {"payment_method_id": "PM-000009"}, "payment.charge.customer_matches_method"),
        ("ok", {"payment_method_id": "PM-999999"}, "payment.charge.method_not_found"),
        ("removed", {"payment_method_id": "PM-000001"}, "payment.charge.method_active"),
    ],
)
async def test_charge_rules(runtime, setup, kwargs, code):
    if setup == "ok":
        await add_card(runtime, "PM-000001")
    elif setup == "removed":
        await add_card(runtime, "PM-000001", status="removed", is_default=False)
    elif setup == "other":
        await add_card(runtime, "PM-000001")
        await add_card(runtime, "PM-000009", OTHER)
    gateway = MockGateway(runtime.db)
    with pytest.raises(PolicyViolation) as err:
        await do_charge(runtime, gateway, **kwargs)
    assert err.value.code == code
    assert gateway.authorizations == 0
    assert await count_payments(runtime) == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"purpose": "lunch"}, {"currency": "sgd"}, {"amount": Decimal("1.005")}, {"idempotency_key": ""}],
)
async def test_bad_input_is_refused_before_the_gateway(runtime, kwargs):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway(runtime.db)
    with pytest.raises(InvalidInput):
        await do_charge(runtime, gateway, **kwargs)
    assert gateway.authorizations == 0 and await count_payments(runtime) == 0


async def test_reusing_a_key_for_another_amount_is_refused(runtime):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway(runtime.db)
    await do_charge(runtime, gateway)
    with pytest.raises(PolicyViolation) as err:
        await do_charge(runtime, gateway, amount=Decimal("45.00"))
    assert err.value.code == "payment.charge.idempotency_key_reused"
    assert gateway.authorizations == 1


async def do_refund(runtime, gateway, key: str = "order-ORD-000001:activation"):
    async with transaction(runtime.db) as s:
        return await charges.refund(s, SAGA, idempotency_key=key, gateway=gateway)


async def test_refund_is_idempotent(runtime):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway(runtime.db)
    payment = await do_charge(runtime, gateway)
    refunded = await do_refund(runtime, gateway)
    again = await do_refund(runtime, gateway)
    assert refunded.id == payment.id and refunded.status == "refunded"
    assert refunded.refund_ref.startswith("re_") and refunded.refunded_at is not None
    assert again.status == "refunded" and again.refund_ref == refunded.refund_ref
    assert gateway.refunds == 1
    async with runtime.db() as s:
        events = await events_for(s, "payment", payment.id)
    assert [e.event_type for e in events] == ["payment.approved", "payment.refunded"]


async def test_refund_without_a_charge_is_a_no_op(runtime):
    gateway = MockGateway(runtime.db)
    assert await do_refund(runtime, gateway, key="order-ORD-000404:activation") is None
    assert gateway.refunds == 0 and await count_payments(runtime) == 0


async def test_a_declined_charge_is_not_refunded(runtime):
    await add_card(runtime, "PM-000001", token="tok_DECLINE")
    gateway = MockGateway(runtime.db)
    await do_charge(runtime, gateway)
    payment = await do_refund(runtime, gateway)
    assert payment.status == "declined" and gateway.refunds == 0


async def test_concurrent_refunds_give_the_money_back_once(runtime):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway(runtime.db, latency=0.02)
    await do_charge(runtime, gateway)
    results = await asyncio.gather(*(do_refund(runtime, gateway) for _ in range(5)))
    assert {p.status for p in results} == {"refunded"}
    assert gateway.refunds == 1


# --------------------------------------------------------------------------- unknown outcomes


def faulty(runtime, task_type: str, fault_type: str) -> MockGateway:
    return MockGateway(
        runtime.db, faults=FixedFaults(Fault("FI_T", task_type, fault_type, 1.0)), timeout=0.05
    )


async def gateway_ledger(runtime, key: str = "order-ORD-000001:activation"):
    async with runtime.db() as s:
        return await authorizations_for(s, key), await live_authorizations_for(s, key)


async def payments(runtime) -> list[charges.Payment]:
    async with runtime.db() as s:
        return await charges.payments_for_key(s, "order-ORD-000001:activation")


@pytest.mark.parametrize(
    ("fault_type", "error"), [("lost_response", GatewayResponseLost), ("timeout", GatewayTimeout)]
)
async def test_an_unknown_outcome_is_reconciled_by_key_one_authorisation_one_payment(
    runtime, fault_type, error
):
    await add_card(runtime, "PM-000001")
    with pytest.raises(error):
        await do_charge(runtime, faulty(runtime, "PAYMENT_CHARGE", fault_type))
    assert await payments(runtime) == []  # the caller's transaction rolled back
    retry = MockGateway(runtime.db)  # the retry may run on another worker
    payment = await do_charge(runtime, retry)
    again = await do_charge(runtime, retry)
    auths, live = await gateway_ledger(runtime)
    assert payment.status == "approved" and again.id == payment.id
    assert len(auths) == 1 and [a.id for a in live] == [payment.gateway_ref]
    assert [(p.id, p.status) for p in await payments(runtime)] == [(payment.id, "approved")]
    # lost_response: the gateway had it, the retry only read it back; timeout: the retry charged.
    assert retry.authorizations == (0 if fault_type == "lost_response" else 1)


async def test_a_charge_lost_with_its_process_is_refunded_from_the_gateway_ledger(runtime):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway(runtime.db)
    with pytest.raises(RuntimeError):
        async with transaction(runtime.db) as s:
            await charges.charge(
                s,
                SAGA,
                customer_id=CUSTOMER,
                amount=Decimal("25.00"),
                currency="SGD",
                purpose="activation",
                idempotency_key="order-ORD-000001:activation",
                gateway=gateway,
            )
            raise RuntimeError("worker killed before the commit")
    assert await payments(runtime) == [] and len((await gateway_ledger(runtime))[1]) == 1
    assert await do_refund(runtime, gateway) is None
    again = await do_refund(runtime, gateway)
    auths, live = await gateway_ledger(runtime)
    assert again is None and len(auths) == 1 and live == [] and gateway.refunds == 1
    async with runtime.db() as s:
        events = await events_for(s, "payment", auths[0].id)
    assert [e.event_type for e in events] == ["payment.refunded_unrecorded"]


async def test_a_charge_retried_after_its_process_died_takes_the_money_once(runtime):
    await add_card(runtime, "PM-000001")
    first = MockGateway(runtime.db)
    with pytest.raises(RuntimeError):
        async with transaction(runtime.db) as s:
            await charges.charge(
                s,
                SAGA,
                customer_id=CUSTOMER,
                amount=Decimal("25.00"),
                currency="SGD",
                purpose="activation",
                idempotency_key="order-ORD-000001:activation",
                gateway=first,
            )
            raise RuntimeError("worker killed before the commit")
    retry = MockGateway(runtime.db)  # the retry runs on another worker
    payment = await do_charge(runtime, retry)
    auths, live = await gateway_ledger(runtime)
    assert payment.status == "approved" and [a.id for a in live] == [payment.gateway_ref]
    assert len(auths) == 1 and (first.authorizations, retry.authorizations) == (1, 0)


async def commit_errored(runtime, gateway, key: str = "order-ORD-000001:activation") -> charges.Payment:
    """A caller that commits the charge it could not finish: the row stays `errored`."""
    async with transaction(runtime.db) as s:
        with pytest.raises(GatewayError):
            await charges.charge(
                s,
                SAGA,
                customer_id=CUSTOMER,
                amount=Decimal("25.00"),
                currency="SGD",
                purpose="activation",
                idempotency_key=key,
                gateway=gateway,
            )
        payment = await charges.payment_for_key(s, key)
    assert payment.status == "errored"
    return payment


async def test_refund_of_an_errored_payment_the_gateway_took_records_it_then_refunds_it(runtime):
    await add_card(runtime, "PM-000001")
    errored = await commit_errored(runtime, faulty(runtime, "PAYMENT_CHARGE", "lost_response"))
    gateway = MockGateway(runtime.db)
    refunded = await do_refund(runtime, gateway)
    auths, live = await gateway_ledger(runtime)
    assert refunded.id == errored.id and refunded.status == "refunded"
    assert refunded.gateway_ref == auths[0].id and live == [] and gateway.refunds == 1
    async with runtime.db() as s:
        events = await events_for(s, "payment", errored.id)
    assert [e.event_type for e in events] == ["payment.errored", "payment.approved", "payment.refunded"]


async def test_refund_of_an_errored_payment_the_gateway_never_took_closes_the_key(runtime):
    await add_card(runtime, "PM-000001")
    errored = await commit_errored(runtime, faulty(runtime, "PAYMENT_CHARGE", "unavailable"))
    gateway = MockGateway(runtime.db)
    closed = await do_refund(runtime, gateway)
    assert closed.id == errored.id and (closed.status, closed.decline_code) == ("declined", "not_charged")
    # A late retry of the charge cannot take money after its compensation ran.
    late = await do_charge(runtime, gateway)
    assert late.id == errored.id and late.status == "declined"
    assert gateway.authorizations == 0 and (await gateway_ledger(runtime))[0] == []


@pytest.mark.parametrize(
    ("fault_type", "error"),
    [
        ("unavailable", GatewayUnavailable),
        ("lost_response", GatewayResponseLost),
        ("decline", RefundDeclined),
    ],
)
async def test_a_refund_the_gateway_did_not_confirm_raises_retryable_and_a_retry_finishes_it(
    runtime, fault_type, error
):
    await add_card(runtime, "PM-000001")
    payment = await do_charge(runtime, MockGateway(runtime.db))
    with pytest.raises(error) as err:
        await do_refund(runtime, faulty(runtime, "PAYMENT_REFUND", fault_type))
    assert isinstance(err.value, GatewayError)
    assert [p.status for p in await payments(runtime)] == ["approved"]
    gateway = MockGateway(runtime.db)
    refunded = await do_refund(runtime, gateway)
    async with runtime.db() as s:
        refunds = await refunds_for(s, "order-ORD-000001:activation")
    assert refunded.id == payment.id and refunded.status == "refunded"
    assert [r.id for r in refunds] == [refunded.refund_ref]
    assert (await gateway_ledger(runtime))[1] == []


async def test_activities_make_gateway_trouble_retryable_and_rules_not(runtime):
    from temporalio.exceptions import ApplicationError

    from activities.ordering import ChargeRequest, OrderActivities, RefundRequest

    await add_card(runtime, "PM-000001")
    request = ChargeRequest("ORD-000001", CUSTOMER, "25.00", "SGD", "order-ORD-000001:activation")
    down = OrderActivities(runtime, faulty(runtime, "PAYMENT_CHARGE", "unavailable"))
    with pytest.raises(ApplicationError) as err:
        await down.charge_activation(request)
    assert err.value.type == "payment.gateway_unavailable" and not err.value.non_retryable
    up = OrderActivities(runtime, MockGateway(runtime.db))
    assert (await up.charge_activation(request)).approved
    refund_down = OrderActivities(runtime, faulty(runtime, "PAYMENT_REFUND", "decline"))
    with pytest.raises(ApplicationError) as err:
        await refund_down.refund_charge(RefundRequest("order-ORD-000001:activation"))
    assert err.value.type == "payment.refund.declined" and not err.value.non_retryable
    no_card = ChargeRequest("ORD-000002", OTHER, "25.00", "SGD", "order-ORD-000002:activation")
    with pytest.raises(ApplicationError) as err:
        await up.charge_activation(no_card)
    assert err.value.type == "payment.charge.method_not_found" and err.value.non_retryable

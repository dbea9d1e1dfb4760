"""Card charges against the real Postgres: exactly once per idempotency key (also under concurrent
calls), declines kept and returned, idempotent refunds, the reference's rule codes, audit rows."""

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
from domains.payment.gateway import GatewayResult, MockGateway
from domains.payment.models import PaymentMethod

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
    gateway = MockGateway()
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


async def test_the_same_key_charges_once(runtime):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway()
    first = await do_charge(runtime, gateway)
    second = await do_charge(runtime, gateway)
    assert second.id == first.id and second.gateway_ref == first.gateway_ref
    assert gateway.authorizations == 1
    assert await count_payments(runtime) == 1


async def test_ten_concurrent_charges_with_one_key_make_one_row_and_one_authorization(runtime):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway(latency=0.05)  # the first call is still at the gateway while the others arrive
    results = await asyncio.gather(*(do_charge(runtime, gateway) for _ in range(10)))
    assert len({p.id for p in results}) == 1
    assert {p.status for p in results} == {"approved"}
    assert gateway.authorizations == 1
    assert await count_payments(runtime) == 1


async def test_different_keys_are_different_charges(runtime):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway()
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
    gateway = MockGateway()
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
    assert (await do_charge(runtime, MockGateway())).status == "declined"


async def test_an_explicit_method_is_charged_instead_of_the_default(runtime):
    await add_card(runtime, "PM-000001")
    await add_card(runtime, "PM-000002", token="tok_DECLINE", is_default=False)
    payment = await do_charge(runtime, MockGateway(), payment_method_id="PM-000002")
    assert payment.payment_method_id == "PM-000002" and payment.status == "declined"


class FlakyGateway(MockGateway):
    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def authorize(self, token, amount, currency, idempotency_key) -> GatewayResult:
        if self.down:
            raise ConnectionError("acquirer unreachable")
        return await super().authorize(token, amount, currency, idempotency_key)


async def test_a_gateway_error_is_retried_with_the_same_key(runtime):
    await add_card(runtime, "PM-000001")
    gateway = FlakyGateway()
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
    gateway = MockGateway()
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
    gateway = MockGateway()
    with pytest.raises(InvalidInput):
        await do_charge(runtime, gateway, **kwargs)
    assert gateway.authorizations == 0 and await count_payments(runtime) == 0


async def test_reusing_a_key_for_another_amount_is_refused(runtime):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway()
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
    gateway = MockGateway()
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
    gateway = MockGateway()
    assert await do_refund(runtime, gateway, key="order-ORD-000404:activation") is None
    assert gateway.refunds == 0 and await count_payments(runtime) == 0


async def test_a_declined_charge_is_not_refunded(runtime):
    await add_card(runtime, "PM-000001", token="tok_DECLINE")
    gateway = MockGateway()
    await do_charge(runtime, gateway)
    payment = await do_refund(runtime, gateway)
    assert payment.status == "declined" and gateway.refunds == 0


async def test_concurrent_refunds_give_the_money_back_once(runtime):
    await add_card(runtime, "PM-000001")
    gateway = MockGateway(latency=0.02)
    await do_charge(runtime, gateway)
    results = await asyncio.gather(*(do_refund(runtime, gateway) for _ in range(5)))
    assert {p.status for p in results} == {"refunded"}
    assert gateway.refunds == 1

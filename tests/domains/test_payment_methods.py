"""Cards on file against the real Postgres: tokenization (Luhn, brand, DECLINE token, the number
never stored), expiry by the business clock, at most five cards, defaults, removal, audit rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from core.errors import InvalidInput, NotFound, PolicyViolation
from domains.audit.services import events_for
from domains.crm import services as crm
from domains.payment import services, tokenizer

PORTAL = RequestContext(actor="ada@example.com", channel="portal-self-serve", service_identity="portal")
VISA = "4242424242424242"
MASTERCARD = "5555555555554444"
MASTERCARD_2_SERIES = "2223003122003222"
AMEX = "378282246310005"


async def new_customer(runtime, status: str = "active") -> str:
    async with transaction(runtime.db) as s:
        customer = await crm.create_customer(
            s, PORTAL, given_name="Ada", family_name="Lovelace", email=None, phone="+6591234567"
        )
    if status != "active":
        async with transaction(runtime.db) as s:
            await crm.update_customer(s, PORTAL, customer.id, status=status)
    return customer.id


async def add(runtime, customer_id: str, card: str | None = VISA, **kw):
    args = {"exp_month": 12, "exp_year": 2099} | kw
    async with transaction(runtime.db) as s:
        return await services.add_payment_method(s, PORTAL, customer_id=customer_id, card_number=card, **args)


async def count_methods(runtime) -> int:
    async with runtime.engine.connect() as conn:
        return (await conn.execute(text("select count(*) from payment.payment_method"))).scalar_one()


# --------------------------------------------------------------------------------------- tokenizer


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        (VISA, "visa"),
        (MASTERCARD, "mastercard"),
        (MASTERCARD_2_SERIES, "mastercard"),
        (AMEX, "amex"),
        ("6011111111111117", "unknown"),
    ],
)
def test_brand_is_detected_from_the_bin(number, brand):
    card = tokenizer.tokenize(number)
    assert card.brand == brand and card.last4 == number[-4:]


def test_token_is_never_the_number_and_differs_each_time():
    first, second = tokenizer.tokenize(VISA), tokenizer.tokenize(VISA)
    assert first.token.startswith("tok_") and first.token != second.token
    assert VISA not in first.token and VISA not in repr(first)


def test_the_declining_test_card_tokenizes_to_a_decline_token():
    assert "DECLINE" in tokenizer.tokenize("4000 0000 0000 0002").token
    assert "DECLINE" not in tokenizer.tokenize(VISA).token


@pytest.mark.parametrize(
    "number", ["4242424242424241", "1234", "42424242424242424242", "4242-abcd-4242-4242", ""]
)
def test_invalid_card_numbers_are_refused_without_echoing_them(number):
    with pytest.raises(InvalidInput) as err:
        tokenizer.tokenize(number)
    assert err.value.code == "payment_method.add.card_number_invalid"
    assert not number or number not in str(err.value)


def test_luhn():
    assert tokenizer.luhn_valid("79927398713") and not tokenizer.luhn_valid("79927398710")


# -------------------------------------------------------------------------------------------- add


async def test_first_card_becomes_the_default_and_nothing_stores_the_number(runtime):
    customer_id = await new_customer(runtime)
    method = await add(runtime, customer_id, name_on_card="ADA LOVELACE")
    assert method.id.startswith("PM-") and len(method.id) == 9
    assert method.is_default and method.status == "active" and method.token_provider == "mock"
    assert (method.brand, method.last4) == ("visa", "4242")
    async with runtime.engine.connect() as conn:
        dump = ""
        for table in ("payment.payment_method", "audit.domain_event"):
            dump += "\n".join(r[0] for r in await conn.execute(text(f"select t::text from {table} t")))
    assert "4242" in dump and VISA not in dump


async def test_add_writes_an_audit_row_with_the_callers_identity(runtime):
    customer_id = await new_customer(runtime)
    method = await add(runtime, customer_id)
    async with runtime.db() as s:
        (event,) = await events_for(s, "payment_method", method.id)
    assert event.event_type == "payment_method.added"
    assert (event.actor, event.channel, event.service_identity) == (
        "ada@example.com",
        "portal-self-serve",
        "portal",
    )
    assert event.payload["customerId"] == customer_id and VISA not in str(event.payload)


async def test_a_later_card_is_not_default_unless_asked(runtime):
    customer_id = await new_customer(runtime)
    first = await add(runtime, customer_id)
    second = await add(runtime, customer_id, MASTERCARD)
    third = await add(runtime, customer_id, AMEX, set_default=True)
    async with runtime.db() as s:
        default = await services.default_payment_method(s, customer_id)
        methods = await services.list_payment_methods(s, customer_id)
    assert not second.is_default and default is not None and default.id == third.id
    assert [m.id for m in methods if m.is_default] == [third.id] and first.id in [m.id for m in methods]


async def test_expired_card_is_refused_by_the_business_clock(runtime):
    customer_id = await new_customer(runtime)
    clock.freeze(datetime(2031, 1, 1, tzinfo=UTC))
    with pytest.raises(PolicyViolation) as err:
        await add(runtime, customer_id, exp_month=12, exp_year=2030)
    assert err.value.code == "payment_method.add.card_not_expired"
    assert (
        await add(runtime, customer_id, exp_month=1, exp_year=2031)
    ).exp_month == 1  # good through January
    assert await count_methods(runtime) == 1


async def test_a_sixth_active_card_is_refused(runtime):
    customer_id = await new_customer(runtime)
    for _ in range(5):
        await add(runtime, customer_id)
    with pytest.raises(PolicyViolation) as err:
        await add(runtime, customer_id)
    assert err.value.code == "payment_method.add.at_most_n_methods"
    assert await count_methods(runtime) == 5


async def test_removed_cards_do_not_count_toward_the_limit(runtime):
    customer_id = await new_customer(runtime)
    methods = [await add(runtime, customer_id) for _ in range(5)]
    async with transaction(runtime.db) as s:
        await services.remove_payment_method(s, PORTAL, methods[0].id)
    assert (await add(runtime, customer_id)).status == "active"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("suspended", "payment_method.add.customer_active_or_pending"),
        ("closed", "payment_method.add.customer_active_or_pending"),
    ],
)
async def test_card_needs_an_active_or_pending_customer(runtime, status, code):
    customer_id = await new_customer(runtime, status)
    with pytest.raises(PolicyViolation) as err:
        await add(runtime, customer_id)
    assert err.value.code == code and await count_methods(runtime) == 0


async def test_card_for_an_unknown_customer_is_refused(runtime):
    with pytest.raises(PolicyViolation) as err:
        await add(runtime, "CUST-00000000")
    assert err.value.code == "payment_method.add.customer_exists" and await count_methods(runtime) == 0


async def test_a_channel_token_is_accepted_as_is_but_not_a_card_number_in_disguise(runtime):
    customer_id = await new_customer(runtime)
    method = await add(runtime, customer_id, None, token="tok_DECLINE_fromportal", last4="0002", brand="visa")
    assert method.token == "tok_DECLINE_fromportal" and method.last4 == "0002"
    with pytest.raises(InvalidInput):
        await add(runtime, customer_id, None, token=VISA)
    with pytest.raises(PolicyViolation) as err:
        await add(runtime, customer_id, None, token="tok_DECLINE_fromportal")
    assert err.value.code == "payment_method.add.token_unique"


async def test_the_decline_card_is_stored_as_a_decline_token(runtime):
    customer_id = await new_customer(runtime)
    method = await add(runtime, customer_id, "4000000000000002")
    assert "DECLINE" in method.token and method.last4 == "0002"


# ------------------------------------------------------------------------------ remove and default


async def test_removing_the_default_promotes_the_newest_other_card(runtime):
    customer_id = await new_customer(runtime)
    first = await add(runtime, customer_id)
    await add(runtime, customer_id, MASTERCARD)
    newest = await add(runtime, customer_id, AMEX)
    async with transaction(runtime.db) as s:
        removed = await services.remove_payment_method(s, PORTAL, first.id)
    async with runtime.db() as s:
        default = await services.default_payment_method(s, customer_id)
        listed = await services.list_payment_methods(s, customer_id)
    assert removed.status == "removed" and not removed.is_default and removed.removed_at is not None
    assert default is not None and default.id == newest.id
    assert first.id not in [m.id for m in listed]


async def test_removing_the_last_card_leaves_no_default(runtime):
    customer_id = await new_customer(runtime)
    only = await add(runtime, customer_id)
    async with transaction(runtime.db) as s:
        await services.remove_payment_method(s, PORTAL, only.id)
    async with runtime.db() as s:
        assert await services.default_payment_method(s, customer_id) is None


async def test_remove_unknown_or_twice_is_refused(runtime):
    customer_id = await new_customer(runtime)
    method = await add(runtime, customer_id)
    with pytest.raises(NotFound) as err:
        async with transaction(runtime.db) as s:
            await services.remove_payment_method(s, PORTAL, "PM-999999")
    assert err.value.code == "payment_method.remove.not_found"
    async with transaction(runtime.db) as s:
        await services.remove_payment_method(s, PORTAL, method.id)
    with pytest.raises(PolicyViolation) as err:
        async with transaction(runtime.db) as s:
            await services.remove_payment_method(s, PORTAL, method.id)
    assert err.value.code == "payment_method.remove.already_removed"


async def test_set_default_moves_the_default_and_refuses_removed_cards(runtime):
    customer_id = await new_customer(runtime)
    first = await add(runtime, customer_id)
    second = await add(runtime, customer_id, MASTERCARD)
    async with transaction(runtime.db) as s:
        await services.set_default(s, PORTAL, second.id)
    async with runtime.db() as s:
        assert (await services.default_payment_method(s, customer_id)).id == second.id
    async with transaction(runtime.db) as s:
        await services.remove_payment_method(s, PORTAL, first.id)
    with pytest.raises(PolicyViolation) as err:
        async with transaction(runtime.db) as s:
            await services.set_default(s, PORTAL, first.id)
    assert err.value.code == "payment_method.set_default.removed"
    with pytest.raises(NotFound) as err:
        async with transaction(runtime.db) as s:
            await services.set_default(s, PORTAL, "PM-999999")
    assert err.value.code == "payment_method.set_default.not_found"
    async with runtime.db() as s:
        events = [e.event_type for e in await events_for(s, "payment_method", second.id)]
    assert events == ["payment_method.added", "payment_method.default_set"]

"""The line's actions over HTTP (/bss-api/v1/subscription/{id}/…): each is an update of the line's
real SubscriptionWorkflow on the Temporal dev server (`saga` fixture), against the test's Postgres.
Refusals answer the rule code before anything happens; bad bodies are 400 and change nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from core.clock import clock
from domains.subscription.history import EXHAUSTED
from tests.api.order_flow import SUBSCRIPTIONS, error, scalar
from tests.api.subscription_flow import (
    balance,
    burn_data,
    footprint,
    line,
    live_line,
    payments,
    workflow_status,
)
from tests.conftest import token_headers
from tests.usage_harness import active_line

ADMIN = "/bss-api/v1/admin/catalog"
DECLINING_CARD = "4000000000000002"


async def new_default_card(runtime, customer_id: str, card: str) -> None:
    from core.db import transaction
    from domains.payment.services import add_payment_method
    from tests.api.order_flow import CTX

    async with transaction(runtime.db) as s:
        await add_payment_method(
            s, CTX, customer_id=customer_id, card_number=card, exp_month=12, exp_year=2035, set_default=True
        )


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_vas_adds_the_allowance_and_one_idempotency_key_charges_once(saga, api):
    sub_id, cust = await live_line(saga, api)
    vas = f"{SUBSCRIPTIONS}/{sub_id}/vas"
    key = {"Idempotency-Key": "topup-1"}

    first = await api.post(vas, json={"vasOfferingId": "VAS_DATA_1GB"}, headers=key)
    assert first.status_code == 200, first.text
    assert balance(first.json())["total"] == 5120 + 1024
    again = await api.post(vas, json={"vasOfferingId": "VAS_DATA_1GB"}, headers=key)
    assert again.status_code == 200, again.text
    assert balance(again.json())["total"] == 5120 + 1024  # answered, not bought twice
    assert await payments(saga.runtime, cust, "vas") == 1
    assert (
        await scalar(
            saga.runtime,
            "SELECT count(*) FROM subscription.vas_purchase WHERE subscription_id = :s",
            s=sub_id,
        )
        == 1
    )

    # The same key for another top-up is refused rather than answered with the first one.
    before = await footprint(saga.runtime, sub_id)
    error(
        await api.post(vas, json={"vasOfferingId": "VAS_DATA_5GB"}, headers=key),
        422,
        "idempotency_key.reused",
    )
    assert await footprint(saga.runtime, sub_id) == before

    # Without a key, each request is a purchase of its own.
    third = await api.post(vas, json={"vasOfferingId": "VAS_DATA_1GB"})
    assert third.status_code == 200, third.text
    assert balance(third.json())["total"] == 5120 + 2048
    assert await payments(saga.runtime, cust, "vas") == 2

    error(
        await api.post(vas, json={"vasOfferingId": "VAS_NOPE"}),
        422,
        "subscription.vas_purchase.vas_offering_sellable",
    )
    assert await payments(saga.runtime, cust, "vas") == 2


async def test_vas_brings_back_a_line_blocked_by_real_usage(saga, api):
    sub_id, cust = await live_line(saga, api)
    msisdn = (await line(api, sub_id))["msisdn"]
    assert (await burn_data(api, msisdn, 4096)).status_code == 201
    assert (await burn_data(api, msisdn, 1024)).status_code == 201  # the last MB: rating blocks the line
    blocked = await line(api, sub_id)
    assert (blocked["state"], blocked["stateReason"]) == ("blocked", EXHAUSTED)
    assert balance(blocked)["remaining"] == 0
    error(await burn_data(api, msisdn, 1), 422)  # no usage on a blocked line

    r = await api.post(f"{SUBSCRIPTIONS}/{sub_id}/vas", json={"vasOfferingId": "VAS_DATA_1GB"})
    assert r.status_code == 200, r.text
    back = r.json()
    assert (back["state"], back["stateReason"]) == ("active", None)
    assert balance(back)["remaining"] == 1024
    assert await payments(saga.runtime, cust, "vas") == 1
    assert (await burn_data(api, msisdn, 100)).status_code == 201  # usage flows again
    assert balance(await line(api, sub_id))["remaining"] == 924


async def test_plan_change_shows_as_pending_and_delete_clears_it(saga, api):
    sub_id, _ = await live_line(saga, api)
    change = f"{SUBSCRIPTIONS}/{sub_id}/plan-change"

    before = await footprint(saga.runtime, sub_id)
    error(
        await api.post(change, json={"offeringId": "PLAN_S"}), 422, "subscription.plan_change.same_offering"
    )
    error(
        await api.post(change, json={"offeringId": "PLAN_ZZ"}),
        422,
        "subscription.plan_change.target_not_sellable_now",
    )
    assert await footprint(saga.runtime, sub_id) == before

    r = await api.post(change, json={"offeringId": "PLAN_M"})
    assert r.status_code == 200, r.text
    pending = r.json()["pendingChange"]
    assert pending["offeringId"] == "PLAN_M" and pending["quotedPriceId"] == "PRICE_PLAN_M"
    shown = await line(api, sub_id)
    assert shown["pendingChange"] == pending and shown["offeringId"] == "PLAN_S"
    assert pending["effectiveAt"] == shown["currentPeriodEnd"]  # at the next renewal, not now
    assert (shown["pendingPriceMigration"], shown["dayPasses"]) == (None, [])
    error(
        await api.post(change, json={"offeringId": "PLAN_L"}), 422, "subscription.plan_change.already_pending"
    )

    cleared = await api.delete(change)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["pendingChange"] is None
    assert (await line(api, sub_id))["pendingChange"] is None
    again = await api.delete(change)  # nothing pending is not an error
    assert again.status_code == 200 and again.json()["pendingChange"] is None


async def test_each_action_is_audited_under_whoever_asked_not_the_workflow(saga, api):
    sub_id, _ = await live_line(saga, api)
    alice = await token_headers(saga.runtime, "ops-alice", "operator")
    base = f"{SUBSCRIPTIONS}/{sub_id}"
    for method, path, body in [
        ("POST", "vas", {"vasOfferingId": "VAS_DATA_1GB"}),
        ("POST", "plan-change", {"offeringId": "PLAN_M"}),
        ("DELETE", "plan-change", None),
        ("POST", "terminate", {"reason": "customer left"}),
    ]:
        r = await api.request(method, f"{base}/{path}", json=body, headers=alice)
        assert r.status_code == 200, r.text
    rows = {
        event: actor
        for event, actor in (
            await scalar(
                saga.runtime,
                "SELECT array_agg(ARRAY[event_type, actor]) FROM audit.domain_event "
                "WHERE aggregate_id = :s AND event_type IN ('subscription.vas_purchased', "
                "'subscription.plan_change_scheduled', 'subscription.plan_change_cancelled', "
                "'subscription.terminated')",
                s=sub_id,
            )
        )
    }
    assert rows == {
        "subscription.vas_purchased": "ops-alice",
        "subscription.plan_change_scheduled": "ops-alice",
        "subscription.plan_change_cancelled": "ops-alice",
        "subscription.terminated": "ops-alice",
    }


async def test_terminate_quarantines_the_number_recycles_the_esim_and_refuses_what_follows(saga, api):
    sub_id, cust = await live_line(saga, api)
    view = await line(api, sub_id)
    r = await api.post(f"{SUBSCRIPTIONS}/{sub_id}/terminate", json={"reason": "moving abroad"})
    assert r.status_code == 200, r.text
    ended = r.json()
    assert (ended["state"], ended["stateReason"]) == ("terminated", "moving abroad")
    assert ended["terminatedAt"]
    number = await scalar(
        saga.runtime, "SELECT status FROM inventory.msisdn WHERE msisdn = :m", m=view["msisdn"]
    )
    until = await scalar(
        saga.runtime, "SELECT quarantine_until FROM inventory.msisdn WHERE msisdn = :m", m=view["msisdn"]
    )
    profile = await scalar(
        saga.runtime, "SELECT profile_state FROM inventory.esim_profile WHERE iccid = :i", i=view["iccid"]
    )
    assert (number, profile) == ("quarantine", "available")
    assert until - clock.now() > timedelta(days=89)
    # The workflow deprovisions the network after the update has answered, then completes.
    await asyncio.wait_for(saga.client.get_workflow_handle(f"subscription-{sub_id}").result(), 30)
    assert await workflow_status(saga, sub_id) == "COMPLETED"

    before = await footprint(saga.runtime, sub_id)
    base = f"{SUBSCRIPTIONS}/{sub_id}"
    error(await api.post(f"{base}/terminate"), 422, "subscription.terminate.invalid_state")
    error(
        await api.post(f"{base}/vas", json={"vasOfferingId": "VAS_DATA_1GB"}),
        422,
        "subscription.vas_purchase.not_if_terminated",
    )
    error(await api.post(f"{base}/renew"), 422, "subscription.renew.only_if_active_or_blocked")
    error(
        await api.post(f"{base}/plan-change", json={"offeringId": "PLAN_M"}),
        422,
        "subscription.plan_change.not_eligible_state",
    )
    error(await api.delete(f"{base}/plan-change"), 422, "subscription.plan_change.not_eligible_state")
    assert await footprint(saga.runtime, sub_id) == before
    assert await payments(saga.runtime, cust, "vas") == 0


async def test_renew_now_charges_once_and_starts_a_new_period(saga, api):
    sub_id, cust = await live_line(saga, api)
    old_end = (await line(api, sub_id))["currentPeriodEnd"]
    key = {"Idempotency-Key": "renew-by-hand-1"}

    r = await api.post(f"{SUBSCRIPTIONS}/{sub_id}/renew", headers=key)
    assert r.status_code == 200, r.text
    renewed = r.json()
    assert renewed["state"] == "active"
    assert _at(renewed["currentPeriodStart"]) >= _at(old_end) - timedelta(days=30)
    assert _at(renewed["currentPeriodEnd"]) - _at(renewed["currentPeriodStart"]) == timedelta(days=30)
    assert renewed["currentPeriodEnd"] != old_end
    assert await payments(saga.runtime, cust, "renewal") == 1

    again = await api.post(f"{SUBSCRIPTIONS}/{sub_id}/renew", headers=key)
    assert again.status_code == 200, again.text
    assert again.json()["currentPeriodEnd"] == renewed["currentPeriodEnd"]
    assert await payments(saga.runtime, cust, "renewal") == 1


async def test_renew_now_with_a_declined_card_is_refused_and_the_line_waits_blocked(saga, api):
    sub_id, cust = await live_line(saga, api)
    await new_default_card(saga.runtime, cust, DECLINING_CARD)
    body = error(
        await api.post(f"{SUBSCRIPTIONS}/{sub_id}/renew"), 422, "subscription.renew.payment_declined"
    )
    assert body["context"]["payment_id"]
    view = await line(api, sub_id)
    assert (view["state"], view["stateReason"]) == ("blocked", "renewal_declined")


async def test_unknown_lines_are_404_for_every_action(saga, api):
    base = f"{SUBSCRIPTIONS}/SUB-999999"
    for r in (
        await api.get(base),
        await api.post(f"{base}/vas", json={"vasOfferingId": "VAS_DATA_1GB"}),
        await api.post(f"{base}/renew"),
        await api.post(f"{base}/terminate"),
        await api.post(f"{base}/plan-change", json={"offeringId": "PLAN_M"}),
        await api.delete(f"{base}/plan-change"),
    ):
        error(r, 404, "subscription.not_found")


BAD = [
    ("post", "vas", {}),
    ("post", "vas", {"vasOfferingId": "VAS_DATA_1GB\u0000"}),
    ("post", "vas", {"vasOfferingId": "VAS_DATA_1GB", "quantity": 2}),
    ("post", "vas", {"vasOfferingId": 7}),
    ("post", "vas", ["VAS_DATA_1GB"]),
    ("post", "vas", {"vasOfferingId": "X" * 65}),
    ("post", "plan-change", {"offeringId": "plan m"}),
    ("post", "plan-change", {"offeringId": "PLAN_M", "when": "now"}),
    ("post", "plan-change", None),
    ("post", "terminate", {"reason": "x" * 201}),
    ("post", "terminate", {"reason": "bye\u0000"}),
    ("post", "terminate", {"why": "bye"}),
]


@pytest.mark.parametrize(
    ("method", "action", "body"), BAD, ids=[f"{a}-{i}" for i, (_, a, _b) in enumerate(BAD)]
)
async def test_bad_bodies_are_400_and_change_nothing(saga, api, method, action, body):
    sub_id, _ = await live_line(saga, api)
    before = await footprint(saga.runtime, sub_id)
    r = await api.request(method.upper(), f"{SUBSCRIPTIONS}/{sub_id}/{action}", json=body)
    error(r, 400, "request.invalid")
    assert await footprint(saga.runtime, sub_id) == before


async def test_bad_ids_keys_and_non_json_are_400_and_change_nothing(saga, api):
    sub_id, _ = await live_line(saga, api)
    before = await footprint(saga.runtime, sub_id)
    vas = f"{SUBSCRIPTIONS}/{sub_id}/vas"
    error(await api.post(f"{SUBSCRIPTIONS}/SUB%00001/renew"), 400)
    error(
        await api.post(vas, json={"vasOfferingId": "VAS_DATA_1GB"}, headers={"Idempotency-Key": "k" * 201}),
        400,
    )
    error(await api.post(vas, json={"vasOfferingId": "VAS_DATA_1GB"}, headers={"Idempotency-Key": " "}), 400)
    error(await api.post(vas, content=b"vasOfferingId=VAS_DATA_1GB"), 400)
    assert await footprint(saga.runtime, sub_id) == before


# ---- operator price migration (no workflow involved: renewals apply it) --------------------------


async def test_migrate_price_schedules_the_plans_live_lines_after_the_notice(api, runtime):
    on_s, _ = await active_line(runtime, "PLAN_S")
    also_s, _ = await active_line(runtime, "PLAN_S")
    on_m, _ = await active_line(runtime, "PLAN_M")
    price = await api.post(
        f"{ADMIN}/offering/PLAN_S/price", json={"id": "PRICE_PLAN_S_2027", "amount": "12.00"}
    )
    assert price.status_code == 201, price.text

    r = await api.post(
        f"{ADMIN}/offering/PLAN_S/migrate-price", json={"newPriceId": "PRICE_PLAN_S_2027", "noticeDays": 45}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"offeringId": "PLAN_S", "newPriceId": "PRICE_PLAN_S_2027", "linesScheduled": 2}
    for sub_id in (on_s, also_s):
        pending = (await line(api, sub_id))["pendingPriceMigration"]
        assert (pending["priceId"], pending["amount"], pending["currency"]) == (
            "PRICE_PLAN_S_2027",
            "12.00",
            "SGD",
        )
        assert abs(_at(pending["effectiveAt"]) - (clock.now() + timedelta(days=45))) < timedelta(minutes=1)
        assert (await line(api, sub_id))["price"]["amount"] == "10.00"  # unchanged until the renewal
    assert (await line(api, on_m))["pendingPriceMigration"] is None

    again = await api.post(f"{ADMIN}/offering/PLAN_S/migrate-price", json={"newPriceId": "PRICE_PLAN_S_2027"})
    assert again.json()["linesScheduled"] == 2  # harmless to repeat
    assert await scalar(runtime, "SELECT count(*) FROM subscription.price_migration") == 2


async def test_migrate_price_refusals_change_nothing(api, runtime):
    sub_id, _ = await active_line(runtime, "PLAN_S")
    url = f"{ADMIN}/offering/PLAN_S/migrate-price"
    # A price migration is admin's; a channel acting for someone anonymous never gets that far.
    anonymous = await token_headers(runtime, "chat", "channel", actor="anonymous")
    before = await footprint(runtime, sub_id)
    error(
        await api.post(url, json={"newPriceId": "PRICE_NONE"}),
        422,
        "subscription.migrate_price.unknown_price",
    )
    error(
        await api.post(url, json={"newPriceId": "PRICE_PLAN_M"}),
        422,
        "subscription.migrate_price.price_not_on_offering",
    )
    error(await api.post(f"{ADMIN}/offering/PLAN_ZZ/migrate-price", json={"newPriceId": "PRICE_PLAN_S"}), 404)
    error(
        await api.post(url, json={"newPriceId": "PRICE_PLAN_S"}, headers=anonymous),
        403,
        "auth.role.forbidden",
    )
    for body in (
        {},
        {"newPriceId": "PRICE_PLAN_S", "noticeDays": -1},
        {"newPriceId": "PRICE_PLAN_S", "noticeDays": 4000},
        {"newPriceId": "PRICE_PLAN_S", "effectiveFrom": "2030-01-01T00:00:00"},  # no zone
        {"newPriceId": "PRICE\u0000"},
        {"newPriceId": "PRICE_PLAN_S", "extra": 1},
    ):
        error(await api.post(url, json=body), 400, "request.invalid")
    assert await footprint(runtime, sub_id) == before

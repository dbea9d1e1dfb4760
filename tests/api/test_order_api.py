"""TMF622 product ordering over HTTP: the saga behind it runs for real on the Temporal dev server
(`saga` fixture) against the test's Postgres; refused bodies change nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from core.clock import clock
from tests.api.order_flow import (
    CANCEL,
    ORDERS,
    STUCK,
    SUBSCRIPTIONS,
    TASKS,
    customer,
    error,
    order_body,
    order_until,
    place,
    scalar,
    snapshot,
    until,
)
from tests.tmf_schema import assert_conforms


def later() -> str:
    return (clock.now() + timedelta(hours=1)).isoformat()


# ---- the happy path through the API --------------------------------------------------------------


async def test_an_order_posted_through_the_api_activates_a_line(saga, api):
    cust = await customer(saga.runtime)
    r = await api.post(ORDERS, json=order_body(cust))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["state"] == "acknowledged"
    assert r.headers["Location"] == created["href"] == f"{ORDERS}/{created['id']}"
    assert created["relatedParty"][0]["id"] == cust
    assert created["productOrderItem"][0]["itemPrice"][0]["price"]["taxIncludedAmount"] == {
        "unit": "SGD",
        "value": 10.0,
    }
    assert_conforms("TMF622", "ProductOrder", created)

    done = await order_until(api, created["id"], {"completed", "failed"})
    assert done["state"] == "completed", done.get("note")
    assert_conforms("TMF622", "ProductOrder", done)
    item = done["productOrderItem"][0]
    assert item["state"] == "completed"
    assert item["productOffering"] == {
        "id": "PLAN_S",
        "href": "/tmf-api/productCatalogManagement/v4/productOffering/PLAN_S",
        "name": "Lite",
        "@referredType": "ProductOffering",
    }
    sub_id = item["product"]["id"]
    assert sub_id.startswith("SUB-")
    assert [h["to"] for h in done["stateHistory"]] == ["acknowledged", "inProgress", "completed"]
    assert done["completionDate"] and done["serviceOrder"][0]["id"].startswith("SO-")
    assert done["msisdn"].startswith("9000") and done["iccid"].startswith("8910101")

    r = await api.get(f"{SUBSCRIPTIONS}/{sub_id}")
    assert r.status_code == 200, r.text
    line = r.json()
    assert line["state"] == "active" and line["msisdn"] == done["msisdn"] and line["iccid"] == done["iccid"]
    data = next(b for b in line["balances"] if b["allowanceType"] == "data")
    assert (data["total"], data["consumed"], data["remaining"], data["unit"].upper()) == (5120, 0, 5120, "MB")

    # The lists find it by customer (either spelling) and by TMF state, with TMF counts.
    for params in (
        {"customerId": cust},
        {"relatedParty.id": cust},
        {"customerId": cust, "state": "completed"},
    ):
        r = await api.get(ORDERS, params=params)
        assert r.status_code == 200 and r.headers["X-Total-Count"] == "1", (params, r.text)
        assert [o["id"] for o in r.json()] == [created["id"]]
    r = await api.get(ORDERS, params={"customerId": cust, "state": "inProgress"})
    assert r.json() == [] and r.headers["X-Total-Count"] == "0"
    r = await api.get(ORDERS, params={"customerId": cust, "fields": "state"})
    assert r.json() == [
        {"id": created["id"], "href": created["href"], "@type": "ProductOrder", "state": "completed"}
    ]


async def test_characteristics_on_the_item_or_its_product_are_both_honoured(saga, api):
    first = await place(
        api,
        await customer(saga.runtime),
        item={"product": {"productCharacteristic": [{"name": "msisdn", "value": "90000777"}]}},
    )
    second = await place(
        api,
        await customer(saga.runtime),
        item={"productCharacteristic": [{"name": "msisdn", "value": "90000778"}]},
    )
    assert first["msisdnPreference"] == "90000777" and second["msisdnPreference"] == "90000778"
    assert (await order_until(api, first["id"], {"completed"}))["msisdn"] == "90000777"
    assert (await order_until(api, second["id"], {"completed"}))["msisdn"] == "90000778"


async def test_the_same_idempotency_key_answers_the_same_order(saga, api):
    cust = await customer(saga.runtime)
    body = order_body(cust, requestedStartDate=later())
    first = await api.post(ORDERS, json=body, headers={"Idempotency-Key": "signup-42"})
    again = await api.post(ORDERS, json=body, headers={"Idempotency-Key": "signup-42"})
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert (
        await scalar(
            saga.runtime, "SELECT count(*) FROM ordering.product_order WHERE customer_id = :c", c=cust
        )
        == 1
    )

    # Another customer cannot borrow the key. (The first order's workflow takes it up first: its
    # own audit rows must not land between the two snapshots.)
    await order_until(api, first.json()["id"], {"inProgress"})
    other = await customer(saga.runtime)
    before = await snapshot(saga.runtime)
    r = await api.post(ORDERS, json=order_body(other), headers={"Idempotency-Key": "signup-42"})
    error(r, 422, "order.create.idempotency_key_reused")
    assert await snapshot(saga.runtime) == before


async def test_a_declined_card_fails_the_order_with_the_reason_in_a_note(saga, api):
    created = await place(api, await customer(saga.runtime, card="4000000000000002"))
    failed = await order_until(api, created["id"], {"failed", "completed"})
    assert failed["state"] == "failed"
    assert "declined" in failed["note"][0]["text"]
    assert "product" not in failed["productOrderItem"][0] and "msisdn" not in failed
    assert_conforms("TMF622", "ProductOrder", failed)


# ---- refused bodies: the right 4xx, nothing stored --------------------------------------------------


def _without_card() -> None:
    """Marker: the case needs a customer with no card on file."""


CASES: list[tuple[str, Any, int, str | None]] = [
    ("no items", lambda c: {**order_body(c), "productOrderItem": []}, 400, "order.create.one_item_required"),
    (
        "items missing",
        lambda c: {"relatedParty": order_body(c)["relatedParty"]},
        400,
        "order.create.one_item_required",
    ),
    (
        "two items",
        lambda c: {**order_body(c), "productOrderItem": order_body(c)["productOrderItem"] * 2},
        400,
        "order.create.one_item_required",
    ),
    (
        "action modify",
        lambda c: order_body(c, item={"action": "modify"}),
        422,
        "order.create.unsupported_action",
    ),
    (
        "action delete",
        lambda c: order_body(c, item={"action": "delete"}),
        422,
        "order.create.unsupported_action",
    ),
    ("action unknown", lambda c: order_body(c, item={"action": "upgrade"}), 400, "request.invalid"),
    ("unknown offering", lambda c: order_body(c, "PLAN_XXL"), 422, "order.create.offering_not_found"),
    ("unknown customer", lambda c: order_body("CUST-00000000"), 422, "order.create.customer_not_found"),
    (
        "no customer party",
        lambda c: {**order_body(c), "relatedParty": []},
        400,
        "order.create.customer_party_required",
    ),
    (
        "party without customer role",
        lambda c: {**order_body(c), "relatedParty": [{"id": c, "role": "payer"}]},
        400,
        "order.create.customer_party_required",
    ),
    (
        "offering id a number",
        lambda c: order_body(c, item={"productOffering": {"id": 7}}),
        400,
        "request.invalid",
    ),
    ("items not a list", lambda c: {**order_body(c), "productOrderItem": "PLAN_S"}, 400, "request.invalid"),
    ("quantity two", lambda c: order_body(c, item={"quantity": 2}), 400, "request.invalid"),
    ("NUL in offering id", lambda c: order_body(c, "PLAN\x00S"), 400, "request.invalid"),
    ("over-long offering id", lambda c: order_body(c, "P" * 65), 400, "request.invalid"),
    (
        "over-long promo code",
        lambda c: order_body(c, item={"productCharacteristic": [{"name": "promoCode", "value": "X" * 65}]}),
        400,
        "request.invalid",
    ),
    (
        "msisdn not 8 digits",
        lambda c: order_body(c, item={"productCharacteristic": [{"name": "msisdn", "value": "123"}]}),
        400,
        "order.create.invalid_msisdn_preference",
    ),
    (
        "msisdn as a number",
        lambda c: order_body(c, item={"productCharacteristic": [{"name": "msisdn", "value": 90000777}]}),
        400,
        "request.invalid",
    ),
    (
        "unknown characteristic",
        lambda c: order_body(c, item={"productCharacteristic": [{"name": "msidsn", "value": "90000777"}]}),
        400,
        "order.create.unknown_characteristic",
    ),
    (
        "start date without zone",
        lambda c: order_body(c, requestedStartDate="2030-01-01T09:00:00"),
        400,
        "request.invalid",
    ),
    ("customer without a card", _without_card, 422, "order.create.no_payment_method"),
]


@pytest.mark.parametrize(("name", "make", "status", "reason"), CASES, ids=[c[0] for c in CASES])
async def test_a_refused_order_answers_a_tmf_error_and_stores_nothing(
    api, runtime, name, make, status, reason
):
    if make is _without_card:
        body = order_body(await customer(runtime, card=None))
    else:
        body = make(await customer(runtime))
    before = await snapshot(runtime)
    error(await api.post(ORDERS, json=body), status, reason)
    assert await snapshot(runtime) == before


async def test_a_body_that_is_not_json_or_a_bad_key_is_a_400(api, runtime):
    cust = await customer(runtime)
    before = await snapshot(runtime)
    error(await api.post(ORDERS, content=b"{not json", headers={"content-type": "application/json"}), 400)
    error(await api.post(ORDERS, json=order_body(cust), headers={"Idempotency-Key": "k" * 150}), 400)
    assert await snapshot(runtime) == before


async def test_temporal_down_answers_503_with_a_tmf_error_not_a_500(api, runtime):
    # Without the saga fixture the runtime points at a closed port. (An order placed meanwhile is
    # stored and started later: tests/api/test_order_stranding.py.)
    error(await api.get(STUCK), 503, "temporal.unavailable")


async def test_reads_refuse_bad_filters_and_ids(api):
    error(await api.get(ORDERS, params={"state": "in_progress"}), 400, "state.invalid")
    error(await api.get(ORDERS, params={"customerId": "CUST\x00"}), 400)
    error(await api.get(ORDERS, params={"customerId": "CUST-1", "relatedParty.id": "CUST-2"}), 400)
    error(await api.get(ORDERS, params={"limit": 0}), 400)
    error(await api.get(f"{ORDERS}/ORD-999999"), 404, "order.not_found")
    error(await api.get(f"{ORDERS}/ORD%00"), 400)
    error(await api.get(f"{ORDERS}/{'X' * 65}"), 400)


# ---- cancellation -------------------------------------------------------------------------------------


async def test_an_order_waiting_for_its_start_date_can_be_cancelled(saga, api):
    created = await place(api, await customer(saga.runtime), requestedStartDate=later())
    r = await api.post(
        CANCEL, json={"productOrder": {"id": created["id"]}, "cancellationReason": "changed my mind"}
    )
    assert r.status_code == 201, r.text
    cancel = r.json()
    assert_conforms("TMF622", "CancelProductOrder", cancel)
    assert cancel["state"] == "done" and cancel["productOrder"]["id"] == created["id"]
    assert cancel["cancellationReason"] == "changed my mind" and cancel["effectiveCancellationDate"]

    order = (await api.get(f"{ORDERS}/{created['id']}")).json()
    assert order["state"] == "cancelled" and order["note"][0]["text"] == "changed my mind"
    assert order["productOrderItem"][0]["state"] == "cancelled"
    assert_conforms("TMF622", "ProductOrder", order)
    assert (await api.get(cancel["href"])).json() == cancel
    assert await scalar(saga.runtime, "SELECT count(*) FROM service_ordering.service_order") == 0

    # A second cancellation is refused: the order is already over.
    error(
        await api.post(CANCEL, json={"productOrder": {"id": created["id"]}}), 422, "order.transition.invalid"
    )


async def test_cancel_refusals(saga, api):
    error(await api.post(CANCEL, json={"productOrder": {"id": "ORD-999999"}}), 404, "order.not_found")
    error(await api.post(CANCEL, json={}), 400)
    error(await api.post(CANCEL, json={"productOrder": {"id": "ORD\x00"}}), 400)
    error(
        await api.post(CANCEL, json={"productOrder": {"id": "ORD-1"}, "cancellationReason": "x" * 501}), 400
    )
    error(await api.get(f"{CANCEL}/CANCEL-ORD-999999"), 404)

    done = await place(api, await customer(saga.runtime))
    await order_until(api, done["id"], {"completed"})
    error(await api.post(CANCEL, json={"productOrder": {"id": done["id"]}}), 422, "order.transition.invalid")


# ---- the stuck order, from the operator's side ----------------------------------------------------


async def test_a_stuck_order_is_listed_refuses_cancel_and_completes_once_resolved(saga, api):
    saga.fault("OCS_BALANCE_INIT", "stuck")
    created = await place(api, await customer(saga.runtime))

    async def stuck_rows() -> list[dict]:
        r = await api.get(STUCK)
        assert r.status_code == 200, r.text
        return [row for row in r.json() if row["orderId"] == created["id"] and row["taskId"]]

    rows = await until(stuck_rows, bool, timeout=15)
    assert rows, "the stuck order never showed in /order/stuck"
    row = rows[0]
    assert (
        row["workflowId"].startswith("service-order-SO-")
        and row["customerId"] == created["relatedParty"][0]["id"]
    )
    assert row["taskType"] == "OCS_BALANCE_INIT" and row["ticketId"] and row["msisdn"]
    assert row["stuckTasks"] == [
        {
            "taskId": row["taskId"],
            "taskType": "OCS_BALANCE_INIT",
            "ticketId": row["ticketId"],
            "serviceOrderId": row["serviceOrderId"],
        }
    ]

    # Provisioning has started: the customer can no longer cancel.
    error(
        await api.post(CANCEL, json={"productOrder": {"id": created["id"]}}),
        422,
        "order.cancel.forbidden_after_som_started",
    )
    r = await api.get(TASKS, params={"state": "stuck", "serviceOrderId": row["serviceOrderId"]})
    assert [t["id"] for t in r.json()] == [row["taskId"]]

    before = await snapshot(saga.runtime)
    error(
        await api.post(f"{TASKS}/{row['taskId']}/resolve", json={"note": "  "}),
        422,
        "provisioning.resolve_stuck.requires_note",
    )
    error(
        await api.post(f"{TASKS}/{row['taskId']}/resolve", json={}),
        422,
        "provisioning.resolve_stuck.requires_note",
    )
    error(await api.post(f"{TASKS}/{row['taskId']}/resolve", json={"note": 5}), 400)
    assert await snapshot(saga.runtime) == before

    r = await api.post(
        f"{TASKS}/{row['taskId']}/resolve", json={"note": "balance set by hand on the OCS console"}
    )
    assert r.status_code == 202, r.text
    assert r.json()["id"] == row["taskId"]
    done = await order_until(api, created["id"], {"completed", "failed"})
    assert done["state"] == "completed", done.get("note")
    task = (await api.get(f"{TASKS}/{row['taskId']}")).json()
    assert task["state"] == "completed" and task["resolutionNote"] == "balance set by hand on the OCS console"

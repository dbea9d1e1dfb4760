"""Reading a line: /bss-api/v1/subscription (CONTRACT.md shape) and the TMF637 product view,
for a line activated by the real saga."""

from __future__ import annotations

from sqlalchemy import text

from tests.api.order_flow import PRODUCTS, SUBSCRIPTIONS, customer, error, order_until, place
from tests.tmf_schema import assert_conforms

CONTRACT_KEYS = {
    "id",
    "state",
    "stateReason",
    "msisdn",
    "iccid",
    "offeringId",
    "currentPeriodEnd",
    "balances",
}


async def _line(saga, api) -> tuple[str, dict]:
    cust = await customer(saga.runtime)
    created = await place(api, cust, offering_id="PLAN_M")
    order = await order_until(api, created["id"], {"completed", "failed"})
    assert order["state"] == "completed", order.get("note")
    return cust, order


async def test_a_customers_lines_read_in_the_contract_shape(saga, api):
    cust, order = await _line(saga, api)
    sub_id = order["productOrderItem"][0]["product"]["id"]

    r = await api.get(SUBSCRIPTIONS, params={"customerId": cust})
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "1", r.text
    [line] = r.json()
    assert line == (await api.get(f"{SUBSCRIPTIONS}/{sub_id}")).json()
    assert CONTRACT_KEYS <= set(line)
    assert (line["id"], line["state"], line["offeringId"], line["stateReason"]) == (
        sub_id,
        "active",
        "PLAN_M",
        None,
    )
    assert (line["msisdn"], line["iccid"]) == (order["msisdn"], order["iccid"])
    balances = {b["allowanceType"]: b for b in line["balances"]}
    assert balances["data"]["total"] == 30720 and balances["data"]["remaining"] == 30720
    assert balances["voice"]["total"] == -1 and balances["voice"]["remaining"] == -1  # unlimited
    assert all(
        {"allowanceType", "total", "consumed", "remaining", "unit"} == set(b) for b in line["balances"]
    )

    assert (await api.get(SUBSCRIPTIONS, params={"customerId": cust, "state": "blocked"})).json() == []
    assert [x["id"] for x in (await api.get(SUBSCRIPTIONS, params={"msisdn": order["msisdn"]})).json()] == [
        sub_id
    ]
    assert (await api.get(SUBSCRIPTIONS, params={"customerId": "CUST-00000000"})).json() == []


async def test_the_line_is_a_tmf637_product_and_blocked_reads_as_suspended(saga, api):
    cust, order = await _line(saga, api)
    sub_id = order["productOrderItem"][0]["product"]["id"]

    r = await api.get(f"{PRODUCTS}/{sub_id}")
    assert r.status_code == 200, r.text
    product = r.json()
    assert_conforms("TMF637", "Product", product)
    assert product["status"] == "active" and product["name"] == "Standard"
    assert product["productOffering"]["id"] == "PLAN_M"
    assert product["relatedParty"][0]["id"] == cust
    assert product["productOrderItem"][0]["productOrderId"] == order["id"]
    assert {c["name"]: c["value"] for c in product["productCharacteristic"]}["msisdn"] == order["msisdn"]
    assert [s["name"] for s in product["realizingService"]] == ["MobileBroadband"]
    assert {x["id"] for x in product["realizingResource"]} == {order["msisdn"], order["iccid"]}
    assert product["productPrice"][0]["price"]["taxIncludedAmount"] == {"unit": "SGD", "value": 25.0}
    assert [p["id"] for p in (await api.get(PRODUCTS, params={"relatedParty.id": cust})).json()] == [sub_id]

    # The line runs out of data: TMF637 has no `blocked`, the product is suspended.
    async with saga.runtime.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE subscription.subscription SET state = 'blocked', state_reason = 'data_exhausted' WHERE id = :s"
            ),
            {"s": sub_id},
        )
    product = (await api.get(f"{PRODUCTS}/{sub_id}")).json()
    assert_conforms("TMF637", "Product", product)
    assert (product["status"], product["statusReason"]) == ("suspended", "data_exhausted")
    assert [p["id"] for p in (await api.get(PRODUCTS, params={"status": "suspended"})).json()] == [sub_id]
    line = (await api.get(f"{SUBSCRIPTIONS}/{sub_id}")).json()
    assert (line["state"], line["stateReason"]) == ("blocked", "data_exhausted")


async def test_subscription_reads_refuse_bad_input(api):
    error(await api.get(f"{SUBSCRIPTIONS}/SUB-999999"), 404, "subscription.not_found")
    error(await api.get(f"{PRODUCTS}/SUB-999999"), 404, "subscription.not_found")
    error(await api.get(f"{SUBSCRIPTIONS}/SUB%00"), 400)
    error(await api.get(f"{PRODUCTS}/{'S' * 65}"), 400)
    error(await api.get(SUBSCRIPTIONS, params={"state": "suspended"}), 400, "state.invalid")
    error(await api.get(SUBSCRIPTIONS, params={"customerId": "CUST\x00"}), 400)
    error(await api.get(SUBSCRIPTIONS, params={"msisdn": "12ab"}), 400)
    error(await api.get(PRODUCTS, params={"status": "blocked"}), 400, "status.invalid")

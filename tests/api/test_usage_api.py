"""TMF635 usage, TMF654 buckets and TMF677 usage consumption over HTTP (in-process app, real
Postgres): rated and refused events, idempotent resends, bulk in order, and schema conformance."""

from __future__ import annotations

import asyncio
import gc
import json
from datetime import timedelta
from typing import Any

import pytest

from core.clock import clock
from tests.tmf_schema import assert_conforms
from tests.usage_harness import active_line, balances, line_state, snapshot, usage_body

USAGE = "/tmf-api/usageManagement/v4/usage"
BULK = f"{USAGE}/bulk"
BUCKET = "/tmf-api/prepayBalanceManagement/v4/bucket"
CONSUMPTION = "/tmf-api/usageConsumption/v4/queryUsageConsumption"


def _error(r, status: int, reason: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["@type"] == "Error" and body["status"] == str(status)
    assert {"code", "reason", "message", "referenceError"} <= set(body)
    if reason:
        assert body["reason"] == reason
    return body


def _chars(usage: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c["value"] for c in usage["usageCharacteristic"]}


def _minutes_ago(minutes: float) -> str:
    return (
        (clock.now() - timedelta(minutes=minutes)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    )


async def test_one_event_is_rated_and_conforms_to_tmf635(api, runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_S")
    when = _minutes_ago(1)
    r = await api.post(USAGE, json=usage_body(msisdn, "data", 500, "MB", id="cdr-1", usageDate=when))
    assert r.status_code == 201, r.text
    body = r.json()
    assert_conforms("TMF635", "Usage", body)
    assert r.headers["location"] == f"{USAGE}/cdr-1"
    assert (body["id"], body["status"], body["usageType"], body["usageDate"]) == (
        "cdr-1",
        "rated",
        "data",
        when,
    )
    chars = _chars(body)
    assert (chars["allowanceType"], chars["ratedQuantity"], chars["ratedUnit"], chars["subscriptionId"]) == (
        "data",
        512_000,
        "KB",
        sub,
    )
    assert body["ratedProductUsage"][0]["usageRatingTag"] == "included usage"
    assert (await balances(runtime, sub))["data"] == (5120, 500)

    got = await api.get(f"{USAGE}/cdr-1")
    assert got.status_code == 200 and got.json() == body


async def test_a_resent_id_answers_200_with_the_original_and_counts_once(api, runtime) -> None:
    sub, msisdn = await active_line(runtime)
    first = await api.post(USAGE, json=usage_body(msisdn, "voice", 3, "min", id="call-9"))
    again = await api.post(USAGE, json=usage_body(msisdn, "voice", 180, "sec", id="call-9"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert (await balances(runtime, sub))["voice"] == (100, 3)


async def test_the_same_id_with_a_different_record_is_a_409_and_counts_nothing(api, runtime) -> None:
    sub, msisdn = await active_line(runtime)
    assert (
        await api.post(USAGE, json=usage_body(msisdn, "voice", 3, "min", id="call-10"))
    ).status_code == 201
    before = await snapshot(runtime)
    for changed in (
        usage_body(msisdn, "voice", 30, "min", id="call-10"),
        usage_body(msisdn, "voice", 3, "min", id="call-10", roaming=True),
        usage_body(msisdn, "voice", 3, "min", id="call-10", usageDate=_minutes_ago(2)),
        usage_body(msisdn, "sms", 1, "count", id="call-10"),
    ):
        _error(await api.post(USAGE, json=changed), 409, "usage.event_id.conflict")
    assert await snapshot(runtime) == before
    assert (await balances(runtime, sub))["voice"] == (100, 3)


async def test_an_id_reused_by_another_subscriber_is_a_409_that_shows_nothing_of_the_first(
    api, runtime
) -> None:
    _, mine = await active_line(runtime)
    _, theirs = await active_line(runtime)
    first = await api.post(USAGE, json=usage_body(mine, "data", 123, "MB", id="shared-1"))
    assert first.status_code == 201
    r = await api.post(USAGE, json=usage_body(theirs, "data", 123, "MB", id="shared-1"))
    body = _error(r, 409, "usage.event_id.conflict")
    text = json.dumps(body)
    assert (
        mine not in text and "123" not in text and first.json()["usageCharacteristic"][4]["value"] not in text
    )
    bulk = (await api.post(BULK, json=[usage_body(theirs, "data", 123, "MB", id="shared-1")])).json()
    assert (bulk["rated"], bulk["duplicate"], bulk["conflict"]) == (0, 0, 1)
    assert bulk["rejections"][0]["reason"] == "usage.event_id.conflict" and mine not in json.dumps(bulk)


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        (timedelta(days=-2), "usage.record.usage_date_in_future"),
        (timedelta(days=3 * 365), "usage.record.usage_date_too_old"),
        (timedelta(days=1), "usage.record.usage_date_before_line"),  # the line is a minute old
    ],
    ids=["two-days-ahead", "three-years-old", "before-the-line"],
)
async def test_an_implausible_usage_date_is_a_400_and_stores_nothing(api, runtime, when, reason) -> None:
    _, msisdn = await active_line(runtime)
    before = await snapshot(runtime)
    at = (clock.now() - when).isoformat()
    _error(await api.post(USAGE, json=usage_body(msisdn, usageDate=at, id="dated-1")), 400, reason)
    bulk = (await api.post(BULK, json=[usage_body(msisdn, usageDate=at, id="dated-2")])).json()
    assert [r["reason"] for r in bulk["rejections"]] == [reason]
    assert await snapshot(runtime) == before


async def test_an_event_without_id_gets_a_ue_id(api, runtime) -> None:
    _, msisdn = await active_line(runtime)
    r = await api.post(USAGE, json=usage_body(msisdn, "sms", 2, "count"))
    assert r.status_code == 201 and r.json()["id"].startswith("UE-")


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"usageType": "data", "usageCharacteristic": "nope"}, 400, "request.invalid"),
        ({"usageCharacteristic": []}, 400, "request.invalid"),
        ({"usageType": "data", "usageCharacteristic": [], "colour": "red"}, 400, "request.invalid"),
        ({"usageType": "data", "usageCharacteristic": [], "id": "bad id\u0000"}, 400, "request.invalid"),
        ({"usageType": "data", "usageCharacteristic": [], "usageDate": "yesterday"}, 400, "request.invalid"),
        ("MSISDN", 400, None),
        ("QTY0", 422, "usage.record.positive_quantity"),
        ("QTYNEG", 422, "usage.record.positive_quantity"),
        ("QTYWORD", 400, "usage.record.quantity_not_a_number"),
        ("TYPE", 422, "usage.record.valid_event_type"),
        ("UNIT", 422, "usage.record.unit_matches_type"),
        ("ROAMING", 400, "usage.record.roaming_flag"),
        ("UNKNOWN", 422, "usage.record.subscription_must_exist"),
        ("NUL", 422, "usage.record.subscription_must_exist"),
        ("RESERVED", 400, "usage.record.reserved_id"),
    ],
)
async def test_bad_usage_bodies_answer_tmf_errors_and_change_nothing(
    api, runtime, body, status, reason
) -> None:
    _, msisdn = await active_line(runtime)
    named = {
        "MSISDN": {"usageType": "data", "usageCharacteristic": [{"name": "quantity", "value": 1}]},
        "QTY0": usage_body(msisdn, quantity=0),
        "QTYNEG": usage_body(msisdn, quantity="-3"),
        "QTYWORD": usage_body(msisdn, quantity="plenty"),
        "TYPE": usage_body(msisdn, "mms"),
        "UNIT": usage_body(msisdn, "voice", 1, "MB"),
        "ROAMING": usage_body(msisdn, roaming="sometimes"),
        "UNKNOWN": usage_body("99999999"),
        "NUL": usage_body("9000\u00000001"),
        "RESERVED": usage_body(msisdn, id="UE-123456"),
    }
    before = await snapshot(runtime)
    r = await api.post(USAGE, json=named.get(body, body) if isinstance(body, str) else body)
    _error(r, status, reason)
    assert await snapshot(runtime) == before


async def test_not_json_and_wrong_shapes_are_400(api, runtime) -> None:
    before = await snapshot(runtime)
    _error(await api.post(USAGE, content=b"{not json", headers={"content-type": "application/json"}), 400)
    _error(await api.post(BULK, content=b"{not json"), 400, "request.invalid")
    _error(await api.post(BULK, json={"usageType": "data"}), 400, "request.invalid")
    assert await snapshot(runtime) == before


async def test_blocked_line_refuses_usage_with_must_be_active(api, runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_S")
    assert (await api.post(USAGE, json=usage_body(msisdn, quantity=5, unit="GB"))).status_code == 201
    assert await line_state(runtime, sub) == ("blocked", "primary_allowance_exhausted")
    before = await snapshot(runtime)
    _error(
        await api.post(USAGE, json=usage_body(msisdn, "sms", 1, "count")),
        422,
        "usage.record.subscription_must_be_active",
    )
    assert await snapshot(runtime) == before


async def test_bulk_rates_in_order_and_reports_every_rejection(api, runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_S")
    events = [
        usage_body(msisdn, quantity=5000, unit="MB", id="b-0"),
        usage_body(msisdn, quantity=1, unit="MB", id="b-0"),  # the same id, another record: a conflict
        {"usageType": "data", "usageCharacteristic": "garbage", "id": "b-2"},  # malformed record
        usage_body(msisdn, quantity=500, unit="MB", id="b-3"),  # exhausts the line
        usage_body(msisdn, "voice", 1, "min", id="b-4"),  # after the block
        usage_body(msisdn, "data", 1, "min", id="b-5"),
    ]
    r = await api.post(BULK, json=events)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["rated"], body["duplicate"], body["rejected"], body["blocked"]) == (2, 0, 4, [sub])
    assert body["conflict"] == 1
    assert [(x["index"], x["id"], x["reason"]) for x in body["rejections"]] == [
        (1, "b-0", "usage.event_id.conflict"),
        (2, "b-2", "request.invalid"),
        (4, "b-4", "usage.record.subscription_must_be_active"),
        (5, "b-5", "usage.record.unit_matches_type"),
    ]
    assert (await balances(runtime, sub))["data"] == (5120, 5120)

    listed = await api.get(USAGE, params={"subscriptionId": sub})
    assert listed.status_code == 200 and listed.headers["x-total-count"] == "2"
    assert [u["id"] for u in listed.json()] == ["b-3", "b-0"]  # newest first
    assert _chars(listed.json()[0])["inBundleQuantity"] == 120 * 1024
    assert listed.json()[0]["ratedProductUsage"][0]["usageRatingTag"] == "non included usage"
    for item in listed.json():
        assert_conforms("TMF635", "Usage", item)


async def test_bulk_takes_json_lines_and_sending_twice_counts_once(api, runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_M")
    lines = "\n".join(json.dumps(usage_body(msisdn, "data", 3, "KB", id=f"l-{i}")) for i in range(2_000))
    lines += "\n{broken\n"
    headers = {"content-type": "application/x-ndjson"}
    first = (await api.post(BULK, content=lines.encode(), headers=headers)).json()
    assert (first["rated"], first["duplicate"], first["rejected"]) == (2_000, 0, 1)
    assert first["rejections"][0]["index"] == 2_000
    second = (await api.post(BULK, content=lines.encode(), headers=headers)).json()
    assert (second["rated"], second["duplicate"]) == (0, 2_000)
    assert (await balances(runtime, sub))["data"] == (30720, 6_000 // 1024)


async def test_bulk_refuses_more_than_fifty_thousand_events(api, runtime) -> None:
    before = await snapshot(runtime)
    event = json.dumps(usage_body("90000001"))
    r = await api.post(BULK, content=("[" + ",".join([event] * 50_001) + "]").encode())
    _error(r, 400, "usage.bulk.too_many_events")
    assert await snapshot(runtime) == before


async def test_bulk_stops_reading_at_the_size_limit_with_a_413(api, runtime, monkeypatch) -> None:
    from api.routers import usage as router

    monkeypatch.setattr(router, "MAX_BULK_BYTES", 4096)
    sent = 0

    async def body():  # chunked, no Content-Length: only counting while reading can stop it
        nonlocal sent
        for _ in range(1000):
            sent += 1
            yield b" " * 1024

    before = await snapshot(runtime)
    r = await api.post(BULK, content=body(), headers={"content-type": "application/json"})
    _error(r, 413, "usage.bulk.too_large")
    assert sent <= 6, f"the API read {sent} KB of a body it refuses after 4"
    declared = await api.post(BULK, content=b" " * 5000, headers={"content-type": "application/json"})
    _error(declared, 413, "usage.bulk.too_large")
    assert await snapshot(runtime) == before


async def test_a_bulk_leaves_the_garbage_collector_on_for_everyone_else(api, runtime) -> None:
    _, msisdn = await active_line(runtime, "PLAN_M")
    events = [usage_body(msisdn, "data", 1, "KB", id=f"gc-{i}") for i in range(2_000)]
    seen: set[bool] = set()
    request = asyncio.ensure_future(api.post(BULK, json=events))
    while not request.done():  # the other requests the process serves meanwhile
        seen.add(gc.isenabled())
        await asyncio.sleep(0)
    assert request.result().json()["rated"] == 2_000
    assert seen == {True}


async def test_usage_list_filters_and_pages(api, runtime) -> None:
    _, msisdn = await active_line(runtime)
    for i in range(5):
        await api.post(
            USAGE,
            json=usage_body(msisdn, "sms" if i % 2 else "data", 1, "count" if i % 2 else "MB", id=f"p-{i}"),
        )
    r = await api.get(USAGE, params={"msisdn": msisdn, "limit": 2, "offset": 1})
    assert [u["id"] for u in r.json()] == ["p-3", "p-2"] and r.headers["x-total-count"] == "5"
    r = await api.get(USAGE, params={"msisdn": msisdn, "usageType": "sms"})
    assert [u["id"] for u in r.json()] == ["p-3", "p-1"]
    _error(await api.get(USAGE, params={"usageType": "mms"}), 400)
    _error(await api.get(USAGE, params={"msisdn": "abc"}), 400)
    _error(await api.get(f"{USAGE}/nope"), 404, "usage.not_found")


async def test_buckets_conform_to_tmf654_and_show_exact_remaining(api, runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_M")
    await api.post(BULK, json=[usage_body(msisdn, "data", 1, "KB", id=f"k-{i}") for i in range(10_000)])
    await api.post(USAGE, json=usage_body(msisdn, "data", 100, "MB", roaming=True))
    r = await api.get(BUCKET, params={"product.id": sub})
    assert r.status_code == 200 and r.headers["x-total-count"] == "4"
    found = {b["allowanceType"]: b for b in r.json()}
    assert list(found) == ["data", "voice", "sms", "data_roaming"]
    for bucket in r.json():
        assert_conforms("TMF654", "Bucket", bucket)
    data = found["data"]
    assert data["id"] == f"{sub}.data" and data["status"] == "active" and data["usageType"] == "data"
    assert data["remainingValue"] == {"amount": 30720 - 10_000 / 1024, "units": "MB"}
    assert data["consumedValue"] == {"amount": 10_000 / 1024, "units": "MB"}
    assert (
        found["voice"]["remainingValue"]["amount"] == -1
        and found["voice"]["remainingValueName"] == "unlimited"
    )
    assert found["data_roaming"]["remainingValue"] == {"amount": 400, "units": "MB"}
    assert found["data"]["product"][0]["id"] == sub and found["data"]["logicalResource"][0]["id"] == msisdn

    one = await api.get(f"{BUCKET}/{sub}.data_roaming")
    assert one.status_code == 200 and one.json() == found["data_roaming"]
    by_number = await api.get(BUCKET, params={"logicalResource.id": msisdn})
    assert [b["id"] for b in by_number.json()] == [b["id"] for b in r.json()]
    by_customer = await api.get(BUCKET, params={"relatedParty.id": "CUST-0a0b0c0d"})
    assert {b["id"] for b in r.json()} <= {b["id"] for b in by_customer.json()}
    _error(await api.get(f"{BUCKET}/{sub}.video"), 404, "bucket.not_found")
    _error(await api.get(BUCKET, params={"product.id": "nope"}), 400)


async def test_a_blocked_lines_buckets_are_suspended(api, runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_S")
    await api.post(USAGE, json=usage_body(msisdn, quantity=6, unit="GB"))
    r = await api.get(BUCKET, params={"subscriptionId": sub})
    assert {b["status"] for b in r.json()} == {"suspended"}
    assert r.json()[0]["remainingValue"] == {"amount": 0, "units": "MB"}


async def test_usage_consumption_conforms_to_tmf677(api, runtime) -> None:
    sub, msisdn = await active_line(runtime, "PLAN_M")
    await api.post(USAGE, json=usage_body(msisdn, "data", 1536, "MB"))
    await api.post(USAGE, json=usage_body(msisdn, "voice", 90, "sec"))
    r = await api.post(CONSUMPTION, json={"searchCriteria": {"product": [{"id": sub}]}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert_conforms("TMF677", "QueryUsageConsumption", body)
    report = body["usageConsumption"][0]
    assert report["state"] == "done" and report["product"][0]["id"] == sub
    buckets = {b["id"].split(".")[1]: b for b in report["bucketRefOrValue"]}
    assert buckets["data"]["bucketCounter"][0]["value"] == {"amount": 1536, "units": "MB"}
    assert buckets["data"]["bucketCounter"][0]["valueName"] == "1.5 GB"
    # unlimited voice is never decremented; its counter shows what was rated this period
    assert buckets["voice"]["remainingValueName"] == "unlimited"
    assert buckets["voice"]["bucketCounter"][0]["value"] == {"amount": 1.5, "units": "min"}

    listed = await api.get(CONSUMPTION, params={"logicalResource.id": msisdn})
    assert listed.status_code == 200
    assert_conforms("TMF677", "QueryUsageConsumption", listed.json()[0])
    again = listed.json()[0]["usageConsumption"][0]["bucketRefOrValue"]
    assert [(b["id"], b["remainingValue"], b["bucketCounter"][0]["value"]) for b in again] == [
        (b["id"], b["remainingValue"], b["bucketCounter"][0]["value"]) for b in report["bucketRefOrValue"]
    ]

    _error(
        await api.post(CONSUMPTION, json={"searchCriteria": {}}), 400, "usage_consumption.criteria_required"
    )
    _error(await api.post(CONSUMPTION, json={}), 400)
    _error(await api.get(CONSUMPTION, params={"product.id": "SUB-999999"}), 404)

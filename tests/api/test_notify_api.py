"""TMF681 communicationMessage (the outbox) and TMF688 events (the audit log) over HTTP: bodies
conform to the official schemas, filters narrow, bad input is a 4xx TMF error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from core.context import RequestContext
from core.db import transaction
from ops import notify
from tests.api.order_flow import customer
from tests.tmf_schema import assert_conforms

MESSAGES = "/tmf-api/communicationManagement/v4/communicationMessage"
EVENT = "/tmf-api/event/v4"
CTX = RequestContext(actor="api-test", channel="scenario", service_identity="test")


async def _messages_for(runtime) -> tuple[str, str]:
    from domains.audit.services import record

    cust, other = await customer(runtime), await customer(runtime)
    async with transaction(runtime.db) as s:
        record(
            s, CTX, "order.promo_rejected", "product_order", "ORD-000777", {"customer_id": cust, "code": "X1"}
        )
        record(
            s,
            CTX,
            "order.promo_rejected",
            "product_order",
            "ORD-000778",
            {"customer_id": other, "code": "X2"},
        )
    await notify.dispatch_pending(runtime)
    await notify.send(runtime, "login_code", "someone@example.com", {"code": "111222"})
    return cust, other


def assert_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["@type"] == "Error" and body["status"] == str(status) and body["reason"]
    return body


async def test_communication_messages_of_a_customer(api, runtime):
    cust, other = await _messages_for(runtime)
    r = await api.get(MESSAGES, params={"receiver.id": cust})
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "1"
    (msg,) = r.json()
    assert_conforms("TMF681", "CommunicationMessage", msg)
    assert msg["receiver"][0]["party"]["id"] == cust and msg["state"] == "completed"
    assert msg["messageType"] == "email" and "X1" in msg["subject"] and msg["tryTimes"] == 1
    one = (await api.get(f"{MESSAGES}/{msg['id']}")).json()
    assert_conforms("TMF681", "CommunicationMessage", one)
    assert one == msg

    everything = (await api.get(MESSAGES)).json()
    assert len(everything) == 3  # both customers' and the login code
    by_address = (await api.get(MESSAGES, params={"receiver.email": "SOMEONE@example.com"})).json()
    assert [m["subject"] for m in by_address] == ["Your login code: 111222"]
    assert (await api.get(MESSAGES, params={"state": "failed"})).json() == []
    assert len((await api.get(MESSAGES, params={"state": "completed", "limit": 2})).json()) == 2

    # Bad input: a TMF error, never a 500.
    assert_error(await api.get(f"{MESSAGES}/MSG-00000000"), 404)
    assert_error(await api.get(MESSAGES, params={"state": "sent"}), 400)
    assert_error(await api.get(MESSAGES, params={"receiver.id": "CUST 1; drop"}), 400)
    assert_error(await api.get(MESSAGES, params={"limit": 0}), 400)
    assert_error(await api.post(MESSAGES, json={}), 405)


async def test_audit_events_by_customer_order_and_time(api, runtime):
    cust, _ = await _messages_for(runtime)
    r = await api.get(f"{EVENT}/topic")
    assert r.status_code == 200
    for topic in r.json():
        assert_conforms("TMF688", "Topic", topic)
    r = await api.get(f"{EVENT}/topic/audit/event", params={"customerId": cust})
    assert r.status_code == 200
    events = r.json()
    assert [e["eventType"] for e in events] == [  # newest first
        "order.promo_rejected",
        "payment_method.added",
        "customer.created",
    ]
    for e in events:
        assert_conforms("TMF688", "Event", e)
    assert events[-1]["source"] == {"id": cust, "name": "customer", "@referredType": "customer"}
    assert {"id": cust, "role": "customer", "@referredType": "Customer"} in events[0]["relatedParty"]
    got = (await api.get(f"{EVENT}/topic/audit/event/{events[0]['id']}")).json()
    assert got == events[0]

    by_order = (await api.get(f"{EVENT}/topic/audit/event", params={"orderId": "ORD-000777"})).json()
    assert [e["event"]["code"] for e in by_order] == ["X1"]
    prefixed = (await api.get(f"{EVENT}/topic/audit/event", params={"eventType": "order.*"})).json()
    assert {e["eventType"] for e in prefixed} == {"order.promo_rejected"} and len(prefixed) == 2
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (await api.get(f"{EVENT}/topic/audit/event", params={"since": future})).json() == []
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    r = await api.get(f"{EVENT}/topic/audit/event", params={"since": past, "customerId": cust})
    assert len(r.json()) == 3

    # Bad input: a TMF error, never a 500.
    assert_error(await api.get(f"{EVENT}/topic/orders/event"), 404)
    assert_error(await api.get(f"{EVENT}/topic/nope"), 404)
    assert_error(await api.get(f"{EVENT}/topic/audit/event/not-a-uuid"), 404)
    assert_error(await api.get(f"{EVENT}/topic/audit/event/00000000-0000-0000-0000-000000000000"), 404)
    assert_error(await api.get(f"{EVENT}/topic/audit/event", params={"since": "yesterday"}), 400)
    assert_error(await api.get(f"{EVENT}/topic/audit/event", params={"since": "2026-12-01T09:00:00"}), 400)
    assert_error(await api.get(f"{EVENT}/topic/audit/event", params={"eventType": "order.*.x"}), 400)
    assert_error(await api.get(f"{EVENT}/topic/audit/event", params={"customerId": "a b"}), 400)

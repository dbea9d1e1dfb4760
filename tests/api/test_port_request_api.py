"""`/bss-api/v1/port-request`: bad input is a TMF error (400, 404, 409, 422) that changes nothing;
one live request per number; reads and filters. (The flows themselves: tests/workflows/test_port_workflow.py.)"""

from __future__ import annotations

from sqlalchemy import text

from core.clock import clock
from core.context import RequestContext
from core.db import transaction

PORTS = "/bss-api/v1/port-request"
CTX = RequestContext(actor="test", channel="scenario", service_identity="test")


async def counts(runtime) -> tuple[int, int]:
    async with runtime.engine.connect() as conn:
        ports = (await conn.execute(text("select count(*) from porting.port_request"))).scalar()
        events = (
            await conn.execute(text("select count(*) from audit.domain_event where event_type like 'port.%'"))
        ).scalar()
        return ports, events


async def customer(runtime) -> str:
    from tests.domains.test_subscription_lifecycle import new_customer

    return await new_customer(runtime)


async def stored(runtime, msisdn: str, customer_id: str, state: str | None = None) -> str:
    """A port-in stored without its workflow (the API's checks need no Temporal)."""
    from domains.porting import services

    async with transaction(runtime.db) as s:
        row = await services.create_port_request(
            s,
            CTX,
            direction="port_in",
            msisdn=msisdn,
            requested_port_date=clock.now().date(),
            donor_carrier="OtherTel",
            customer_id=customer_id,
            offering_id="PLAN_S",
        )
        if state is not None:
            await services.move(s, CTX, row.id, state, reason="test")
        return row.id


def body(**changes):
    base = {
        "direction": "port_in",
        "msisdn": "87651111",
        "requestedPortDate": clock.now().date().isoformat(),
        "donorCarrier": "OtherTel",
        "customerId": "CUST-00000000",
        "offeringId": "PLAN_S",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


BAD = [
    ({"direction": "sideways"}, 400, None),
    ({"msisdn": "12ab5678"}, 400, "port.request.msisdn_invalid"),
    ({"msisdn": 87651111}, 400, None),
    ({"requestedPortDate": "tomorrow"}, 400, None),
    ({"colour": "blue"}, 400, None),
    ({"offeringId": None}, 400, "port.request.target_invalid"),
    ({"subscriptionId": "SUB-000001"}, 400, "port.request.target_invalid"),
    ({"donorCarrier": None}, 400, "port.request.carrier_invalid"),
    ({"requestedPortDate": "2020-01-01"}, 422, "port.request.date_invalid"),
    ({"customerId": "CUST-0badc0de"}, 404, "customer.not_found"),
    ({"offeringId": "PLAN_NOPE", "customerId": "<real>"}, 404, "catalog.offering.not_found"),
    (
        {"direction": "port_out", "offeringId": None, "recipientCarrier": "OtherTel"},
        422,
        "port.out.not_our_number",
    ),
    ({"subscriptionId": "SUB-999999", "offeringId": None, "customerId": None}, 404, None),
]


async def test_a_bad_request_is_refused_and_changes_nothing(api, runtime):
    real = await customer(runtime)
    before = await counts(runtime)
    for change, status, reason in BAD:
        if change.get("customerId") == "<real>":
            change = {**change, "customerId": real}
        r = await api.post(PORTS, json=body(**change))
        assert r.status_code == status, (change, r.text)
        if reason is not None:
            assert r.json()["reason"] == reason, change
    assert await counts(runtime) == before


async def test_a_number_already_ours_cannot_be_ported_in(api, runtime):
    async with runtime.engine.connect() as conn:
        ours = (await conn.execute(text("select min(msisdn) from inventory.msisdn"))).scalar()
    r = await api.post(PORTS, json=body(msisdn=ours, customerId=await customer(runtime)))
    assert r.status_code == 422 and r.json()["reason"] == "port.request.msisdn_ours"
    assert await counts(runtime) == (0, 0)


async def test_one_live_request_per_number(api, runtime):
    customer_id = await customer(runtime)
    first = await stored(runtime, "87652222", customer_id)
    before = await counts(runtime)
    r = await api.post(PORTS, json=body(msisdn="87652222", customerId=customer_id))
    assert r.status_code == 409 and r.json()["reason"] == "port.request.already_open"
    assert first in r.text
    assert await counts(runtime) == before


async def test_reads_filters_and_decisions_on_ended_or_unknown_requests(api, runtime):
    customer_id = await customer(runtime)
    live = await stored(runtime, "87653333", customer_id)
    ended = await stored(runtime, "87654444", customer_id, state="reject")

    listed = await api.get(PORTS, params={"state": "acknowledged"})
    assert listed.status_code == 200 and [p["id"] for p in listed.json()] == [live]
    assert listed.headers["X-Total-Count"] == "1"
    one = (await api.get(f"{PORTS}/{ended}")).json()
    assert (one["state"], one["reason"], one["@type"], one["href"]) == (
        "rejected",
        "test",
        "PortRequest",
        f"{PORTS}/{ended}",
    )
    assert (await api.get(PORTS, params={"state": "sideways"})).status_code == 400
    assert (await api.get(f"{PORTS}/PORT-00000000")).json()["reason"] == "port.request.not_found"
    assert (await api.get(f"{PORTS}/not-a-port")).status_code == 400

    before = await counts(runtime)
    approve = await api.post(f"{PORTS}/{ended}/approve")
    assert approve.status_code == 422 and approve.json()["reason"] == "port.approve.invalid_state"
    reject = await api.post(f"{PORTS}/{ended}/reject", json={"reason": "again"})
    assert reject.status_code == 422 and reject.json()["reason"] == "port.reject.invalid_state"
    assert (await api.post(f"{PORTS}/PORT-00000000/approve")).status_code == 404
    assert (await api.post(f"{PORTS}/{live}/reject", json={"reason": ""})).status_code == 400
    assert (await api.post(f"{PORTS}/{live}/reject", json={"reason": "   "})).json()["reason"] == (
        "port.reject.reason_required"
    )
    assert await counts(runtime) == before


async def test_a_channel_opens_port_ins_but_neither_port_outs_nor_decisions(api, runtime):
    from tests.conftest import token_headers

    channel = await token_headers(runtime, "portal-test", "channel", actor="CUST-1a2b3c4d")
    customer_id = await customer(runtime)
    live = await stored(runtime, "87658888", customer_id)
    before = await counts(runtime)
    out = await api.post(
        PORTS,
        json=body(direction="port_out", offeringId=None, recipientCarrier="OtherTel", msisdn="87658888"),
        headers=channel,
    )
    assert out.status_code == 403 and out.json()["reason"] == "port.out.channel_forbidden"
    approve = await api.post(f"{PORTS}/{live}/approve", headers=channel)
    assert approve.status_code == 403 and approve.json()["reason"] == "auth.role.forbidden"
    port_in = await api.post(PORTS, json=body(msisdn="87658888", customerId=customer_id), headers=channel)
    assert port_in.status_code == 409  # allowed to ask; the number has a live request already
    assert (await api.get(f"{PORTS}/{live}", headers=channel)).status_code == 200
    assert await counts(runtime) == before

"""Cases, TMF621 trouble tickets and TMF683 interactions over HTTP: the ticket and case state
machines (an illegal move is a 422 with the rule code and changes nothing), SLA due times from the
seeded policies, bodies conforming to the TMF definitions, bad input as TMF errors."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text

from tests import tmf_schema
from tests.api.test_customer_api import assert_tmf_error, create

TT = "/tmf-api/troubleTicket/v4/troubleTicket"
CASE = "/bss-api/v1/case"
PI = "/tmf-api/partyInteraction/v4/partyInteraction"


def ticket_body(customer_id: str | None, **extra) -> dict:
    body = {
        "name": "No data since this morning",
        "description": "The customer's line shows no data session.",
        "ticketType": "service_outage",
        "severity": "Major",
        "priority": "normal",
        "relatedParty": [{"id": customer_id, "role": "customer", "@referredType": "Customer"}]
        if customer_id
        else [],
    }
    return body | extra


async def counts(runtime) -> dict[str, int]:
    out = {}
    async with runtime.engine.connect() as conn:
        for table in (
            "crm.ticket",
            "crm.ticket_note",
            "crm.support_case",
            "crm.interaction",
            "audit.domain_event",
        ):
            out[table] = (await conn.execute(text(f"select count(*) from {table}"))).scalar_one()
    return out


async def events(runtime, aggregate_id: str) -> list[str]:
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            text("select event_type from audit.domain_event where aggregate_id = :id order by id"),
            {"id": aggregate_id},
        )
        return [r[0] for r in rows]


async def patch(api, ticket_id: str, body: dict):
    return await api.patch(f"{TT}/{ticket_id}", json=body)


async def test_ticket_lifecycle_over_tmf621_with_refused_moves_changing_nothing(api, runtime):
    customer = (await create(api))["id"]
    r = await api.post(TT, json=ticket_body(customer, note=[{"text": "called in at 9:00"}]))
    assert r.status_code == 201, r.text
    ticket = r.json()
    tmf_schema.assert_conforms("TMF621", "TroubleTicket", ticket)
    tid = ticket["id"]
    assert tid.startswith("TKT-") and (ticket["status"], ticket["state"]) == ("acknowledged", "open")
    assert [n["text"] for n in ticket["note"]] == ["called in at 9:00"]
    # service_outage at normal priority: 240 minutes (seeded SLA policy)
    created = datetime.fromisoformat(ticket["creationDate"])
    assert datetime.fromisoformat(ticket["expectedResolutionDate"]) - created == timedelta(minutes=240)

    before = await counts(runtime)
    for body, status, reason in (
        ({"status": "inProgress"}, 422, "ticket.transition.valid_from_state"),  # open -> start
        ({"status": "closed"}, 422, "ticket.transition.valid_from_state"),
        ({"status": "acknowledged"}, 422, "ticket.ack.requires_agent"),
        # the whole PATCH is one transaction: the note and the priority are not kept either
        (
            {"priority": "high", "note": [{"text": "x"}], "status": "pending"},
            422,
            "ticket.transition.valid_from_state",
        ),
        (
            {"relatedParty": [{"id": "AGT-404", "role": "assignee", "@referredType": "Agent"}]},
            422,
            "ticket.assign.agent_must_be_active",
        ),
    ):
        assert_tmf_error(await patch(api, tid, body), status, reason)
    assert await counts(runtime) == before
    assert (await api.get(f"{TT}/{tid}")).json()["priority"] == "normal"

    agent = {"id": "AGT-001", "role": "assignee", "@referredType": "Agent"}
    acked = await patch(api, tid, {"relatedParty": [agent], "status": "acknowledged"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged"
    assert {"id": "AGT-001", "role": "assignee", "@referredType": "Agent"} in acked.json()["relatedParty"]
    assert (await patch(api, tid, {"status": "inProgress"})).json()["state"] == "in_progress"
    assert_tmf_error(
        await patch(api, tid, {"status": "resolved"}), 422, "ticket.resolve.requires_resolution_notes"
    )
    resolved = (await patch(api, tid, {"status": "resolved", "resolutionNotes": "APN reset"})).json()
    assert (resolved["state"], resolved["status"], resolved["resolutionNotes"]) == (
        "resolved",
        "resolved",
        "APN reset",
    )
    assert_tmf_error(
        await patch(api, tid, {"status": "cancelled"}), 422, "ticket.cancel.not_if_resolved_or_closed"
    )
    closed = (await patch(api, tid, {"status": "closed"})).json()
    tmf_schema.assert_conforms("TMF621", "TroubleTicket", closed)
    assert [s["status"] for s in closed["statusChange"]] == [
        "acknowledged",
        "acknowledged",
        "inProgress",
        "resolved",
        "closed",
    ]
    assert await events(runtime, tid) == [
        "ticket.opened",
        "ticket.note_added",
        "ticket.assigned",
        "ticket.acknowledged",
        "ticket.started",
        "ticket.resolved",
        "ticket.closed",
    ]

    listed = await api.get(TT, params={"relatedParty.id": customer})
    assert listed.status_code == 200 and [t["id"] for t in listed.json()] == [tid]
    assert listed.headers["X-Total-Count"] == "1"
    assert (await api.get(TT, params={"relatedParty.id": customer, "state": "open"})).json() == []


async def test_a_case_groups_tickets_and_follows_its_state_machine(api, runtime):
    customer = (await create(api))["id"]
    r = await api.post(
        CASE, json={"customerId": customer, "subject": "Roaming not working", "priority": "high"}
    )
    assert r.status_code == 201, r.text
    case = r.json()
    cid = case["id"]
    assert cid.startswith("CASE-") and (case["state"], case["tickets"]) == ("open", [])
    t = await api.post(
        TT,
        json=ticket_body(None, relatedEntity=[{"id": cid, "role": "case", "@referredType": "Case"}]),
    )
    assert t.status_code == 201, t.text
    tid = t.json()["id"]
    assert {"id": customer, "role": "customer"}.items() <= t.json()["relatedParty"][0].items()

    before = await counts(runtime)
    refused = assert_tmf_error(
        await api.post(f"{CASE}/{cid}/close", json={"resolutionCode": "fixed"}),
        422,
        "case.close.requires_all_tickets_resolved",
    )
    assert tid in refused["message"]
    assert_tmf_error(
        await api.post(f"{CASE}/{cid}/transition", json={"trigger": "resume"}),
        422,
        "case.transition.valid_from_state",
    )
    assert_tmf_error(
        await api.post(f"{CASE}/{cid}/close", json={}), 422, "case.close.requires_resolution_code"
    )
    assert await counts(runtime) == before

    assert (await api.post(f"{CASE}/{cid}/transition", json={"trigger": "take"})).json()[
        "state"
    ] == "in_progress"
    noted = await api.post(f"{CASE}/{cid}/note", json={"text": "customer is in Japan"})
    assert [n["text"] for n in noted.json()["notes"]] == ["customer is in Japan"]
    assert (await patch(api, tid, {"status": "cancelled", "statusChangeReason": "duplicate"})).json()[
        "state"
    ] == ("cancelled")
    closed = await api.post(
        f"{CASE}/{cid}/close", json={"resolutionCode": "fixed", "note": "settings pushed"}
    )
    assert closed.status_code == 200, closed.text
    assert (closed.json()["state"], closed.json()["resolutionCode"]) == ("closed", "fixed")
    assert closed.json()["tickets"][0]["state"] == "cancelled"
    assert_tmf_error(
        await api.post(f"{CASE}/{cid}/note", json={"text": "late"}), 422, "case.add_note.case_is_closed"
    )
    assert_tmf_error(
        await api.post(TT, json=ticket_body(None, relatedEntity=[{"id": cid, "role": "case"}])),
        422,
        "case.update.case_is_closed",
    )
    assert await events(runtime, cid) == [
        "case.opened",
        "case.taken",
        "case.note_added",
        "case.resolved",
        "case.closed",
    ]
    listed = (await api.get(CASE, params={"customerId": customer})).json()
    assert [c["id"] for c in listed] == [cid]
    agents = (await api.get("/bss-api/v1/agent", params={"role": "supervisor"})).json()
    assert [a["id"] for a in agents] == ["AGT-003"]


async def test_every_crm_write_is_an_interaction_on_the_customers_file(api):
    customer = (await create(api))["id"]
    other = (await create(api, email="bob@example.com", phone=None))["id"]
    cid = (await api.post(CASE, json={"customerId": customer, "subject": "Bill too high"})).json()["id"]
    tid = (
        await api.post(TT, json=ticket_body(None, ticketType="billing_dispute", relatedEntity=[{"id": cid}]))
    ).json()["id"]
    r = await api.get(PI, params={"relatedParty.id": customer})
    assert r.status_code == 200
    rows = r.json()
    for row in rows:
        tmf_schema.assert_conforms("TMF683", "PartyInteraction", row)
    assert [i["reason"] for i in rows] == ["ticket.opened", "case.opened", "customer.created"]
    assert {"id": tid, "role": "ticket", "@referredType": "TroubleTicket"} in [
        i["item"] for i in rows[0]["interactionItem"]
    ]
    assert r.headers["X-Total-Count"] == "3"
    assert [i["reason"] for i in (await api.get(PI, params={"relatedParty.id": other})).json()] == [
        "customer.created"
    ]
    one = await api.get(f"{PI}/{rows[0]['id']}")
    assert one.status_code == 200 and one.json()["id"] == rows[0]["id"]
    assert_tmf_error(await api.get(f"{PI}/INT-00000000"), 404)

    logged = await api.post(
        PI,
        json={
            "reason": "phone call",
            "direction": "inbound",
            "channel": [{"id": "phone", "name": "phone"}],
            "description": "asked about the bill",
            "relatedParty": [{"id": customer, "role": "customer", "@referredType": "Customer"}],
        },
    )
    assert logged.status_code == 201, logged.text
    tmf_schema.assert_conforms("TMF683", "PartyInteraction", logged.json())
    assert logged.json()["direction"] == "inbound"
    assert_tmf_error(await api.post(PI, json={"reason": "x", "direction": "sideways", "channel": []}), 400)


async def test_bad_input_is_a_tmf_error_and_writes_nothing(api, runtime):
    customer = (await create(api))["id"]
    before = await counts(runtime)
    for body, status, reason in (
        ({"ticketType": "service_outage"}, 400, None),  # no description
        (ticket_body(customer, ticketType="haunted"), 400, "ticket.open.type_invalid"),
        (ticket_body(customer, priority="asap"), 400, "ticket.open.priority_invalid"),
        (ticket_body(customer, colour="red"), 400, None),
        (ticket_body(None), 422, "ticket.open.requires_customer"),
        (ticket_body("CUST-00000000"), 404, "ticket.open.customer_not_found"),
        (
            ticket_body(customer, relatedEntity=[{"id": "CASE-00000000", "role": "case"}]),
            404,
            "ticket.open.case_not_found",
        ),
    ):
        assert_tmf_error(await api.post(TT, json=body), status, reason)
    assert_tmf_error(await patch(api, "TKT-00000000", {"status": "closed"}), 404, "ticket.not_found")
    assert_tmf_error(await api.get(f"{TT}/TKT-00000000"), 404, "ticket.not_found")
    assert_tmf_error(await api.get(TT, params={"state": "weird"}), 400)
    assert_tmf_error(
        await api.post(CASE, json={"customerId": customer, "subject": "x", "priority": "p0"}),
        400,
        "case.update.invalid_priority",
    )
    assert_tmf_error(await api.post(CASE, json={"customerId": "CUST-00000000", "subject": "x"}), 404)
    assert_tmf_error(await api.post(CASE, json={"customerId": customer}), 400)
    assert_tmf_error(await api.get(f"{CASE}/CASE-00000000"), 404, "case.not_found")
    assert_tmf_error(await api.get(f"{CASE}/nope"), 400)
    assert await counts(runtime) == before

    tid = (await api.post(TT, json=ticket_body(customer))).json()["id"]
    assert_tmf_error(await patch(api, tid, {"status": "held"}), 400)
    assert_tmf_error(await patch(api, tid, {"priority": "asap"}), 400, "ticket.update.invalid_priority")
    suspended = await api.patch(
        f"/tmf-api/customerManagement/v4/customer/{customer}", json={"status": "suspended"}
    )
    assert suspended.status_code == 200, suspended.text
    assert_tmf_error(
        await api.post(CASE, json={"customerId": customer, "subject": "x"}),
        422,
        "case.open.customer_must_be_active",
    )


async def test_the_same_idempotency_key_opens_one_ticket(api, runtime):
    customer = (await create(api))["id"]
    headers = {"Idempotency-Key": "call-42"}
    first = await api.post(TT, json=ticket_body(customer, status="acknowledged"), headers=headers)
    again = await api.post(TT, json=ticket_body(customer, status="acknowledged"), headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["id"] == again.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert (await counts(runtime))["crm.ticket"] == 1
    other = await api.post(TT, json=ticket_body(customer, name="Something else"), headers=headers)
    assert_tmf_error(other, 422, "idempotency_key.reused")

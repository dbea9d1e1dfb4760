"""The cockpit's workbench over HTTP (the app in-process, real Postgres): ticket and case queues by
SLA due time on the business clock, mine / unassigned / all, assign (to oneself; to another agent
only as a supervisor), note, resolve, close behind a confirm; promotions created and exhausted by a
supervisor; the catalogue edited by an admin (a price with a window, a plan added and retired)
and only read by a csr. Every change is audited under the operator's email, channel cockpit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from core.clock import clock
from core.db import transaction
from tests.portals.cockpit_harness import (
    ADMIN_CTX,
    cheap_hashes,  # noqa: F401 (fixture)
    cockpit_client,
    csrf_of,
    operator,
    sign_in,
)

pytestmark = pytest.mark.usefixtures("cheap_hashes")


async def _rows(runtime, sql: str, **params) -> list[tuple]:
    async with runtime.engine.connect() as c:
        return [tuple(r) for r in (await c.execute(text(sql), params)).all()]


async def _one(runtime, sql: str, **params):
    async with runtime.engine.connect() as c:
        return (await c.execute(text(sql), params)).scalar()


async def _post(client, path: str, token: str, **data):
    return await client.post(path, data={**data, "csrf_token": token})


def _order(html: str, *ids: str) -> list[int]:
    return [html.index(f'id="ticket-{i}"') for i in ids]


async def test_the_ticket_and_case_workbench_on_the_business_clock(settings, runtime):
    from domains.crm import cases, tickets
    from domains.crm.services import create_customer

    now = clock.freeze()
    async with transaction(runtime.db) as s:
        cust = await create_customer(
            s, ADMIN_CTX, given_name="Ada", family_name="Byron", email="ada.b@example.com"
        )
        case = await cases.open_case(s, ADMIN_CTX, customer_id=cust.id, subject="Roaming does not work")
        in_case = await tickets.open_ticket(
            s,
            ADMIN_CTX,
            ticket_type="configuration",
            subject="Check roaming",
            description="",
            case_id=case.id,
        )
        soon = await tickets.open_ticket(
            s, ADMIN_CTX, ticket_type="information_request", subject="Call back", description=""
        )
        someday = await tickets.open_ticket(
            s, ADMIN_CTX, ticket_type="information_request", subject="Someday", description=""
        )
        in_case.sla_due_at, soon.sla_due_at, someday.sla_due_at = (
            now + timedelta(hours=2),
            now + timedelta(minutes=30),
            None,
        )
        for t in (in_case, soon, someday):
            s.add(t)
    a, b, c = in_case.id, soon.id, someday.id
    await operator(runtime, "ana@example.com", "csr")
    await operator(runtime, "sup@example.com", "supervisor")
    async with cockpit_client(settings, runtime) as ana:
        await sign_in(ana, "ana@example.com")
        queue = (await ana.get("/tickets")).text
        assert _order(queue, b, a, c) == sorted(_order(queue, b, a, c))
        assert "30 min left" in queue and "2 h 0 min left" in queue and "no SLA" in queue
        assert "past SLA" not in queue
        clock.advance(timedelta(hours=1))  # business time, not the wall clock
        queue = (await ana.get("/tickets")).text
        assert "30 min overdue" in queue and "1 h 0 min left" in queue
        assert "past SLA" in queue.split(f'id="ticket-{a}"')[0]
        token = csrf_of(queue)

        assert "No open tickets in this view" in (await ana.get("/tickets?view=mine")).text
        assert (await ana.get("/tickets?view=everything")).status_code == 400
        r = await _post(ana, f"/tickets/{a}", token, action="assign", agent="me")
        assert r.status_code == 303
        mine = (await ana.get("/tickets?view=mine")).text
        assert f'id="ticket-{a}"' in mine and f'id="ticket-{b}"' not in mine
        unassigned = (await ana.get("/tickets?view=unassigned")).text
        assert f'id="ticket-{a}"' not in unassigned and f'id="ticket-{b}"' in unassigned
        assert f'id="case-{case.id}"' in (await ana.get("/cases?view=mine")).text
        assert f'id="case-{case.id}"' not in (await ana.get("/cases?view=unassigned")).text
        refused = await _post(ana, f"/tickets/{b}", token, action="assign", agent="AGT-001")
        assert refused.status_code == 403  # handing work to someone else is a supervisor's

        page = await ana.get(f"/tickets/{a}")
        assert page.status_code == 200 and "ana" in page.text.split('id="assignee"')[1][:80]
        assert (
            await _post(ana, f"/tickets/{a}", token, action="note", text="asked the partner")
        ).status_code == 303
        assert (
            await _post(ana, f"/tickets/{a}", token, action="resolve", text="roaming reset")
        ).status_code == 303
        step1 = await _post(ana, f"/tickets/{a}", token, action="close", back=f"/tickets/{a}")
        assert step1.status_code == 200 and f"Confirm: close ticket {a}" in step1.text
        assert await _one(runtime, "select state from crm.ticket where id = :t", t=a) == "resolved"
        step2 = await _post(
            ana, f"/tickets/{a}", token, action="close", confirmed="yes", back=f"/tickets/{a}"
        )
        assert step2.status_code == 303 and step2.headers["location"].startswith(f"/tickets/{a}?done=")
        assert await _one(runtime, "select state from crm.ticket where id = :t", t=a) == "closed"
        assert "asked the partner" in (await ana.get(f"/tickets/{a}")).text

        case_page = f"/cases/{case.id}"
        assert (await _post(ana, case_page, token, action="note", text="customer abroad")).status_code == 303
        assert (await _post(ana, case_page, token, action="take")).status_code == 303
        no_code = await _post(ana, case_page, token, action="close")
        assert no_code.status_code == 422 and "case.close.requires_resolution_code" in no_code.text
        step1 = await _post(ana, case_page, token, action="close", resolution_code="fixed")
        assert step1.status_code == 200 and "resolving it first" in step1.text
        assert (
            await _one(runtime, "select state from crm.support_case where id = :c", c=case.id)
            == "in_progress"
        )
        step2 = await _post(ana, case_page, token, action="close", resolution_code="fixed", confirmed="yes")
        assert step2.status_code == 303
        assert await _one(runtime, "select state from crm.support_case where id = :c", c=case.id) == "closed"
        assert "customer abroad" in (await ana.get(case_page)).text
        assert f'id="case-{case.id}"' not in (await ana.get("/cases")).text

    async with cockpit_client(settings, runtime) as sup:
        await sign_in(sup, "sup@example.com")
        token = csrf_of((await sup.get(f"/tickets/{b}")).text)
        assert (await _post(sup, f"/tickets/{b}", token, action="assign", agent="AGT-001")).status_code == 303
    assert await _one(runtime, "select assigned_to_agent_id from crm.ticket where id = :t", t=b) == "AGT-001"

    ana_agent = await _one(runtime, "select id from crm.agent where email = 'ana@example.com'")
    assert ana_agent.startswith("AGT-OP")
    events = await _rows(
        runtime,
        "select event_type, actor, channel from audit.domain_event where aggregate_id in (:a, :b, :c) "
        "and actor <> 'test-admin' order by id",
        a=a,
        b=b,
        c=case.id,
    )
    assert [e[0] for e in events if e[0].startswith("ticket.")] == [
        "ticket.assigned",
        "ticket.note_added",
        "ticket.resolved",
        "ticket.closed",
        "ticket.assigned",
    ]
    assert {"case.note_added", "case.closed"} <= {e[0] for e in events}
    assert {e[1:] for e in events} == {("ana@example.com", "cockpit"), ("sup@example.com", "cockpit")}
    assert [e[1] for e in events if e[0] == "ticket.assigned"] == ["ana@example.com", "sup@example.com"]


async def test_a_ticket_a_workflow_waits_on_is_answered_by_a_supervisor_after_a_confirm(settings, runtime):
    from domains.crm import tickets

    async with transaction(runtime.db) as s:
        waiting = await tickets.open_ticket(
            s,
            ADMIN_CTX,
            ticket_type="provisioning_exception",
            subject="HLR did not answer",
            description="",
            waiting_workflow_id="order-ORD-000042",
            waiting_topic="HLR_PROVISION",
        )
    await operator(runtime, "ana@example.com", "csr")
    await operator(runtime, "sup@example.com", "supervisor")
    for email, status in (("ana@example.com", 403), ("sup@example.com", 200)):
        async with cockpit_client(settings, runtime) as client:
            await sign_in(client, email)
            page = await client.get(f"/tickets/{waiting.id}")
            assert ("Retry the step" in page.text) is (status == 200)
            r = await _post(
                client, f"/tickets/{waiting.id}", csrf_of(page.text), action="resolve", text="by hand"
            )
            assert r.status_code == status
            if status == 200:
                assert "Tell the workflow order-ORD-000042 that its waiting step (HLR_PROVISION)" in r.text
    assert await _one(runtime, "select state from crm.ticket where id = :t", t=waiting.id) == "open"


async def test_promotions_by_a_supervisor_and_the_catalogue_by_an_admin_only(settings, runtime):
    await operator(runtime, "csr@example.com", "csr")
    await operator(runtime, "sup@example.com", "supervisor")
    await operator(runtime, "root@example.com", "admin")
    promo = {
        "code": "spring10",
        "name": "Spring",
        "discount_type": "percent",
        "discount_value": "10",
        "periods": "3",
        "code_kind": "multi_use",
        "max_uses": "100",
        "valid_to": (clock.now() + timedelta(days=30)).date().isoformat(),
    }
    async with cockpit_client(settings, runtime) as sup:
        await sign_in(sup, "sup@example.com")
        token = csrf_of((await sup.get("/promotions")).text)
        step1 = await _post(sup, "/promotions", token, **promo)
        assert step1.status_code == 200 and "10% off the plan price for 3 period(s)" in step1.text
        assert "at most 100 use(s)" in step1.text
        assert await _one(runtime, "select count(*) from catalog.promotion") == 0
        step2 = await _post(sup, "/promotions", token, **promo, confirmed="yes")
        assert step2.status_code == 303
        listed = (await sup.get("/promotions")).text
        row = listed.split('id="promo-SPRING10"')[1].split("</tr>")[0]
        assert "0 / 100" in row and "active" in row
        again = await _post(sup, "/promotions", token, **promo)
        assert again.status_code == 409 and "catalog.promotion.code_in_use" in again.text
        bad = await _post(sup, "/promotions", token, **{**promo, "code": "X1", "discount_value": "120"})
        assert bad.status_code == 400 and "catalog.promotion.invalid_discount_value" in bad.text
        ex1 = await _post(sup, "/promotions/SPRING10/exhaust", token)
        assert ex1.status_code == 200 and "cannot be undone" in ex1.text
        assert await _one(runtime, "select state from catalog.promotion") == "active"
        assert (await _post(sup, "/promotions/SPRING10/exhaust", token, confirmed="yes")).status_code == 303
        assert await _one(runtime, "select state from catalog.promotion") == "exhausted"
        assert (await sup.get("/admin/catalog")).status_code == 403

    price = {
        "price_id": "PRICE_PLAN_S_SPRING",
        "amount": "9.90",
        "valid_from": clock.now().date().isoformat(),
        "valid_to": (clock.now() + timedelta(days=30)).date().isoformat(),
    }
    add_price = "/admin/catalog/offerings/PLAN_S/prices"
    async with cockpit_client(settings, runtime) as csr:
        await sign_in(csr, "csr@example.com")
        ro = await csr.get("/catalog")
        assert ro.status_code == 200 and 'id="plan-PLAN_S"' in ro.text and "Add price" not in ro.text
        assert "Create…" not in (await csr.get("/promotions")).text
        refused = await _post(csr, add_price, csrf_of(ro.text), **price, confirmed="yes")
        assert refused.status_code == 403 and "cockpit.role.forbidden" in refused.text
    async with cockpit_client(settings, runtime) as root:
        await sign_in(root, "root@example.com")
        edit = await root.get("/admin/catalog")
        assert edit.status_code == 200 and f'action="{add_price}"' in edit.text
        token = csrf_of(edit.text)
        step1 = await _post(root, add_price, token, **price)
        assert (
            step1.status_code == 200 and "Add the price PRICE_PLAN_S_SPRING to PLAN_S: SGD 9.90" in step1.text
        )
        count = "select count(*) from catalog.product_offering_price where id = 'PRICE_PLAN_S_SPRING'"
        assert await _one(runtime, count) == 0
        assert (await _post(root, add_price, token, **price, confirmed="yes")).status_code == 303
        assert await _one(runtime, count) == 1
        bad = await _post(
            root, add_price, token, **{**price, "price_id": "P2", "valid_to": price["valid_from"]}
        )
        assert bad.status_code == 400 and "catalog.price.invalid_window" in bad.text
        shown = (await root.get("/catalog")).text
        assert 'id="price-PRICE_PLAN_S_SPRING"' in shown and "on sale now" in shown

        plan = {"offering_id": "PLAN_XL", "name": "Extra large", "amount": "45.00", "allow_data": "-1"}
        step1 = await _post(root, "/admin/catalog/offerings", token, **plan)
        assert step1.status_code == 200 and "data unlimited" in step1.text
        assert (
            await _post(root, "/admin/catalog/offerings", token, **plan, confirmed="yes")
        ).status_code == 303
        retire = "/admin/catalog/offerings/PLAN_XL/retire"
        assert "Stop selling PLAN_XL" in (await _post(root, retire, token)).text
        assert (await _post(root, retire, token, confirmed="yes")).status_code == 303
        status = "select lifecycle_status from catalog.product_offering where id = 'PLAN_XL'"
        assert await _one(runtime, status) == "Retired"
    events = await _rows(
        runtime,
        "select event_type, actor, channel from audit.domain_event where event_type like 'promotion.%' "
        "or event_type like 'catalog.%' order by id",
    )
    assert [e[0] for e in events] == [
        "promotion.created",
        "promotion.exhausted",
        "catalog.price.added",
        "catalog.offering.added",
        "catalog.offering.retired",
    ]
    assert [e[1] for e in events] == ["sup@example.com"] * 2 + ["root@example.com"] * 3
    assert {e[2] for e in events} == {"cockpit"}


async def test_a_supervisor_approves_one_port_and_rejects_another_after_confirming(saga, settings):
    import asyncio

    from core.context import RequestContext
    from ops import porting

    runtime = saga.runtime
    customer_id = await saga.customer()
    ctx = RequestContext(actor="channel-x", channel="scenario", service_identity="test")
    tomorrow = (clock.now() + timedelta(days=1)).date()
    ids = []
    for msisdn in ("87651001", "87651002"):
        view = await porting.create(
            runtime,
            ctx,
            direction="port_in",
            msisdn=msisdn,
            requested_port_date=tomorrow,
            donor_carrier="OtherTel",
            customer_id=customer_id,
            offering_id="PLAN_S",
        )
        ids.append(view["id"])
    for _ in range(300):
        if {(await porting.get(runtime, i))["state"] for i in ids} == {"validated"}:
            break
        await asyncio.sleep(0.1)
    keep, drop = ids
    state = "select state from porting.port_request where id = :p"
    await operator(runtime, "sup@example.com", "supervisor")
    async with cockpit_client(settings, runtime) as sup:
        await sign_in(sup, "sup@example.com")
        listed = await sup.get("/porting?state=validated")
        assert f'id="port-{keep}"' in listed.text and f'id="port-{drop}"' in listed.text
        token = csrf_of(listed.text)
        step1 = await _post(sup, f"/porting/{keep}", token, action="approve")
        assert step1.status_code == 200
        assert (
            f"Approve the port-in of 87651001 from OtherTel to a new PLAN_S line of {customer_id}"
            in step1.text
        )
        assert await _one(runtime, state, p=keep) == "validated"
        assert (
            await _post(sup, f"/porting/{keep}", token, action="approve", confirmed="yes")
        ).status_code == 303
        assert await _one(runtime, state, p=keep) == "approved"

        no_reason = await _post(sup, f"/porting/{drop}", token, action="reject")
        assert no_reason.status_code == 422 and "port.reject.reason_required" in no_reason.text
        step1 = await _post(sup, f"/porting/{drop}", token, action="reject", reason="customer withdrew")
        assert step1.status_code == 200 and "it ends as rejected and nothing moves" in step1.text
        assert await _one(runtime, state, p=drop) == "validated"
        step2 = await _post(
            sup, f"/porting/{drop}", token, action="reject", reason="customer withdrew", confirmed="yes"
        )
        assert step2.status_code == 303
        assert (await sup.get("/porting?state=rejected")).text.count("customer withdrew") == 1
        again = await _post(sup, f"/porting/{drop}", token, action="approve")
        assert again.status_code == 422  # ended: nothing left to decide
    rows = await _rows(runtime, "select id, state, approved_by, reason from porting.port_request order by id")
    assert {r[0]: r[1:] for r in rows} == {
        keep: ("approved", "sup@example.com", None),
        drop: ("rejected", None, "customer withdrew"),
    }
    events = await _rows(
        runtime,
        "select aggregate_id, event_type, channel from audit.domain_event where actor = 'sup@example.com' "
        "and aggregate_type <> 'operator' order by id",
    )
    assert {(e[0], e[2]) for e in events} == {(keep, "cockpit"), (drop, "cockpit")}


async def test_an_admin_disables_an_operator_only_after_confirming_and_their_session_ends(settings, runtime):
    csr = await operator(runtime, "csr@example.com", "csr")
    root = await operator(runtime, "root@example.com", "admin")
    disabled = "select disabled_at is not null from staff.operator where id = :o"
    async with cockpit_client(settings, runtime) as them, cockpit_client(settings, runtime) as admin:
        await sign_in(them, "csr@example.com")
        await sign_in(admin, "root@example.com")
        token = csrf_of((await admin.get("/admin/operators")).text)
        step1 = await _post(admin, f"/admin/operators/{csr.id}/disable", token)
        assert step1.status_code == 200 and "signed out of every cockpit session" in step1.text
        assert await _one(runtime, disabled, o=csr.id) is False
        assert (await them.get("/tickets")).status_code == 200
        step2 = await _post(admin, f"/admin/operators/{csr.id}/disable", token, confirmed="yes")
        assert step2.status_code == 303 and await _one(runtime, disabled, o=csr.id) is True
        assert (await them.get("/tickets")).status_code == 303  # signed out
        myself = await _post(admin, f"/admin/operators/{root.id}/disable", token, confirmed="yes")
        assert myself.status_code == 400 and await _one(runtime, disabled, o=root.id) is False
        assert (await _post(admin, f"/admin/operators/{csr.id}/enable", token)).status_code == 303
        assert await _one(runtime, disabled, o=csr.id) is False

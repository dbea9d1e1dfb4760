"""The pools' low watermark: `inventory.low_watermark` and an operator ticket once per crossing
under the threshold, not once per reservation; armed again once the pool is back above it. And a
held number: the picker skips it, only an order naming it takes it."""

from __future__ import annotations

from sqlalchemy import text

from core.context import RequestContext
from core.db import transaction
from domains.inventory import services as inv

CTX = RequestContext(actor="tester", channel="cli", service_identity="test")


async def reserve_and_check(db, key: str, threshold: int) -> bool:
    """One order's reservation step: a number, then the watermark check, in one transaction."""
    async with transaction(db) as s:
        number = await inv.reserve_msisdn(s, CTX, reserved_for=key)
        crossed = await inv.check_low_watermark(s, CTX, resource="msisdn", threshold=threshold)
    return number, crossed


async def rows(db, sql: str) -> list:
    async with db() as s:
        return list((await s.exec(text(sql))).all())


async def test_low_watermark_fires_once_per_crossing_with_a_ticket(runtime) -> None:
    db = runtime.db
    threshold = 998  # 1,000 seeded: the second reservation leaves 998, the third 997 (< 998 twice)
    crossed = [(await reserve_and_check(db, f"SO-{i}", threshold))[1] for i in range(4)]
    assert crossed == [False, False, True, False]
    events = await rows(
        db,
        "select payload from audit.domain_event where event_type = 'inventory.low_watermark' order by id",
    )
    assert [e[0] for e in events] == [
        {
            "resource": "msisdn",
            "available": 997,
            "threshold": threshold,
            "ticket_id": events[0][0]["ticket_id"],
        }
    ]
    tickets = await rows(
        db, "select id, ticket_type, state from crm.ticket where ticket_type = 'inventory_low'"
    )
    assert [(t[0], t[1], t[2]) for t in tickets] == [(events[0][0]["ticket_id"], "inventory_low", "open")]

    # Numbers come back (above the threshold): the next reservation re-arms the watermark, and the
    # next fall under it is a new crossing.
    async with transaction(db) as s:
        for i in range(4):
            await inv.release_msisdn(s, CTX, msisdn=f"9000000{i}", reserved_for=f"SO-{i}")
    again = [(await reserve_and_check(db, f"SO-again-{i}", threshold))[1] for i in range(3)]
    assert again == [False, False, True]
    assert (
        len(await rows(db, "select 1 from audit.domain_event where event_type = 'inventory.low_watermark'"))
        == 2
    )


async def test_a_held_number_is_skipped_by_the_picker_and_taken_by_the_order_naming_it(runtime) -> None:
    db = runtime.db
    async with transaction(db) as s:
        await inv.hold_msisdn(s, CTX, msisdn="90000000")
    async with transaction(db) as s:
        assert await inv.reserve_msisdn(s, CTX, reserved_for="SO-1") == "90000001"
    async with transaction(db) as s:
        assert await inv.reserve_msisdn(s, CTX, reserved_for="SO-2", preferred="90000000") == "90000000"
        # The hold's late release changes nothing now.
        assert not await inv.release_hold(
            s, CTX, msisdn="90000000", hold_ref="signup-hold-90000000", reason="expired"
        )
    status = await rows(db, "select status, reserved_for from inventory.msisdn where msisdn = '90000000'")
    assert [tuple(r) for r in status] == [("reserved", "SO-2")]

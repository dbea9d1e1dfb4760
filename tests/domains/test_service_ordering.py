"""Service ordering (SOM) against the real Postgres: lifecycles of the service order, services and
provisioning tasks; decomposition; reservation; attempts; and idempotency of every write."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core.context import RequestContext
from core.db import transaction
from core.errors import NotFound, PolicyViolation
from domains.audit.services import events_for
from domains.service_ordering import rules, services

WORKER = RequestContext(actor="temporal-worker", channel="workflow", service_identity="worker")
IDENTITY = {
    "msisdn": "90000042",
    "iccid": "8910101000000000042",
    "imsi": "525010000000042",
    "activation_code": "LPA:1$smdp.bss.local$ABCDEF0123456789",
}

SO_LEGAL = {
    ("start", "acknowledged"): "in_progress",
    ("complete", "in_progress"): "completed",
    ("fail", "acknowledged"): "failed",
    ("fail", "in_progress"): "failed",
}
SERVICE_LEGAL = {
    ("reserve", "designed"): "reserved",
    ("activate", "reserved"): "activated",
    ("fail", "designed"): "failed",
    ("fail", "reserved"): "failed",
    ("terminate", "activated"): "terminated",
}
TASK_LEGAL = {
    ("start", "pending"): "running",
    ("start", "failed"): "running",
    ("start", "stuck"): "running",
    ("complete", "running"): "completed",
    ("fail", "running"): "failed",
    ("stuck", "running"): "stuck",
    ("resolve", "stuck"): "completed",
}


def _moves(legal: dict[tuple[str, str], str]) -> list[tuple[str, str, str | None]]:
    triggers = {t for t, _ in legal}
    states = {s for _, s in legal} | set(legal.values())
    return [(t, s, legal.get((t, s))) for t in sorted(triggers) for s in sorted(states)]


@pytest.mark.parametrize(
    ("machine", "legal", "code"),
    [
        (rules.service_order_lifecycle, SO_LEGAL, "service_order.transition.invalid"),
        (rules.service_lifecycle, SERVICE_LEGAL, "service.transition.invalid"),
        (rules.task_lifecycle, TASK_LEGAL, "provisioning_task.transition.invalid"),
    ],
    ids=["service_order", "service", "provisioning_task"],
)
def test_lifecycles_allow_exactly_the_listed_moves(machine, legal, code) -> None:
    assert machine.table == legal
    for trigger, state, expected in _moves(legal):
        if expected is not None:
            assert machine.next(trigger, state) == expected
        else:
            with pytest.raises(PolicyViolation) as exc:
                machine.next(trigger, state)
            assert exc.value.code == code, (trigger, state)


async def _count(runtime, table: str) -> int:
    async with runtime.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM service_ordering.{table}"))).scalar_one())


async def _rows(runtime) -> dict[str, int]:
    tables = ("service_order", "service_order_item", "service", "service_state_history", "provisioning_task")
    counts = {t: await _count(runtime, t) for t in tables}
    async with runtime.engine.connect() as conn:
        counts["audit"] = int(
            (await conn.execute(text("SELECT count(*) FROM audit.domain_event"))).scalar_one()
        )
    return counts


async def _new_so(runtime, order_id: str = "ORD-000001") -> str:
    async with transaction(runtime.db) as s:
        so = await services.create_service_order(
            s, WORKER, order_id=order_id, customer_id="CUST-0a0b0c0d", offering_id="PLAN_S"
        )
        return so.id


async def _reserved_so(runtime) -> str:
    so_id = await _new_so(runtime)
    async with transaction(runtime.db) as s:
        await services.record_reservation(s, WORKER, service_order_id=so_id, **IDENTITY)
    return so_id


async def _task(runtime, fn, so_id: str, task_type: str, **kwargs):
    async with transaction(runtime.db) as s:
        return await fn(s, WORKER, service_order_id=so_id, task_type=task_type, **kwargs)


async def _run_all_tasks(runtime, so_id: str) -> None:
    for task_type in rules.TASK_TYPES:
        await _task(runtime, services.task_started, so_id, task_type)
        await _task(runtime, services.task_completed, so_id, task_type)


# ---- decomposition ------------------------------------------------------------------------------


async def test_create_service_order_decomposes_into_one_cfs_two_rfs_and_four_tasks(runtime) -> None:
    so_id = await _new_so(runtime)
    async with transaction(runtime.db) as s:
        so = await services.get_service_order(s, so_id)
        found = await services.list_services(s, service_order_id=so_id)
        tasks = await services.list_tasks(s, service_order_id=so_id)
        history = await services.service_history(s, found[0].id)
        events = await events_for(s, "ServiceOrder", so_id)
    assert so_id.startswith("SO-") and (so.order_id, so.state) == ("ORD-000001", "acknowledged")
    cfs = [x for x in found if x.type == "CFS"]
    rfs = [x for x in found if x.type == "RFS"]
    assert [(c.name, c.spec_id, c.state, c.parent_service_id) for c in cfs] == [
        ("MobileBroadband", "SSPEC_CFS_MOBILE_BROADBAND", "designed", None)
    ]
    assert sorted((r.name, r.spec_id, r.state, r.parent_service_id) for r in rfs) == [
        ("DataService", "SSPEC_RFS_DATA_BEARER", "designed", cfs[0].id),
        ("VoiceService", "SSPEC_RFS_VOICE_BEARER", "designed", cfs[0].id),
    ]
    assert cfs[0].characteristics["orderId"] == "ORD-000001"
    assert sorted(t.task_type for t in tasks) == sorted(rules.TASK_TYPES)
    assert {(t.state, t.attempts, t.service_id) for t in tasks} == {("pending", 0, cfs[0].id)}
    assert all(t.id.startswith("PTK-") for t in tasks)
    assert [(h.from_state, h.to_state) for h in history] == [(None, "designed")]
    assert [e.event_type for e in events] == ["service_order.acknowledged"]
    assert await _count(runtime, "service_order_item") == 1


async def test_decomposition_writes_its_rows_in_a_few_statements(runtime) -> None:
    """Its ids in one round trip, the service order by INSERT … ON CONFLICT (no savepoint), each
    table's rows in one batch: 8 statements where it took 26 (issue 12)."""
    from sqlalchemy import event

    statements: list[str] = []

    def count(_conn, _cursor, statement, *_):
        statements.append(statement)

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", count)
    try:
        await _new_so(runtime)
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) <= 8, statements


async def test_create_service_order_twice_returns_the_first(runtime) -> None:
    first = await _new_so(runtime)
    before = await _rows(runtime)
    assert await _new_so(runtime) == first
    assert await _rows(runtime) == before


# ---- reservation --------------------------------------------------------------------------------


async def test_reservation_moves_services_to_reserved_and_the_order_in_progress(runtime) -> None:
    so_id = await _reserved_so(runtime)
    before = await _rows(runtime)
    async with transaction(runtime.db) as s:
        await services.record_reservation(s, WORKER, service_order_id=so_id, **IDENTITY)
    assert await _rows(runtime) == before  # a second run changes nothing
    async with transaction(runtime.db) as s:
        so = await services.get_service_order(s, so_id)
        by_name = {x.name: x for x in await services.list_services(s, service_order_id=so_id)}
    assert so.state == "in_progress" and so.started_at is not None
    assert {x.state for x in by_name.values()} == {"reserved"}
    cfs = by_name["MobileBroadband"].characteristics
    assert (cfs["msisdn"], cfs["iccid"], cfs["imsi"], cfs["activationCode"]) == (
        IDENTITY["msisdn"],
        IDENTITY["iccid"],
        IDENTITY["imsi"],
        IDENTITY["activation_code"],
    )
    assert cfs["orderId"] == "ORD-000001"
    assert by_name["VoiceService"].characteristics == {"msisdn": "90000042"}


async def test_reservation_of_another_number_conflicts(runtime) -> None:
    so_id = await _reserved_so(runtime)
    before = await _rows(runtime)
    with pytest.raises(PolicyViolation) as exc:
        async with transaction(runtime.db) as s:
            await services.record_reservation(
                s, WORKER, service_order_id=so_id, **{**IDENTITY, "msisdn": "90000043"}
            )
    assert exc.value.code == "service_order.reservation.conflict"
    assert await _rows(runtime) == before


# ---- provisioning tasks -------------------------------------------------------------------------


async def test_task_started_counts_every_attempt_including_retries(runtime) -> None:
    so_id = await _reserved_so(runtime)
    hlr = rules.HLR_PROVISION
    assert await _task(runtime, services.task_started, so_id, hlr) == 1
    # the first attempt died without reporting: the task is still running
    assert await _task(runtime, services.task_started, so_id, hlr) == 2
    await _task(runtime, services.task_failed, so_id, hlr, error="HLR timeout")
    await _task(runtime, services.task_failed, so_id, hlr, error="HLR timeout")
    assert await _task(runtime, services.task_started, so_id, hlr) == 3
    await _task(runtime, services.task_completed, so_id, hlr)
    await _task(runtime, services.task_completed, so_id, hlr)
    async with transaction(runtime.db) as s:
        task = await services.get_task(s, service_order_id=so_id, task_type=hlr)
        events = await events_for(s, "ProvisioningTask", task.id)
    assert (task.state, task.attempts, task.last_error) == ("completed", 3, "HLR timeout")
    assert task.completed_at is not None
    assert [e.event_type for e in events] == [
        "provisioning.task.created",
        "provisioning.task.started",
        "provisioning.task.started",
        "provisioning.task.failed",
        "provisioning.task.started",
        "provisioning.task.completed",
    ]


async def test_a_duplicate_attempt_on_a_completed_task_does_not_reopen_it(runtime) -> None:
    so_id = await _reserved_so(runtime)
    await _task(runtime, services.task_started, so_id, rules.PCRF_POLICY_PUSH)
    await _task(runtime, services.task_completed, so_id, rules.PCRF_POLICY_PUSH)
    before = await _rows(runtime)
    assert await _task(runtime, services.task_started, so_id, rules.PCRF_POLICY_PUSH) == 1
    assert await _rows(runtime) == before
    async with transaction(runtime.db) as s:
        task = await services.get_task(s, service_order_id=so_id, task_type=rules.PCRF_POLICY_PUSH)
    assert (task.state, task.attempts) == ("completed", 1)


async def test_a_pending_task_cannot_complete(runtime) -> None:
    so_id = await _reserved_so(runtime)
    with pytest.raises(PolicyViolation) as exc:
        await _task(runtime, services.task_completed, so_id, rules.OCS_BALANCE_INIT)
    assert exc.value.code == "provisioning_task.transition.invalid"


async def test_stuck_task_is_resolved_by_an_operator_with_a_note(runtime) -> None:
    so_id = await _reserved_so(runtime)
    esim = rules.ESIM_PROFILE_PREPARE
    await _task(runtime, services.task_started, so_id, esim)
    await _task(runtime, services.task_stuck, so_id, esim, ticket_id="TKT-1a2b3c4d")
    await _task(runtime, services.task_stuck, so_id, esim, ticket_id="TKT-1a2b3c4d")
    for note in ("", "   "):
        with pytest.raises(PolicyViolation) as exc:
            await _task(runtime, services.task_resolved, so_id, esim, note=note)
        assert exc.value.code == "provisioning.resolve_stuck.requires_note"
    await _task(runtime, services.task_resolved, so_id, esim, note="profile pushed by hand on SM-DP+")
    await _task(runtime, services.task_resolved, so_id, esim, note="profile pushed by hand on SM-DP+")
    async with transaction(runtime.db) as s:
        task = await services.get_task(s, service_order_id=so_id, task_type=esim)
        events = await events_for(s, "ProvisioningTask", task.id)
    assert (task.state, task.ticket_id, task.resolution_note) == (
        "completed",
        "TKT-1a2b3c4d",
        "profile pushed by hand on SM-DP+",
    )
    assert [e.event_type for e in events][-2:] == ["provisioning.task.stuck", "provisioning.task.resolved"]


async def test_only_a_stuck_task_can_be_resolved(runtime) -> None:
    so_id = await _reserved_so(runtime)
    await _task(runtime, services.task_started, so_id, rules.HLR_PROVISION)
    with pytest.raises(PolicyViolation) as exc:
        await _task(runtime, services.task_resolved, so_id, rules.HLR_PROVISION, note="done by hand")
    assert exc.value.code == "provisioning_task.resolve.requires_stuck_state"


async def test_a_stuck_task_can_be_retried(runtime) -> None:
    so_id = await _reserved_so(runtime)
    await _task(runtime, services.task_started, so_id, rules.HLR_PROVISION)
    await _task(runtime, services.task_stuck, so_id, rules.HLR_PROVISION, ticket_id="TKT-00000001")
    assert await _task(runtime, services.task_started, so_id, rules.HLR_PROVISION) == 2


async def test_unknown_task_is_not_found(runtime) -> None:
    so_id = await _new_so(runtime)
    with pytest.raises(NotFound) as exc:
        await _task(runtime, services.task_started, so_id, "HLR_DEPROVISION")
    assert exc.value.code == "provisioning_task.not_found"


async def test_list_tasks_filters_by_state(runtime) -> None:
    so_id = await _reserved_so(runtime)
    await _task(runtime, services.task_started, so_id, rules.HLR_PROVISION)
    await _task(runtime, services.task_stuck, so_id, rules.HLR_PROVISION, ticket_id="TKT-00000002")
    async with transaction(runtime.db) as s:
        stuck = await services.list_tasks(s, state="stuck")
        pending = await services.list_tasks(s, state="pending", service_order_id=so_id)
    assert [t.task_type for t in stuck] == [rules.HLR_PROVISION]
    assert len(pending) == 3


# ---- outcome ------------------------------------------------------------------------------------


async def test_complete_service_order_is_refused_while_a_task_is_pending(runtime) -> None:
    so_id = await _reserved_so(runtime)
    for task_type in rules.TASK_TYPES[:3]:
        await _task(runtime, services.task_started, so_id, task_type)
        await _task(runtime, services.task_completed, so_id, task_type)
    before = await _rows(runtime)
    with pytest.raises(PolicyViolation) as exc:
        async with transaction(runtime.db) as s:
            await services.complete_service_order(s, WORKER, so_id)
    assert exc.value.code == "service_order.complete.tasks_not_completed"
    assert exc.value.context["open_tasks"] == [rules.ESIM_PROFILE_PREPARE]
    assert await _rows(runtime) == before


async def test_complete_service_order_activates_every_service_once(runtime) -> None:
    so_id = await _reserved_so(runtime)
    await _run_all_tasks(runtime, so_id)
    async with transaction(runtime.db) as s:
        await services.complete_service_order(s, WORKER, so_id)
    before = await _rows(runtime)
    async with transaction(runtime.db) as s:
        await services.complete_service_order(s, WORKER, so_id)
    assert await _rows(runtime) == before
    async with transaction(runtime.db) as s:
        so = await services.get_service_order(s, so_id)
        found = await services.list_services(s, service_order_id=so_id)
        history = await services.service_history(s, found[0].id)
    assert so.state == "completed" and so.completed_at is not None
    assert {(x.state, x.activated_at is not None) for x in found} == {("activated", True)}
    assert [h.to_state for h in history] == ["designed", "reserved", "activated"]


async def test_fail_service_order_fails_its_services_and_is_idempotent(runtime) -> None:
    so_id = await _reserved_so(runtime)
    async with transaction(runtime.db) as s:
        await services.fail_service_order(s, WORKER, so_id, "HLR rejected the IMSI")
    before = await _rows(runtime)
    async with transaction(runtime.db) as s:
        await services.fail_service_order(s, WORKER, so_id, "HLR rejected the IMSI")
    assert await _rows(runtime) == before
    async with transaction(runtime.db) as s:
        so = await services.get_service_order(s, so_id)
        found = await services.list_services(s, service_order_id=so_id)
    assert (so.state, so.failure_reason) == ("failed", "HLR rejected the IMSI")
    assert {x.state for x in found} == {"failed"}


async def test_a_failed_reservation_fails_an_acknowledged_service_order(runtime) -> None:
    so_id = await _new_so(runtime)
    async with transaction(runtime.db) as s:
        so = await services.fail_service_order(s, WORKER, so_id, "msisdn.reserve.no_available")
    assert so.state == "failed"


async def test_a_completed_service_order_cannot_fail(runtime) -> None:
    so_id = await _reserved_so(runtime)
    await _run_all_tasks(runtime, so_id)
    async with transaction(runtime.db) as s:
        await services.complete_service_order(s, WORKER, so_id)
    with pytest.raises(PolicyViolation) as exc:
        async with transaction(runtime.db) as s:
            await services.fail_service_order(s, WORKER, so_id, "late")
    assert exc.value.code == "service_order.transition.invalid"


async def test_attach_subscription_links_every_service_once(runtime) -> None:
    so_id = await _reserved_so(runtime)
    for _ in range(2):
        async with transaction(runtime.db) as s:
            await services.attach_subscription(s, WORKER, so_id, "SUB-000001")
    async with transaction(runtime.db) as s:
        linked = await services.list_services(s, subscription_id="SUB-000001")
        events = await events_for(s, "ServiceOrder", so_id)
    assert len(linked) == 3
    assert [e.event_type for e in events].count("service_order.subscription_attached") == 1


async def test_unknown_ids_are_not_found(runtime) -> None:
    async with transaction(runtime.db) as s:
        with pytest.raises(NotFound) as exc:
            await services.get_service_order(s, "SO-999999")
        assert exc.value.code == "service_order.not_found"
        with pytest.raises(NotFound) as exc:
            await services.get_service(s, "SVC-999999")
        assert exc.value.code == "service.not_found"


async def test_list_service_orders_filters_with_a_total(runtime) -> None:
    a = await _new_so(runtime, "ORD-000001")
    await _new_so(runtime, "ORD-000002")
    async with transaction(runtime.db) as s:
        await services.record_reservation(s, WORKER, service_order_id=a, **IDENTITY)
        rows, total = await services.list_service_orders(s, state="in_progress")
        assert (total, [r.id for r in rows]) == (1, [a])
        rows, total = await services.list_service_orders(s)
        assert total == 2
        rows, total = await services.list_service_orders(s, order_id="ORD-000002")
        assert total == 1 and rows[0].order_id == "ORD-000002"

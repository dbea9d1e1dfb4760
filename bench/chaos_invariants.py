"""What must hold after the chaos run, checked from three sides: the BSS's tables, the card
gateway's own ledger (schema `cardgw`, read with domains/payment/mock_gateway.py's query functions)
and Temporal's list of workflows.

`check(db_url, temporal_target, business_now)` returns a `Report`: every violation with its kind
and an example, plus the counts the chaos table prints. It only reads; it never repairs.

The invariants (issue 8, "Proof under fire"):
- every order is terminal;
- a completed order holds exactly one live authorisation (approved, not refunded) at the gateway,
  one approved activation payment in the BSS, and exactly one active line;
- a failed or cancelled order holds none: no live authorisation, no approved payment, no live line;
- each renewal is charged once per period (BSS and gateway), a renewed period has its charge, a
  charge taken for a period has its renewal, and no live line is left behind on a due period;
- no number is left reserved and no eSIM is held without a live line; the assigned numbers are
  exactly the live lines' numbers;
- every live line has exactly one running `SubscriptionWorkflow` and no such workflow runs
  without a live line;
- no workflow of ours ended Failed (or TimedOut).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TERMINAL_ORDER_STATES = ("completed", "failed", "cancelled")
ACTIVATION_KEY = re.compile(r"^order-(?P<order>ORD-\d+)/activation$")
RENEWAL_KEY = re.compile(r"^subscription-(?P<sub>SUB-[^/]+)/renewal/(?P<period>.+)$")
EXAMPLES_PER_KIND = 5


@dataclass
class Report:
    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, example: str) -> None:
        self.violations[kind].append(example)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.violations.values())

    def summary(self) -> dict[str, Any]:
        return {
            "violations": self.total,
            "by_kind": {
                k: {"count": len(v), "examples": v[:EXAMPLES_PER_KIND]}
                for k, v in sorted(self.violations.items())
            },
            "counts": self.counts,
            "notes": self.notes,
        }


async def check(db_url: str, temporal_target: str | None, business_now: datetime | None) -> Report:
    """Every invariant, against the stack's database (SQLAlchemy async URL) and Temporal."""
    from sqlalchemy.ext.asyncio import create_async_engine

    report = Report()
    engine = create_async_engine(db_url, pool_size=2, max_overflow=0)
    try:
        async with engine.connect() as conn:
            db = await _read_db(conn)
        gateway = await _read_gateway(engine, report)
    finally:
        await engine.dispose()
    workflows = await _read_temporal(temporal_target, report) if temporal_target else None
    evaluate(report, db, gateway, workflows, business_now)
    return report


# --------------------------------------------------------------------------- reading


async def _rows(conn, sql: str) -> list[dict[str, Any]]:
    from sqlalchemy import text

    return [dict(r._mapping) for r in (await conn.execute(text(sql))).all()]


async def _read_db(conn) -> dict[str, list[dict[str, Any]]]:
    return {
        "orders": await _rows(conn, "SELECT id, state, failure_reason FROM ordering.product_order"),
        "lines": await _rows(
            conn,
            "SELECT id, order_id, state, state_reason, msisdn, iccid, current_period_end "
            "FROM subscription.subscription",
        ),
        "payments": await _rows(
            conn, "SELECT id, idempotency_key, purpose, status, amount FROM payment.payment"
        ),
        "renewals": await _rows(
            conn,
            "SELECT subscription_id, status, idempotency_key, due_at FROM subscription.subscription_renewal",
        ),
        "numbers": await _rows(
            conn,
            "SELECT msisdn, status, reserved_for, assigned_to_subscription_id FROM inventory.msisdn "
            "WHERE status <> 'available'",
        ),
        "esims": await _rows(
            conn,
            "SELECT iccid, profile_state, reserved_for, assigned_to_subscription_id "
            "FROM inventory.esim_profile WHERE profile_state <> 'available'",
        ),
    }


async def _read_gateway(engine, report: Report) -> dict[str, list[Any]] | None:
    """The gateway's ledger: every authorisation and the live (approved, unrefunded) ones."""
    try:
        from sqlmodel.ext.asyncio.session import AsyncSession

        from domains.payment.mock_gateway import authorizations_for, live_authorizations_for
    except ImportError as exc:
        report.notes.append(f"gateway ledger not checked: {exc}")
        return None
    try:
        async with AsyncSession(engine) as s:
            every = await authorizations_for(s, "")
            live = await live_authorizations_for(s, "")
    except Exception as exc:  # noqa: BLE001 - a ledger not there yet is a note, not a crash
        report.notes.append(f"gateway ledger not readable: {type(exc).__name__}: {str(exc)[:200]}")
        return None
    return {
        "all": [(a.idempotency_key, a.approved) for a in every],
        "live": [a.idempotency_key for a in live],
    }


async def _read_temporal(target: str, report: Report) -> dict[str, Any] | None:
    from temporalio.client import Client

    try:
        client = await Client.connect(target)
        running_subs: list[str] = []
        async for wf in client.list_workflows(
            'WorkflowType = "SubscriptionWorkflow" AND ExecutionStatus = "Running"'
        ):
            running_subs.append(wf.id)
        running_other: list[str] = []
        async for wf in client.list_workflows(
            'WorkflowType != "SubscriptionWorkflow" AND ExecutionStatus = "Running"'
        ):
            running_other.append(f"{wf.workflow_type}:{wf.id}")
        ended_badly: list[str] = []
        async for wf in client.list_workflows('ExecutionStatus = "Failed" OR ExecutionStatus = "TimedOut"'):
            ended_badly.append(f"{wf.workflow_type}:{wf.id}:{wf.status.name if wf.status else '?'}")
    except Exception as exc:  # noqa: BLE001
        report.notes.append(f"Temporal not checked: {type(exc).__name__}: {str(exc)[:200]}")
        return None
    return {"running_subscriptions": running_subs, "running_other": running_other, "ended_badly": ended_badly}


# --------------------------------------------------------------------------- the invariants


def evaluate(
    report: Report,
    db: dict[str, list[dict[str, Any]]],
    gateway: dict[str, list[Any]] | None,
    workflows: dict[str, Any] | None,
    business_now: datetime | None,
) -> None:
    orders = {o["id"]: o for o in db["orders"]}
    lines = db["lines"]
    live_lines = [ln for ln in lines if ln["state"] != "terminated"]
    lines_by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ln in lines:
        lines_by_order[ln["order_id"]].append(ln)

    approved = [p for p in db["payments"] if p["status"] == "approved"]
    approved_by_key = Counter(p["idempotency_key"] for p in approved)
    live_auth = Counter(gateway["live"]) if gateway is not None else None

    states = Counter(o["state"] for o in orders.values())
    report.counts.update(
        orders=len(orders),
        orders_by_state=dict(states),
        failure_reasons=dict(
            Counter((o["failure_reason"] or "")[:100] for o in orders.values() if o["state"] != "completed")
        ),
        lines_live=len(live_lines),
        lines_by_state=dict(Counter(ln["state"] for ln in lines)),
        payments_approved=len(approved),
        payments_by_status=dict(Counter(p["status"] for p in db["payments"])),
        renewals_renewed=sum(1 for r in db["renewals"] if r["status"] == "renewed"),
        renewals_by_status=dict(Counter(r["status"] for r in db["renewals"])),
    )
    if gateway is not None:
        report.counts.update(gateway_authorisations=len(gateway["all"]), gateway_live=len(gateway["live"]))

    # Orders.
    for oid, o in sorted(orders.items()):
        key = f"order-{oid}/activation"
        held = approved_by_key[key]
        at_gateway = _live_under(live_auth, f"order-{oid}/") if live_auth is not None else None
        order_lines = lines_by_order.get(oid, [])
        if o["state"] not in TERMINAL_ORDER_STATES:
            report.add("order_not_terminal", f"{oid} is {o['state']}")
            continue
        if o["state"] == "completed":
            active = [ln for ln in order_lines if ln["state"] == "active"]
            if held != 1:
                report.add(
                    "completed_order_payment", f"{oid}: {held} approved activation payment(s) in the BSS"
                )
            if at_gateway is not None and at_gateway != 1:
                report.add(
                    "completed_order_gateway", f"{oid}: {at_gateway} live authorisation(s) at the gateway"
                )
            if len(active) != 1:
                seen = ", ".join(f"{ln['id']}={ln['state']}" for ln in order_lines) or "none"
                report.add("completed_order_line", f"{oid}: {len(active)} active line(s) ({seen})")
        else:
            if held:
                report.add(
                    "failed_order_kept_money", f"{oid} ({o['state']}): {held} approved payment(s) in the BSS"
                )
            if at_gateway:
                report.add(
                    "failed_order_gateway", f"{oid} ({o['state']}): {at_gateway} live authorisation(s)"
                )
            alive = [ln for ln in order_lines if ln["state"] != "terminated"]
            if alive:
                report.add(
                    "failed_order_line", f"{oid} ({o['state']}): live line(s) {[ln['id'] for ln in alive]}"
                )

    # Renewals: once per period, from the BSS and from the gateway.
    per_period: Counter[tuple[str, str]] = Counter()
    for p in approved:
        if m := RENEWAL_KEY.match(p["idempotency_key"]):
            per_period[(m["sub"], _period(m["period"]))] += 1
    for (sub, period), n in per_period.items():
        if n > 1:
            report.add("renewal_charged_twice", f"{sub} period {period}: {n} approved payments in the BSS")
    renewed = [r for r in db["renewals"] if r["status"] == "renewed"]
    renewed_keys = {r["idempotency_key"] for r in renewed}
    renewed_rows = Counter((r["subscription_id"], r["due_at"]) for r in renewed)
    for (sub, due), n in renewed_rows.items():
        if n > 1:
            report.add("renewal_recorded_twice", f"{sub} due {due}: {n} renewed rows")
    for r in renewed:
        if approved_by_key[r["idempotency_key"]] != 1:
            report.add(
                "renewal_without_charge",
                f"{r['subscription_id']} due {r['due_at']}: {approved_by_key[r['idempotency_key']]} approved payment(s)",
            )
    if live_auth is not None:
        gw_period: Counter[tuple[str, str]] = Counter()
        for key, n in live_auth.items():
            if m := RENEWAL_KEY.match(key):
                gw_period[(m["sub"], _period(m["period"]))] += n
                if key not in renewed_keys:
                    report.add(
                        "renewal_charged_not_renewed", f"{key}: live at the gateway, no renewed period"
                    )
            elif m := ACTIVATION_KEY.match(key):
                if orders.get(m["order"], {}).get("state") not in ("completed", None):
                    pass  # reported above as failed_order_gateway
                elif m["order"] not in orders:
                    report.add("unexplained_authorisation", f"{key}: no such order")
        for (sub, period), n in gw_period.items():
            if n > 1:
                report.add("renewal_charged_twice_gateway", f"{sub} period {period}: {n} live authorisations")
    if business_now is not None:
        for ln in live_lines:
            if ln["state"] == "active" and ln["current_period_end"] <= business_now:
                report.add(
                    "renewal_missing",
                    f"{ln['id']}: period ended {ln['current_period_end']:%Y-%m-%d %H:%M}, business time "
                    f"{business_now:%Y-%m-%d %H:%M}",
                )

    # Inventory.
    live_msisdns = {ln["msisdn"]: ln["id"] for ln in live_lines}
    live_iccids = {ln["iccid"]: ln["id"] for ln in live_lines}
    assigned = set()
    for n in db["numbers"]:
        if n["status"] == "reserved":
            report.add("number_left_reserved", f"{n['msisdn']} reserved for {n['reserved_for']}")
        elif n["status"] == "assigned":
            assigned.add(n["msisdn"])
            if n["msisdn"] not in live_msisdns:
                report.add(
                    "number_assigned_without_line",
                    f"{n['msisdn']} assigned to {n['assigned_to_subscription_id']}, no live line has it",
                )
    for msisdn, sub in sorted(live_msisdns.items()):
        if msisdn not in assigned:
            report.add("line_number_not_assigned", f"{sub}: its number {msisdn} is not assigned in the pool")
    report.counts.update(numbers_assigned=len(assigned))
    for e in db["esims"]:
        if e["iccid"] not in live_iccids:
            report.add(
                "esim_held_without_line",
                f"{e['iccid']} {e['profile_state']} (reserved for {e['reserved_for']}, "
                f"assigned to {e['assigned_to_subscription_id']})",
            )

    # Temporal.
    if workflows is not None:
        running = Counter(workflows["running_subscriptions"])
        for ln in live_lines:
            n = running.pop(f"subscription-{ln['id']}", 0)
            if n != 1:
                report.add(
                    "line_workflows", f"{ln['id']} ({ln['state']}): {n} running SubscriptionWorkflow(s)"
                )
        for wid, n in running.items():
            report.add("workflow_without_line", f"{wid}: running ({n}), its line is not live")
        for wf in workflows["ended_badly"]:
            report.add("workflow_failed", wf)
        report.counts.update(
            workflows_running_subscription=len(workflows["running_subscriptions"]),
            workflows_running_other=len(workflows["running_other"]),
            workflows_failed=len(workflows["ended_badly"]),
            workflows_failed_by_type=dict(Counter(wf.split(":", 1)[0] for wf in workflows["ended_badly"])),
        )


def _live_under(live: Counter[str], prefix: str) -> int:
    return sum(n for key, n in live.items() if key.startswith(prefix))


def _period(text: str) -> str:
    """A period start as written in a key, normalised (the key carries an ISO timestamp)."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return text

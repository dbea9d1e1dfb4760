"""Customers, KYC and tickets against the real Postgres: lifecycle, email uniqueness, hash-only
KYC, audit identity, SLA due times and idempotent ticket opening."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from core.errors import InvalidInput, NotFound, PolicyViolation
from domains.audit.services import events_for
from domains.crm import rules, services
from domains.crm.models import Agent, SlaPolicy

CSR = RequestContext(actor="AGT-001", channel="cli", service_identity="default", trace_id="ab" * 16)
DOC = "S1234567D"
SECRET = b"test-kyc-hmac-secret"


async def new_customer(
    runtime, email: str | None = "ada@example.com", phone: str | None = "+65 9123 4567", **kw
):
    async with transaction(runtime.db) as s:
        return await services.create_customer(
            s,
            CSR,
            given_name=kw.pop("given_name", "Ada"),
            family_name="Lovelace",
            email=email,
            phone=phone,
            **kw,
        )


async def count(runtime, table: str) -> int:
    async with runtime.engine.connect() as conn:
        return (await conn.execute(text(f"select count(*) from {table}"))).scalar_one()


async def update(runtime, customer_id: str, **changes):
    async with transaction(runtime.db) as s:
        return await services.update_customer(s, CSR, customer_id, **changes)


# ------------------------------------------------------------------------------------ create / read


async def test_create_customer_makes_party_individual_media_and_is_active(runtime):
    customer = await new_customer(runtime, date_of_birth=date(1815, 12, 10))
    async with runtime.db() as s:
        view = await services.customer_view(s, customer.id)
    assert customer.id.startswith("CUST-") and len(customer.id) == 13
    assert view.customer.party_id.startswith("PTY-")
    assert view.customer.status == "active" and view.customer.kyc_status == "not_verified"
    assert view.name == "Ada Lovelace" and view.individual.date_of_birth == date(1815, 12, 10)
    assert view.active("email") == "ada@example.com"
    assert view.active("mobile") == "+6591234567"  # normalised: what people type, minus the spaces
    assert all(m.id.startswith("CM-") for m in view.contact_media)


async def test_create_customer_writes_an_audit_row_with_actor_channel_and_service(runtime):
    customer = await new_customer(runtime)
    async with runtime.db() as s:
        (event,) = await events_for(s, "customer", customer.id)
    assert event.event_type == "customer.created"
    assert (event.actor, event.channel, event.service_identity, event.trace_id) == (
        "AGT-001",
        "cli",
        "default",
        "ab" * 16,
    )


async def test_create_customer_requires_an_email_or_a_phone(runtime):
    with pytest.raises(PolicyViolation) as err:
        await new_customer(runtime, email=None, phone=None)
    assert err.value.code == "customer.create.requires_contact_medium"
    assert await count(runtime, "crm.customer") == 0 and await count(runtime, "crm.party") == 0


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two@@example.com", "x" * 250 + "@example.com"])
async def test_create_customer_refuses_a_malformed_email(runtime, email):
    with pytest.raises(InvalidInput) as err:
        await new_customer(runtime, email=email)
    assert err.value.code == "customer.contact_medium.email_invalid"
    assert await count(runtime, "crm.customer") == 0


async def test_active_email_is_unique_case_insensitively(runtime):
    await new_customer(runtime, email="Ada@Example.com")
    with pytest.raises(PolicyViolation) as err:
        await new_customer(runtime, email="ada@EXAMPLE.com", given_name="Imposter")
    assert err.value.code == "customer.create.email_unique"
    assert await count(runtime, "crm.customer") == 1


async def test_the_database_refuses_a_second_active_email_even_past_the_service(runtime):
    first = await new_customer(runtime, email="race@example.com")
    second = await new_customer(runtime, email=None)
    async with runtime.db() as s:
        view = await services.customer_view(s, second.id)
    with pytest.raises(Exception, match="uq_contact_medium_active_email"):
        async with runtime.engine.begin() as conn:
            await conn.execute(
                text(
                    "insert into crm.contact_medium (id, party_id, medium_type, value, is_primary, valid_from)"
                    " values ('CM-test', :p, 'email', 'RACE@example.com', true, now())"
                ),
                {"p": view.customer.party_id},
            )
    assert first.id != second.id


async def test_a_closed_customers_email_can_be_reused(runtime):
    old = await new_customer(runtime, email="reuse@example.com")
    await update(runtime, old.id, status="closed", status_reason="moved abroad")
    new = await new_customer(runtime, email="reuse@example.com", given_name="Ada2")
    async with runtime.db() as s:
        old_view = await services.customer_view(s, old.id)
        new_view = await services.customer_view(s, new.id)
    assert new_view.active("email") == "reuse@example.com"
    assert old_view.active("email") is None  # the closed customer's media are ended, not deleted
    assert [m.value for m in old_view.contact_media if m.medium_type == "email"] == ["reuse@example.com"]


async def test_get_customer_unknown_is_not_found(runtime):
    async with runtime.db() as s:
        with pytest.raises(NotFound) as err:
            await services.get_customer(s, "CUST-00000000")
    assert err.value.code == "customer.not_found"


async def test_require_active_customer_refuses_a_suspended_one(runtime):
    customer = await new_customer(runtime)
    await update(runtime, customer.id, status="suspended")
    async with runtime.db() as s:
        with pytest.raises(PolicyViolation) as err:
            await services.require_active_customer(s, customer.id)
    assert err.value.code == "customer.not_active"


async def test_list_customers_filters_by_status_name_and_email(runtime):
    ada = await new_customer(runtime, email="ada@example.com")
    bob = await new_customer(runtime, email="bob@example.com", given_name="Bob")
    await update(runtime, bob.id, status="suspended")
    async with runtime.db() as s:
        assert [c.id for c in await services.list_customers(s, status="suspended")] == [bob.id]
        assert [c.id for c in await services.list_customers(s, name_contains="bob love")] == [bob.id]
        assert [c.id for c in await services.list_customers(s, email="ADA@example.com")] == [ada.id]
        assert [c.id for c in await services.list_customers(s, name_contains="%")] == []


# --------------------------------------------------------------------------------------- lifecycle

LEGAL = [
    ("active", "suspended"),
    ("active", "closed"),
    ("suspended", "active"),
    ("suspended", "closed"),
    ("pending", "active"),
    ("pending", "closed"),
]
ILLEGAL = [("closed", "active"), ("closed", "suspended"), ("active", "pending"), ("pending", "suspended")]


def test_customer_state_machine_is_the_documented_table():
    assert {(s, t) for (_, s), t in rules.CUSTOMER_LIFECYCLE.table.items()} == set(LEGAL)


async def _customer_in(runtime, status: str):
    customer = await new_customer(runtime, status="pending" if status == "pending" else "active")
    if status in ("suspended", "closed"):
        await update(runtime, customer.id, status=status)
    return customer


@pytest.mark.parametrize(("source", "target"), LEGAL)
async def test_legal_customer_transitions(runtime, source, target):
    customer = await _customer_in(runtime, source)
    changed = await update(runtime, customer.id, status=target)
    assert changed.status == target
    async with runtime.db() as s:
        events = await events_for(s, "customer", customer.id)
    assert events[-1].payload["status"]["from"] == source and events[-1].payload["status"]["to"] == target


@pytest.mark.parametrize(("source", "target"), ILLEGAL)
async def test_illegal_customer_transitions_are_refused_and_change_nothing(runtime, source, target):
    customer = await _customer_in(runtime, source)
    events_before = await count(runtime, "audit.domain_event")
    with pytest.raises(PolicyViolation) as err:
        await update(runtime, customer.id, status=target)
    assert err.value.code in ("customer.transition.invalid", "customer.update.customer_closed")
    async with runtime.db() as s:
        assert (await services.get_customer(s, customer.id)).status == source
    assert await count(runtime, "audit.domain_event") == events_before


# ------------------------------------------------------------------------------------------ update


async def test_update_renames_and_replaces_the_phone_keeping_history(runtime):
    customer = await new_customer(runtime)
    await update(runtime, customer.id, given_name="Augusta Ada", phone="+65 8000 0000")
    async with runtime.db() as s:
        view = await services.customer_view(s, customer.id)
    assert view.name == "Augusta Ada Lovelace"
    assert view.active("mobile") == "+6580000000"
    ended = [m for m in view.contact_media if m.medium_type == "mobile" and m.valid_to is not None]
    assert [m.value for m in ended] == ["+6591234567"]


async def test_update_can_add_an_email_where_none_exists(runtime):
    customer = await new_customer(runtime, email=None)
    await update(runtime, customer.id, email="late@example.com")
    async with runtime.db() as s:
        assert (await services.customer_view(s, customer.id)).active("email") == "late@example.com"


async def test_update_refuses_to_change_an_existing_email(runtime):
    customer = await new_customer(runtime)
    with pytest.raises(PolicyViolation) as err:
        await update(runtime, customer.id, email="other@example.com")
    assert err.value.code == "customer.contact_medium.email_must_use_change_flow"
    async with runtime.db() as s:
        assert (await services.customer_view(s, customer.id)).active("email") == "ada@example.com"


async def test_update_adding_a_taken_email_is_refused(runtime):
    await new_customer(runtime, email="taken@example.com")
    customer = await new_customer(runtime, email=None, given_name="Bob")
    with pytest.raises(PolicyViolation) as err:
        await update(runtime, customer.id, email="TAKEN@example.com")
    assert err.value.code == "customer.create.email_unique"


async def test_update_with_nothing_is_bad_input(runtime):
    customer = await new_customer(runtime)
    with pytest.raises(InvalidInput) as err:
        await update(runtime, customer.id)
    assert err.value.code == "customer.update.no_fields"


# --------------------------------------------------------------------------------------------- KYC


async def attest(runtime, customer_id: str, number: str = DOC, **kw):
    async with transaction(runtime.db) as s:
        return await services.attest_kyc(
            s, CSR, customer_id, "nric", number, "sg", "myinfo", hmac_secret=SECRET, **kw
        )


async def test_kyc_stores_only_the_hash_and_the_number_appears_nowhere_in_the_database(runtime):
    customer = await new_customer(runtime)
    identity = await attest(
        runtime,
        customer.id,
        attestation={"provider": "myinfo", "documentNumber": DOC, "raw": f"uinfin={DOC}", "score": 0.98},
        reference="myinfo-42",
    )
    assert identity.document_number_hash == rules.document_hash(DOC, "SG", SECRET)
    assert len(identity.document_number_hash) == 64
    # A keyed hash: neither the plain SHA-256 of the number (whose space is small enough to
    # enumerate) nor anything computable without the server's secret.
    import hashlib
    import hmac

    for plain in (DOC, f"{DOC}|SG"):
        assert identity.document_number_hash != hashlib.sha256(plain.encode()).hexdigest()
    assert identity.document_number_hash == hmac.new(SECRET, f"{DOC}|SG".encode(), "sha256").hexdigest()
    assert identity.document_number_hash != rules.document_hash(DOC, "SG", b"another-secret")
    async with runtime.db() as s:
        view = await services.customer_view(s, customer.id)
    assert view.customer.kyc_status == "verified" and view.customer.kyc_verified_at is not None
    assert view.identity is not None and view.identity.attestation_payload["score"] == 0.98
    # Dump every row of every domain table as text and look for the number.
    async with runtime.engine.connect() as conn:
        tables = (
            await conn.execute(
                text(
                    "select table_schema || '.' || table_name from information_schema.tables "
                    "where table_schema in ('crm', 'payment', 'audit') and table_type = 'BASE TABLE'"
                )
            )
        ).scalars()
        dump = ""
        for table in tables:
            rows = await conn.execute(text(f"select t::text from {table} t"))
            dump += "\n".join(r[0] for r in rows)
    assert "ada@example.com" in dump  # the dump really holds the customer's rows
    assert DOC not in dump and DOC.lower() not in dump


async def test_kyc_hash_ignores_formatting_of_the_number():
    assert rules.document_hash("s1234567d", "sg", SECRET) == rules.document_hash(
        " S-1234567 D ", "SG", SECRET
    )
    assert rules.document_hash(DOC, "SG", SECRET) != rules.document_hash(DOC, "MY", SECRET)


async def test_one_identity_document_belongs_to_one_customer(runtime):
    first = await new_customer(runtime)
    second = await new_customer(runtime, email="b@example.com", given_name="Bob")
    await attest(runtime, first.id)
    with pytest.raises(PolicyViolation) as err:
        await attest(runtime, second.id, number="s1234567d")
    assert err.value.code == "customer.attest_kyc.document_hash_unique_per_tenant"
    async with runtime.db() as s:
        assert (await services.get_customer(s, second.id)).kyc_status == "not_verified"


async def test_reattesting_the_same_document_for_the_same_customer_is_allowed(runtime):
    customer = await new_customer(runtime)
    await attest(runtime, customer.id)
    await attest(runtime, customer.id)
    assert await count(runtime, "crm.customer_identity") == 1


async def test_kyc_refuses_unknown_customer_and_empty_number(runtime):
    with pytest.raises(NotFound) as err:
        await attest(runtime, "CUST-00000000")
    assert err.value.code == "customer.attest_kyc.customer_exists"
    customer = await new_customer(runtime)
    with pytest.raises(InvalidInput) as err:
        await attest(runtime, customer.id, number=" - ")
    assert err.value.code == "customer.attest_kyc.document_required"
    assert await count(runtime, "crm.customer_identity") == 0


# ---------------------------------------------------------------------- reference data and tickets


async def test_agents_and_the_twelve_sla_policies_are_seeded(runtime):
    async with runtime.db() as s:
        agents = {a.id: a.role for a in (await s.exec(__import__("sqlmodel").select(Agent))).all()}
        policies = (await s.exec(__import__("sqlmodel").select(SlaPolicy))).all()
    assert agents == {
        "AGT-001": "csr",
        "AGT-002": "csr",
        "AGT-003": "supervisor",
        "AGT-004": "engineer",
        "AGT-SYS": "system",
    }
    assert len(policies) == 12
    assert {(p.ticket_type, p.priority): p.resolution_minutes for p in policies}[
        ("service_outage", "urgent")
    ] == 30


async def test_seeding_twice_changes_nothing(runtime):
    from domains.crm.seed import seed

    async with transaction(runtime.db) as s:
        await seed(s)
    assert await count(runtime, "crm.agent") == 5 and await count(runtime, "crm.sla_policy") == 12


async def test_open_ticket_computes_the_sla_due_time_and_is_idempotent_per_order(runtime):
    at = clock.freeze(datetime(2026, 4, 11, 9, 0, tzinfo=UTC))
    customer = await new_customer(runtime)
    saga = RequestContext(actor="workflow:order-ORD-000001", channel="system", service_identity="worker")
    args = {
        "ticket_type": "provisioning_exception",
        "subject": "HLR_PROVISION stuck",
        "description": "task PTK-000001 exceeded its deadline",
        "customer_id": customer.id,
        "related_order_id": "ORD-000001",
    }
    async with transaction(runtime.db) as s:
        ticket = await services.open_ticket(s, saga, **args)
    async with transaction(runtime.db) as s:
        again = await services.open_ticket(s, saga, **args)
    assert again.id == ticket.id and ticket.id.startswith("TKT-")
    assert ticket.state == "open" and ticket.priority == "high"
    # provisioning exceptions follow the service-outage SLA: 60 minutes at high priority
    assert ticket.sla_due_at == at + timedelta(minutes=60)
    async with transaction(runtime.db) as s:
        resolved = await services.resolve_ticket(s, CSR, ticket.id, "retried the HLR task")
    assert resolved.state == "resolved" and resolved.resolved_at == at
    async with runtime.db() as s:
        assert [e.event_type for e in await events_for(s, "ticket", ticket.id)] == [
            "ticket.opened",
            "ticket.resolved",
        ]


async def test_resolve_ticket_needs_notes_and_an_open_ticket(runtime):
    async with transaction(runtime.db) as s:
        ticket = await services.open_ticket(
            s, CSR, ticket_type="configuration", subject="APN", description="", priority="low"
        )
    with pytest.raises(PolicyViolation) as err:
        async with transaction(runtime.db) as s:
            await services.resolve_ticket(s, CSR, ticket.id, "  ")
    assert err.value.code == "ticket.resolve.requires_resolution_notes"
    async with transaction(runtime.db) as s:
        await services.resolve_ticket(s, CSR, ticket.id, "done")
    with pytest.raises(PolicyViolation) as err:
        async with transaction(runtime.db) as s:
            await services.resolve_ticket(s, CSR, ticket.id, "again")
    assert err.value.code == "ticket.transition.valid_from_state"
    with pytest.raises(NotFound):
        async with transaction(runtime.db) as s:
            await services.resolve_ticket(s, CSR, "TKT-00000000", "x")

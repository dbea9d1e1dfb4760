"""CRM tables: the party behind a customer, its contact media and KYC identity, agents, SLA
policies and the trouble tickets the order saga opens when provisioning gets stuck."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Date, DateTime, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Party(SQLModel, table=True):
    __tablename__ = "party"
    __table_args__ = {"schema": "crm"}

    id: str = Field(primary_key=True, max_length=16)  # PTY-xxxxxxxx
    party_type: str = Field(default="individual", max_length=20)
    created_at: datetime = _ts()


class Individual(SQLModel, table=True):
    __tablename__ = "individual"
    __table_args__ = {"schema": "crm"}

    party_id: str = Field(sa_column=Column(String(16), ForeignKey("crm.party.id"), primary_key=True))
    given_name: str = Field(max_length=100)
    family_name: str = Field(default="", max_length=100)
    date_of_birth: date | None = Field(default=None, sa_column=Column(Date, nullable=True))

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


class ContactMedium(SQLModel, table=True):
    """A way to reach a party; ended (valid_to set) rather than deleted, so history stays."""

    __tablename__ = "contact_medium"
    __table_args__ = (
        # An active email belongs to one party only; ended media free the address for reuse.
        Index(
            "uq_contact_medium_active_email",
            text("lower(value)"),
            unique=True,
            postgresql_where=text("medium_type = 'email' AND valid_to IS NULL"),
        ),
        {"schema": "crm"},
    )

    id: str = Field(primary_key=True, max_length=16)  # CM-xxxxxxxx
    party_id: str = Field(
        sa_column=Column(String(16), ForeignKey("crm.party.id"), nullable=False, index=True)
    )
    medium_type: str = Field(max_length=10)  # email | mobile | postal
    value: str = Field(max_length=254)
    is_primary: bool = Field(default=True)
    valid_from: datetime = _ts()
    valid_to: datetime | None = _ts(nullable=True)


class Customer(SQLModel, table=True):
    __tablename__ = "customer"
    __table_args__ = {"schema": "crm"}

    id: str = Field(primary_key=True, max_length=16)  # CUST-xxxxxxxx
    party_id: str = Field(
        sa_column=Column(String(16), ForeignKey("crm.party.id"), nullable=False, unique=True)
    )
    status: str = Field(default="active", max_length=20, index=True)
    status_reason: str | None = Field(default=None, max_length=500)
    customer_since: datetime = _ts()
    kyc_status: str = Field(default="not_verified", max_length=20)
    kyc_verified_at: datetime | None = _ts(nullable=True)
    kyc_verification_method: str | None = Field(default=None, max_length=30)
    kyc_reference: str | None = Field(default=None, max_length=100)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class CustomerIdentity(SQLModel, table=True):
    """The KYC document behind a customer: its SHA-256 only, never the number itself."""

    __tablename__ = "customer_identity"
    __table_args__ = (
        UniqueConstraint("document_type", "document_number_hash", name="uq_customer_identity_document"),
        {"schema": "crm"},
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(
        sa_column=Column(String(16), ForeignKey("crm.customer.id"), nullable=False, unique=True)
    )
    document_type: str = Field(max_length=20)  # nric | passport | fin | driving_license
    document_number_hash: str = Field(max_length=64)
    document_country: str = Field(max_length=3)
    date_of_birth: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    nationality: str | None = Field(default=None, max_length=3)
    verified_by: str = Field(max_length=100)
    attestation_payload: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    )
    verified_at: datetime = _ts()


class Agent(SQLModel, table=True):
    __tablename__ = "agent"
    __table_args__ = {"schema": "crm"}

    id: str = Field(primary_key=True, max_length=16)  # AGT-001 ... AGT-SYS
    name: str = Field(max_length=100)
    email: str = Field(max_length=254, unique=True)
    role: str = Field(max_length=20)  # csr | supervisor | engineer | system
    status: str = Field(default="active", max_length=20)


class SlaPolicy(SQLModel, table=True):
    __tablename__ = "sla_policy"
    __table_args__ = (
        UniqueConstraint("ticket_type", "priority", name="uq_sla_policy_type_priority"),
        {"schema": "crm"},
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_type: str = Field(max_length=40)
    priority: str = Field(max_length=20)
    resolution_minutes: int


class SupportCase(SQLModel, table=True):
    """A case (`CASE-xxxxxxxx`): one customer's matter, the parent of its tickets (inventory §4.6)."""

    __tablename__ = "support_case"
    __table_args__ = (Index("ix_support_case_customer", "customer_id", "opened_at"), {"schema": "crm"})

    id: str = Field(primary_key=True, max_length=16)  # CASE-xxxxxxxx
    customer_id: str = Field(sa_column=Column(String(16), ForeignKey("crm.customer.id"), nullable=False))
    subject: str = Field(max_length=200)
    description: str = Field(default="", max_length=4000)
    state: str = Field(default="open", max_length=20, index=True)
    priority: str = Field(default="normal", max_length=20)
    category: str = Field(default="other", max_length=30)
    resolution_code: str | None = Field(default=None, max_length=50)
    opened_by: str = Field(default="system", max_length=200)  # the actor who opened it
    opened_by_agent_id: str | None = Field(
        default=None, sa_column=Column(String(16), ForeignKey("crm.agent.id"), nullable=True)
    )
    opened_at: datetime = _ts()
    updated_at: datetime = _ts()
    resolved_at: datetime | None = _ts(nullable=True)
    closed_at: datetime | None = _ts(nullable=True)


class CaseNote(SQLModel, table=True):
    __tablename__ = "case_note"
    __table_args__ = {"schema": "crm"}

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(
        sa_column=Column(String(16), ForeignKey("crm.support_case.id"), nullable=False, index=True)
    )
    author: str = Field(max_length=200)  # the actor, or an agent id
    body: str = Field(max_length=4000)
    created_at: datetime = _ts()


class Ticket(SQLModel, table=True):
    """A trouble ticket (TMF621): opened by a person for a customer (often inside a case), or by a
    workflow that needs an operator (waiting_workflow_id). An SLA timer (workflows/ticket_sla.py)
    watches every open ticket with a due time."""

    __tablename__ = "ticket"
    __table_args__ = (
        Index("ix_ticket_related_order", "related_order_id"),
        Index("ix_ticket_state", "state", "opened_at"),
        {"schema": "crm"},
    )

    id: str = Field(primary_key=True, max_length=16)  # TKT-xxxxxxxx
    customer_id: str | None = Field(
        default=None, sa_column=Column(String(16), ForeignKey("crm.customer.id"), nullable=True, index=True)
    )
    case_id: str | None = Field(
        default=None,
        sa_column=Column(String(16), ForeignKey("crm.support_case.id"), nullable=True, index=True),
    )
    ticket_type: str = Field(max_length=40)
    subject: str = Field(max_length=200)
    description: str = Field(default="", max_length=4000)
    state: str = Field(default="open", max_length=20)
    priority: str = Field(default="normal", max_length=20)
    assigned_to_agent_id: str | None = Field(
        default=None, sa_column=Column(String(16), ForeignKey("crm.agent.id"), nullable=True)
    )
    related_order_id: str | None = Field(default=None, max_length=32)
    related_service_id: str | None = Field(default=None, max_length=32)
    # A workflow waiting on this ticket for an operator's decision (workflows/attention.py), and
    # what it waits about; `bss ticket retry|resolve` signals it.
    waiting_workflow_id: str | None = Field(default=None, max_length=200)
    waiting_topic: str | None = Field(default=None, max_length=40)
    sla_due_at: datetime | None = _ts(nullable=True)
    # Set by the SLA timer's first step: a ticket without it after a grace period gets its timer
    # from the worker's sweep (ops/crm.sweep_ticket_timers).
    sla_timer_started_at: datetime | None = _ts(nullable=True)
    escalations: int = Field(default=0)
    opened_by: str = Field(default="system", max_length=200)
    opened_at: datetime = _ts()
    updated_at: datetime | None = _ts(nullable=True)
    resolved_at: datetime | None = _ts(nullable=True)
    closed_at: datetime | None = _ts(nullable=True)
    resolution_notes: str | None = Field(default=None, max_length=4000)


class TicketNote(SQLModel, table=True):
    __tablename__ = "ticket_note"
    __table_args__ = {"schema": "crm"}

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(
        sa_column=Column(String(16), ForeignKey("crm.ticket.id"), nullable=False, index=True)
    )
    author: str = Field(max_length=200)
    body: str = Field(max_length=4000)
    created_at: datetime = _ts()


class TicketStatusChange(SQLModel, table=True):
    """The ticket's state history (TMF621 statusChange)."""

    __tablename__ = "ticket_state_history"
    __table_args__ = {"schema": "crm"}

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(
        sa_column=Column(String(16), ForeignKey("crm.ticket.id"), nullable=False, index=True)
    )
    trigger: str = Field(max_length=20)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=500)
    actor: str = Field(max_length=200)
    changed_at: datetime = _ts()


class Interaction(SQLModel, table=True):
    """One contact or change on a customer's file (TMF683 partyInteraction), written by every CRM
    write in the same transaction."""

    __tablename__ = "interaction"
    __table_args__ = (Index("ix_interaction_customer", "customer_id", "occurred_at"), {"schema": "crm"})

    id: str = Field(primary_key=True, max_length=16)  # INT-xxxxxxxx
    customer_id: str | None = Field(
        default=None, sa_column=Column(String(16), ForeignKey("crm.customer.id"), nullable=True)
    )
    channel: str = Field(max_length=40)
    direction: str = Field(max_length=10)  # inbound | outbound
    reason: str = Field(max_length=60)  # what happened, e.g. ticket.opened
    summary: str = Field(max_length=500)
    body: str = Field(default="", max_length=4000)
    actor: str = Field(max_length=200)
    agent_id: str | None = Field(default=None, max_length=16)
    related_case_id: str | None = Field(default=None, max_length=16)
    related_ticket_id: str | None = Field(default=None, max_length=16)
    occurred_at: datetime = _ts()


class CrmIdempotencyKey(SQLModel, table=True):
    """`Idempotency-Key` of a create: the same key answers the resource it created the first time."""

    __tablename__ = "idempotency_key"
    __table_args__ = (
        UniqueConstraint("scope", "key", name="uq_crm_idempotency_scope_key"),
        {"schema": "crm"},
    )

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=50)
    key: str = Field(max_length=200)
    fingerprint: str = Field(max_length=64)
    resource_id: str = Field(max_length=32)
    created_at: datetime = _ts()

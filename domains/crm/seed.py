"""CRM reference data (inventory §9): the agents and the 12 SLA policies. Idempotent upserts."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from domains.crm.models import Agent, SlaPolicy

ORDER = 20

AGENTS = [
    ("AGT-001", "Alice Tan", "csr"),
    ("AGT-002", "Bob Lim", "csr"),
    ("AGT-003", "Carol Ng", "supervisor"),
    ("AGT-004", "Dave Koh", "engineer"),
    ("AGT-SYS", "System", "system"),
]

# minutes to resolution: (low, normal, high, urgent)
SLA_MINUTES = {
    "billing_dispute": (2880, 1440, 480, 120),
    "service_outage": (480, 240, 60, 30),
    "configuration": (2880, 1440, 720, 240),
}
PRIORITIES = ("low", "normal", "high", "urgent")


def _agent_email(name: str) -> str:
    return f"{name.split()[0].lower()}@bss-cli.local"


async def seed(session: AsyncSession) -> None:
    for agent_id, name, role in AGENTS:
        await session.execute(
            insert(Agent)
            .values(id=agent_id, name=name, email=_agent_email(name), role=role, status="active")
            .on_conflict_do_nothing(index_elements=["id"])
        )
    for ticket_type, minutes in SLA_MINUTES.items():
        for priority, value in zip(PRIORITIES, minutes, strict=True):
            await session.execute(
                insert(SlaPolicy)
                .values(ticket_type=ticket_type, priority=priority, resolution_minutes=value)
                .on_conflict_do_nothing(constraint="uq_sla_policy_type_priority")
            )

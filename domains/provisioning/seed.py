"""The reference's six fault-injection rules (bss-cli inventory §9) and one per card-gateway fault,
all disabled: an operator turns one on to rehearse a failing HLR, a stuck provisioning task or a card
gateway outage. Existing rows are left alone, so a re-seed never undoes an operator's change."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from domains.provisioning.models import FaultRule

ORDER = 40

# id, task type, fault type, probability
RULES = [
    ("FI_HLR_PROV_FAIL", "HLR_PROVISION", "fail_first_attempt", 0.30),
    ("FI_HLR_PROV_STUCK", "HLR_PROVISION", "stuck", 0.05),
    ("FI_PCRF_SLOW", "PCRF_POLICY_PUSH", "slow", 0.20),
    ("FI_OCS_FAIL", "OCS_BALANCE_INIT", "fail_first_attempt", 0.10),
    ("FI_ESIM_FAIL", "ESIM_PROFILE_PREPARE", "fail_first_attempt", 0.15),
    ("FI_HLR_DEPROV_STUCK", "HLR_DEPROVISION", "stuck", 0.05),
    # The card gateway (ours; ids as `bss prov fault` makes them, so setting one updates its row).
    ("FI_PAYMENT_CHARGE_DECLINE", "PAYMENT_CHARGE", "decline", 0.10),
    ("FI_PAYMENT_CHARGE_TIMEOUT", "PAYMENT_CHARGE", "timeout", 0.10),
    ("FI_PAYMENT_CHARGE_UNAVAILABLE", "PAYMENT_CHARGE", "unavailable", 0.10),
    ("FI_PAYMENT_CHARGE_LOST_RESPONSE", "PAYMENT_CHARGE", "lost_response", 0.05),
    ("FI_PAYMENT_REFUND_UNAVAILABLE", "PAYMENT_REFUND", "unavailable", 0.10),
]


async def seed(session: AsyncSession) -> None:
    now = clock.now()
    rows = [
        {"id": i, "task_type": t, "fault_type": f, "probability": p, "enabled": False, "updated_at": now}
        for i, t, f, p in RULES
    ]
    await session.execute(insert(FaultRule).values(rows).on_conflict_do_nothing())

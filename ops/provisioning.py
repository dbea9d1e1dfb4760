"""Provisioning operations: the fault-injection rules an operator flips to rehearse network trouble.

The simulators read the rules through a one-second cache, so a change here reaches every worker
within a second.
"""

from __future__ import annotations

from core.context import RequestContext
from core.db import transaction
from domains.provisioning import services
from domains.provisioning.models import FaultRule
from ops.runtime import Runtime


async def fault_rules(rt: Runtime) -> list[FaultRule]:
    async with rt.db() as s:
        return await services.list_fault_rules(s)


async def change_fault_rule(
    rt: Runtime,
    ctx: RequestContext,
    rule_id: str,
    *,
    enabled: bool | None = None,
    probability: float | None = None,
    fault_type: str | None = None,
) -> FaultRule:
    async with transaction(rt.db) as s:
        return await services.set_fault_rule(
            s, ctx, rule_id, enabled=enabled, probability=probability, fault_type=fault_type
        )


async def set_fault(
    rt: Runtime,
    ctx: RequestContext,
    *,
    task_type: str,
    fault_type: str,
    probability: float = 1.0,
    enabled: bool = True,
) -> tuple[FaultRule, bool]:
    """Upsert the rule for (task type, fault type); the flag says whether it was created."""
    async with transaction(rt.db) as s:
        existed = await services.find_fault_rule(s, task_type, fault_type) is not None
        rule = await services.set_fault(
            s, ctx, task_type=task_type, fault_type=fault_type, probability=probability, enabled=enabled
        )
    return rule, not existed

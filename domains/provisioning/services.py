"""Fault-injection rules: read by the simulators, changed by an operator (API, CLI, cockpit)."""

from __future__ import annotations

import math

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import InvalidInput, NotFound, PolicyViolation
from domains.audit.services import record
from domains.provisioning.models import (
    FAULT_TYPES,
    PAYMENT_TASK_TYPES,
    PORTING_TASK_TYPES,
    TASK_TYPES,
    FaultRule,
    fault_types_for,
)


async def list_fault_rules(session: AsyncSession) -> list[FaultRule]:
    return list(await session.exec(select(FaultRule).order_by(col(FaultRule.id))))


async def get_fault_rule(session: AsyncSession, rule_id: str) -> FaultRule:
    rule = await session.get(FaultRule, rule_id)
    if rule is None:
        raise NotFound(
            "provisioning.fault_injection.not_found", f"No fault-injection rule {rule_id}.", rule_id=rule_id
        )
    return rule


async def find_fault_rule(session: AsyncSession, task_type: str, fault_type: str) -> FaultRule | None:
    rows = await session.exec(
        select(FaultRule).where(FaultRule.task_type == task_type, FaultRule.fault_type == fault_type)
    )
    return rows.first()


async def set_fault_rule(
    session: AsyncSession,
    ctx: RequestContext,
    rule_id: str,
    *,
    enabled: bool | None = None,
    probability: float | None = None,
    fault_type: str | None = None,
) -> FaultRule:
    """Change one rule in place; the simulators see it within their cache TTL (one second)."""
    if probability is not None:
        _check_probability(probability)
    if fault_type is not None:
        _check_choice("fault_type", fault_type, FAULT_TYPES)
    rule = await get_fault_rule(session, rule_id)
    if fault_type is not None:
        _check_fits(rule.task_type, fault_type)
    if fault_type is not None and fault_type != rule.fault_type:
        clash = await find_fault_rule(session, rule.task_type, fault_type)
        if clash is not None:
            raise PolicyViolation(
                "provisioning.fault_injection.duplicate",
                f"{clash.id} already injects {fault_type} into {rule.task_type}; change that rule instead.",
                existing_rule_id=clash.id,
            )
    before = _snapshot(rule)
    if enabled is not None:
        rule.enabled = enabled
    if probability is not None:
        rule.probability = float(probability)
    if fault_type is not None:
        rule.fault_type = fault_type
    rule.updated_at = clock.now()
    session.add(rule)
    await session.flush()
    record(
        session,
        ctx,
        "provisioning.fault_injection.updated",
        "fault_rule",
        rule.id,
        {"before": before, "after": _snapshot(rule)},
    )
    return rule


async def set_fault(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    task_type: str,
    fault_type: str,
    probability: float = 1.0,
    enabled: bool = True,
) -> FaultRule:
    """Turn a fault on (or off) for a task type: `bss prov fault HLR_PROVISION fail_always`.

    Updates the rule for (task type, fault type) when one exists, creates it otherwise.
    """
    _check_choice("task_type", task_type, TASK_TYPES)
    _check_choice("fault_type", fault_type, FAULT_TYPES)
    _check_fits(task_type, fault_type)
    _check_probability(probability)
    now = clock.now()
    values = {"probability": float(probability), "enabled": enabled, "updated_at": now}
    statement = (
        insert(FaultRule)
        .values(id=_rule_id(task_type, fault_type), task_type=task_type, fault_type=fault_type, **values)
        .on_conflict_do_update(constraint="uq_fault_rule_task_fault", set_=values)
        .returning(col(FaultRule.id))
    )
    rule_id = (await session.execute(statement)).scalar_one()
    rows = await session.exec(
        select(FaultRule).where(FaultRule.id == rule_id).execution_options(populate_existing=True)
    )
    rule = rows.one()
    record(session, ctx, "provisioning.fault_injection.set", "fault_rule", rule.id, _snapshot(rule))
    return rule


def _rule_id(task_type: str, fault_type: str) -> str:
    return f"FI_{task_type}_{fault_type}".upper()


def _snapshot(rule: FaultRule) -> dict[str, object]:
    return {
        "task_type": rule.task_type,
        "fault_type": rule.fault_type,
        "probability": rule.probability,
        "enabled": rule.enabled,
    }


def _check_probability(probability: float) -> None:
    if not isinstance(probability, int | float) or math.isnan(probability) or not 0 <= probability <= 1:
        raise InvalidInput(
            "provisioning.fault_injection.probability_range",
            f"A fault probability is between 0 and 1; got {probability!r}.",
            probability=probability,
        )


def _check_fits(task_type: str, fault_type: str) -> None:
    """Network faults are for network tasks, gateway faults for PAYMENT_CHARGE / PAYMENT_REFUND."""
    allowed = fault_types_for(task_type)
    if fault_type not in allowed:
        kind = "the card gateway" if task_type in PAYMENT_TASK_TYPES else "a network task"
        if task_type in PORTING_TASK_TYPES:
            kind = "the number-portability clearinghouse"
        raise InvalidInput(
            "provisioning.fault_injection.fault_type_invalid",
            f"{task_type} is {kind}; its faults are {', '.join(allowed)}, not {fault_type!r}.",
            task_type=task_type,
            fault_type=fault_type,
        )


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidInput(
            f"provisioning.fault_injection.{name}_invalid",
            f"{name} must be one of {', '.join(allowed)}; got {value!r}.",
            **{name: value},
        )

"""Provisioning tables (schema `provisioning`): the fault-injection rules that the network-element
simulators and the mock card gateway read, so an operator can make HLR, PCRF, OCS, SM-DP+ or the
card acquirer misbehave on purpose."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, DateTime, Float, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import clock

NETWORK_TASK_TYPES = (
    "HLR_PROVISION",
    "PCRF_POLICY_PUSH",
    "OCS_BALANCE_INIT",
    "ESIM_PROFILE_PREPARE",
    "HLR_DEPROVISION",
    # The undo of provisioning and the barring of a blocked line (simulators/network.py).
    "PCRF_POLICY_REMOVE",
    "OCS_BALANCE_REMOVE",
    "PCRF_BAR",
    "PCRF_UNBAR",
)
# Calls to the card gateway (simulators/card_gateway.py): an authorisation and a refund.
PAYMENT_TASK_TYPES = ("PAYMENT_CHARGE", "PAYMENT_REFUND")
# The number-portability clearinghouse (simulators/clearinghouse.py): validating a port-in.
PORTING_TASK_TYPES = ("NP_VALIDATE",)
# The notification sender (domains/notify/sender.py) takes the network faults: a failed send stays queued.
EMAIL_TASK_TYPES = ("EMAIL_SEND",)
TASK_TYPES = NETWORK_TASK_TYPES + PAYMENT_TASK_TYPES + PORTING_TASK_TYPES + EMAIL_TASK_TYPES

NETWORK_FAULT_TYPES = ("fail_first_attempt", "fail_always", "stuck", "slow")
# decline: a normal decline answer; timeout: no answer within the gateway timeout, then an error;
# unavailable: an error at once (a 503); lost_response: the gateway records the call, the answer is lost.
PAYMENT_FAULT_TYPES = ("decline", "timeout", "unavailable", "lost_response")
# The clearinghouse's refusals of a port-in (besides the network faults, which make it slow or flaky).
PORTING_FAULT_TYPES = ("wrong_account", "number_locked", "donor_refuses")
FAULT_TYPES = NETWORK_FAULT_TYPES + PAYMENT_FAULT_TYPES + PORTING_FAULT_TYPES


def fault_types_for(task_type: str) -> tuple[str, ...]:
    """The faults a task type can be given: payment faults for the gateway, network faults otherwise
    (and, for the clearinghouse, its refusals too)."""
    if task_type in PORTING_TASK_TYPES:
        return NETWORK_FAULT_TYPES + PORTING_FAULT_TYPES
    return PAYMENT_FAULT_TYPES if task_type in PAYMENT_TASK_TYPES else NETWORK_FAULT_TYPES


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class FaultRule(SQLModel, table=True):
    """One way a network task may misbehave, with the chance it does so on each call."""

    __tablename__ = "fault_rule"
    __table_args__ = (
        UniqueConstraint("task_type", "fault_type", name="uq_fault_rule_task_fault"),
        CheckConstraint("probability >= 0 AND probability <= 1", name="ck_fault_rule_probability"),
        CheckConstraint(f"task_type IN ({_sql_list(TASK_TYPES)})", name="ck_fault_rule_task_type"),
        CheckConstraint(f"fault_type IN ({_sql_list(FAULT_TYPES)})", name="ck_fault_rule_fault_type"),
        CheckConstraint(
            f"(task_type IN ({_sql_list(PAYMENT_TASK_TYPES)})) = (fault_type IN ({_sql_list(PAYMENT_FAULT_TYPES)}))",
            name="ck_fault_rule_fault_fits_task",
        ),
        CheckConstraint(
            f"fault_type NOT IN ({_sql_list(PORTING_FAULT_TYPES)}) OR task_type IN ({_sql_list(PORTING_TASK_TYPES)})",
            name="ck_fault_rule_np_fault_fits_task",
        ),
        {"schema": "provisioning"},
    )

    id: str = Field(primary_key=True, max_length=64)
    task_type: str = Field(max_length=40)
    fault_type: str = Field(max_length=40)
    probability: float = Field(default=1.0, sa_column=Column(Float, nullable=False))
    enabled: bool = False
    updated_at: datetime = Field(
        default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )

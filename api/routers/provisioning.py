"""Fault injection on the simulated network and the mock card gateway (operator administration, not TMF).

Network tasks (`HLR_PROVISION`, …) take `fail_first_attempt`, `fail_always`, `stuck`, `slow`; the card
gateway's `PAYMENT_CHARGE` and `PAYMENT_REFUND` take `decline`, `timeout`, `unavailable`,
`lost_response`. A fault given to the other kind of task is a 400.

`GET` lists the rules, `PATCH /{id}` changes one, `POST` turns a fault on (or off) for a task type,
creating the rule when none exists for that (taskType, faultType). The simulators apply a change
within a second.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import context, runtime
from core.context import RequestContext
from domains.provisioning.models import FAULT_TYPES, TASK_TYPES, FaultRule
from ops import provisioning as provisioning_ops
from ops.runtime import Runtime

BASE = "/bss-api/v1/provisioning/fault-injection"
router = APIRouter(prefix=BASE, tags=["Provisioning fault injection"])

# The OpenAPI enumerates them; the domain's tuples are the one list.
TaskType = Literal[TASK_TYPES]  # type: ignore[valid-type]
FaultType = Literal[FAULT_TYPES]  # type: ignore[valid-type]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FaultRuleChange(Strict):
    enabled: bool | None = None
    probability: float | None = Field(
        None, ge=0, le=1, allow_inf_nan=False, description="Chance the fault fires on each call, 0 to 1."
    )
    fault_type: FaultType | None = Field(None, alias="faultType")

    @model_validator(mode="after")
    def _something_to_change(self) -> FaultRuleChange:
        if self.enabled is None and self.probability is None and self.fault_type is None:
            raise ValueError("give at least one of enabled, probability, faultType")
        return self


class FaultSetting(Strict):
    task_type: TaskType = Field(alias="taskType")
    fault_type: FaultType = Field(alias="faultType")
    probability: float = Field(1.0, ge=0, le=1, allow_inf_nan=False)
    enabled: bool = True


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def rule_json(rule: FaultRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "href": f"{BASE}/{rule.id}",
        "@type": "FaultInjectionRule",
        "taskType": rule.task_type,
        "faultType": rule.fault_type,
        "probability": rule.probability,
        "enabled": rule.enabled,
        "updatedAt": _time(rule.updated_at),
    }


@router.get("", summary="List the fault-injection rules")
async def list_rules(response: Response, rt: Runtime = Depends(runtime)) -> list[dict[str, Any]]:
    rules = await provisioning_ops.fault_rules(rt)
    response.headers["X-Total-Count"] = response.headers["X-Result-Count"] = str(len(rules))
    return [rule_json(r) for r in rules]


@router.patch("/{id}", summary="Enable, disable or tune one rule")
async def change_rule(
    change: FaultRuleChange,
    rule_id: str = Path(alias="id", max_length=64, description="e.g. FI_HLR_PROV_FAIL"),
    rt: Runtime = Depends(runtime),
    ctx: RequestContext = Depends(context),
) -> dict[str, Any]:
    rule = await provisioning_ops.change_fault_rule(
        rt, ctx, rule_id, enabled=change.enabled, probability=change.probability, fault_type=change.fault_type
    )
    return rule_json(rule)


@router.post("", summary="Set a fault for a task type (creates the rule if needed)", status_code=200)
async def set_fault(
    setting: FaultSetting, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> JSONResponse:
    rule, created = await provisioning_ops.set_fault(
        rt,
        ctx,
        task_type=setting.task_type,
        fault_type=setting.fault_type,
        probability=setting.probability,
        enabled=setting.enabled,
    )
    body = rule_json(rule)
    if created:
        return JSONResponse(body, status_code=201, headers={"Location": body["href"]})
    return JSONResponse(body)

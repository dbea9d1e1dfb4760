"""The plumbing of the agent's tools: the Tool dataclass, argument schemas, results as JSON, error
mapping, building a tool set, proposal summaries, and `call_tool` (validate, run or propose, audit)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.context import RequestContext
from core.errors import DomainError
from ops.runtime import Runtime

log = logging.getLogger("bss.agent")

ROLE_RANK = {"csr": 0, "supervisor": 1, "admin": 2}
RESULT_MAX = 12_000  # characters of JSON a tool result may put in front of the model
LIST_MAX = 50

Run = Callable[[Any, str | None], Awaitable[Any]]
Plan = Callable[[Any], Awaitable[str]]


@dataclasses.dataclass
class Tool:
    name: str
    description: str
    args: type[BaseModel]
    kind: Literal["read", "write", "act"]
    run: Run  # (validated args, idempotency key) -> result; for `act`, only /confirm calls it
    plan: Plan | None = None  # `act`: exactly what will happen, in sentences
    min_role: str = "csr"
    ops: tuple[str, ...] = ()  # the operations it reaches ("ops.<module>.<function>")
    # Customer tools: the result is checked for other customers' things before the model sees it.
    check: Callable[[Any], Awaitable[None]] | None = None

    def openai_spec(self) -> dict[str, Any]:
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": schema},
        }


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------------------------- argument fields

CUST = r"^CUST-[0-9a-f]{8}$"
SUB = r"^SUB-\d{6,}$"
ORD = r"^ORD-\d{6,}$"
TKT = r"^TKT-[0-9a-f]{8}$"
CASE = r"^CASE-[0-9a-f]{8}$"
PORT = r"^PORT-[0-9a-f]{8}$"
PTK = r"^PTK-\d{6,}$"
ICCID = r"^89\d{17}$"
MSISDN = r"^\+?\d{6,15}$"


def _customer(desc: str = "The customer id, e.g. CUST-1a2b3c4d.") -> Any:
    return Field(pattern=CUST, description=desc)


def _line(desc: str = "The line (subscription) id, e.g. SUB-000123.") -> Any:
    return Field(pattern=SUB, description=desc)


class NoArgs(Args):
    pass


class CustomerRef(Args):
    customer_id: str = _customer()


class LineRef(Args):
    line_id: str = _line()


class OrderRef(Args):
    order_id: str = Field(pattern=ORD, description="The product order id, e.g. ORD-000123.")


class TicketRef(Args):
    ticket_id: str = Field(pattern=TKT, description="The ticket id, e.g. TKT-1a2b3c4d.")


class CaseRef(Args):
    case_id: str = Field(pattern=CASE, description="The case id, e.g. CASE-1a2b3c4d.")


class PortRef(Args):
    port_id: str = Field(pattern=PORT, description="The port request id, e.g. PORT-1a2b3c4d.")


class TaskRef(Args):
    task_id: str = Field(pattern=PTK, description="The provisioning task id, e.g. PTK-000123.")


class Page(Args):
    offset: int = Field(0, ge=0, le=100_000, description="Skip this many (paging).")
    limit: int = Field(20, ge=1, le=LIST_MAX, description="At most this many.")


class OfferingRef(Args):
    offering_id: str = Field(max_length=64, description="The plan (product offering) id, e.g. PLAN_M.")


class VasRef(Args):
    vas_id: str = Field(max_length=64, description="The top-up (VAS offering) id, e.g. VAS_DATA_5GB.")


class PromoRef(Args):
    code: str = Field(max_length=40, description="The promo code.")


# ---------------------------------------------------------------------------------- results as JSON

SECRET_KEY = re.compile(r"(hash|secret|password|^token$|card_number|^pan$)", re.IGNORECASE)


def jsonable(o: Any, depth: int = 0) -> Any:
    """What an operation returned, as JSON the model can read (secrets and hashes left out)."""
    if depth > 8:
        return str(o)
    if o is None or isinstance(o, bool | int | float | str):
        return o
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, datetime | date):
        return o.isoformat()
    if isinstance(o, Enum):
        return o.value
    if isinstance(o, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in o.items() if not SECRET_KEY.search(str(k))}
    if isinstance(o, list | tuple | set | frozenset):
        return [jsonable(v, depth + 1) for v in list(o)[: LIST_MAX * 2]]
    if isinstance(o, BaseModel):
        return jsonable(o.model_dump(), depth + 1)
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return {
            f.name: jsonable(getattr(o, f.name), depth + 1)
            for f in dataclasses.fields(o)
            if not SECRET_KEY.search(f.name)
        }
    return str(o)


def _fit(result: Any) -> Any:
    text = json.dumps(result, default=str)
    if len(text) <= RESULT_MAX:
        return result
    return {
        "truncated": True,
        "json": text[:RESULT_MAX],
        "hint": "Ask for less: a narrower filter or a smaller limit.",
    }


def error_result(exc: DomainError) -> dict[str, Any]:
    return {"error": {"code": exc.code, "message": exc.message, "kind": exc.kind}}


# ---------------------------------------------------------------------------------- building tools


class ToolSet:
    def __init__(self) -> None:
        self.tools: list[Tool] = []

    def add(
        self,
        name: str,
        description: str,
        args: type[BaseModel] = NoArgs,
        *,
        kind: Literal["read", "write", "act"] = "read",
        ops: tuple[str, ...] = (),
        min_role: str = "csr",
        plan: Plan | None = None,
    ) -> Callable[[Run], Run]:
        if kind == "act" and plan is None:
            raise ValueError(f"act tool {name} needs a plan")

        def deco(run: Run) -> Run:
            self.tools.append(Tool(name, description, args, kind, run, plan, min_role, ops))
            return run

        return deco


def _sentences(*parts: str) -> str:
    return "\n".join(p for p in parts if p)


def _plan_text(plan: Any) -> str:
    """A cockpit confirm step (ops.workbench.Plan, ops.cockpit.LinePlan) as the proposal's summary."""
    return _sentences(f"{plan.title[:1].upper()}{plan.title[1:]}:", *plan.effects)


async def _line_plan(rt: Runtime, sub_id: str, action: str, form: dict[str, str]) -> str:
    """The cockpit's own confirm step: the charge, the card, what ends (ops.cockpit.line_action_plan)."""
    from ops import cockpit

    plan = await cockpit.line_action_plan(rt, sub_id, action, form)
    return _sentences(f"{plan.title.capitalize()} on {plan.sub_id}:", *plan.effects)


@dataclasses.dataclass
class CallOutcome:
    result: dict[str, Any] | list[Any]  # what the model sees
    ok: bool
    proposal: Any = None  # the stored Proposal of an act tool


async def call_tool(
    rt: Runtime,
    ctx: RequestContext,
    tool: Tool | None,
    raw_args: Any,
    *,
    session_id: str,
    role: str,
    name: str | None = None,
) -> CallOutcome:
    """Run one tool call of the model: validate, run (read, write) or propose (act), audit. Never
    raises for anything the model did: errors come back as {"error": {"code", "message"}}."""
    from agent import store
    from core.db import transaction
    from domains.audit.services import record

    name = tool.name if tool else (name or "?")
    args_for_audit = raw_args if isinstance(raw_args, dict) else {"raw": str(raw_args)[:500]}
    proposal = None
    ok = False
    if tool is None:
        result: Any = {"error": {"code": "agent.tool.unknown", "message": f"There is no tool {name!r} here."}}
    else:
        try:
            args = tool.args.model_validate(raw_args if isinstance(raw_args, dict) else {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5]
            )
            result = {"error": {"code": "agent.tool.arguments_invalid", "message": problems}}
        else:
            try:
                if tool.kind == "act":
                    assert tool.plan is not None
                    summary = await tool.plan(args)
                    async with transaction(rt.db) as s:
                        proposal = await store.add_proposal(
                            rt,
                            s,
                            session_id=session_id,
                            tool=tool.name,
                            args=args.model_dump(mode="json"),
                            summary=summary,
                            role=role,
                        )
                    result = {
                        "proposal": {"id": proposal.id, "summary": summary, "state": "pending"},
                        "note": "Nothing has been done yet. Tell the person exactly this and that they "
                        "must type /confirm to carry it out (or /cancel). You cannot confirm it.",
                    }
                else:
                    value = jsonable(await tool.run(args, f"agent-{session_id}-{_digest(tool.name, args)}"))
                    if tool.check is not None:
                        await tool.check(value)
                    result = _fit(value)
                ok = True
            except DomainError as exc:
                result = error_result(exc)
            except Exception as exc:  # noqa: BLE001 - the model gets a plain failure, the log the detail
                log.exception("agent tool %s failed", name)
                result = {
                    "error": {
                        "code": "agent.tool.failed",
                        "message": f"The operation failed ({type(exc).__name__}); nothing more is known.",
                    }
                }
    outcome = "proposed" if proposal is not None else ("ok" if ok else result["error"]["code"])
    try:
        async with transaction(rt.db) as s:
            payload = {
                "tool": name,
                "args": args_for_audit,
                "outcome": outcome,
                "kind": tool.kind if tool else None,
            }
            if proposal is not None:
                payload["proposalId"] = proposal.id
            record(s, ctx, "agent.tool_called", "agent_session", session_id, payload)
    except Exception:  # noqa: BLE001 - an audit write failing must not break the turn
        log.exception("audit of agent tool call %s failed", name)
    return CallOutcome(result, ok, proposal)


def _digest(name: str, args: BaseModel) -> str:
    import hashlib

    return hashlib.sha256(f"{name}:{args.model_dump_json()}".encode()).hexdigest()[:16]


def tool_ops(tools: list[Tool]) -> set[str]:
    return {op for t in tools for op in t.ops}


def describe(tools: list[Tool]) -> list[dict[str, Any]]:
    """Name, kind and description of each tool (the REPL's /help, the docs)."""
    return [
        {"name": t.name, "kind": t.kind, "minRole": t.min_role, "description": t.description} for t in tools
    ]

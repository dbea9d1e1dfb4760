"""Every operation of the operations layer is reachable as an agent tool, or is listed in
agent.tools.NOT_TOOLS with the reason it is not (credentials, sign-in doors, the worker's loops).
A new public async function in ops/ without a tool fails here. Also: the tools' shapes (schemas the
endpoint accepts, kinds, roles) and the customer tools' binding to one customer."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import ops
from agent.tools import NOT_TOOLS, customer_tools, operator_tools
from core.context import RequestContext
from core.settings import Settings
from ops.runtime import Runtime

CTX = RequestContext(actor="coverage", channel="llm")
SOURCE = "\n".join(
    p.read_text() for p in sorted((Path(__file__).resolve().parents[2] / "agent" / "tools").glob("*.py"))
)


def public_operations() -> set[str]:
    found = set()
    for info in pkgutil.iter_modules(ops.__path__):
        module = importlib.import_module(f"ops.{info.name}")
        for name, obj in vars(module).items():
            if name.startswith("_") or not inspect.iscoroutinefunction(obj):
                continue
            if obj.__module__ == module.__name__:
                found.add(f"{module.__name__}.{name}")
    return found


def _canonical(op: str) -> str:
    """Where a declared operation is defined: ops.workbench re-exports ops.queues and
    ops.confirm_plans, so ops.workbench.ticket_queue is ops.queues.ticket_queue."""
    module, function = op.rsplit(".", 1)
    try:
        obj = getattr(importlib.import_module(module), function, None)
    except ImportError:
        return op
    return f"{obj.__module__}.{function}" if inspect.iscoroutinefunction(obj) else op


def _source(op: str) -> str:
    module, function = op.rsplit(".", 1)
    return inspect.getsource(getattr(importlib.import_module(module), function))


def all_tools():
    rt = Runtime.create(Settings(db_url="postgresql+asyncpg://u:p@127.0.0.1:1/none"))
    return operator_tools(rt, CTX, role="admin"), customer_tools(rt, CTX, "CUST-0a0b0c0d")


def test_every_operation_is_a_tool_or_excluded_with_a_reason() -> None:
    operator, customer = all_tools()
    reached = {_canonical(op) for t in operator + customer for op in t.ops}
    operations = public_operations()
    excluded = {_canonical(op) for op in NOT_TOOLS}
    missing = operations - reached - excluded
    assert not missing, (
        f"operations without an agent tool (add one in agent/tools/, or a reasoned NOT_TOOLS entry): {sorted(missing)}"
    )
    assert all(len(reason) > 15 for reason in NOT_TOOLS.values())
    stale = {op for op in NOT_TOOLS if _canonical(op) not in operations}
    assert not stale, f"NOT_TOOLS names operations that no longer exist: {sorted(stale)}"
    both = excluded & reached
    assert not both, f"both a tool and excluded: {sorted(both)}"
    # a tool's declared operation is really called: in agent/tools/, or by another operation the
    # same tool declares (ops.workbench.case_page reads ops.crm.case_detail)
    for tool in operator + customer:
        for op in {
            op for op in tool.ops if op.startswith("ops.")
        }:  # agent.knowledge, agent.escalation: agent's own
            assert _canonical(op) in operations, f"{op} is declared by {tool.name} but is no public operation"
            module, function = op.split(".")[1:]
            if re.search(rf"\b{module}\.{function}\(", SOURCE):
                continue
            callers = [_source(other) for other in tool.ops if other != op and other.startswith("ops.")]
            assert any(re.search(rf"\b{function}\(", src) for src in callers), (
                f"{tool.name} declares {op} but never calls it"
            )


def test_tool_shapes_kinds_and_roles() -> None:
    operator, customer = all_tools()
    for tools in (operator, customer):
        names = [t.name for t in tools]
        assert len(names) == len(set(names))
        for t in tools:
            spec = t.openai_spec()["function"]
            assert re.fullmatch(r"[a-z][a-z0-9_]{1,63}", spec["name"])
            assert spec["parameters"]["type"] == "object" and len(spec["description"]) > 15
            assert t.kind in ("read", "write", "act")
            if t.kind == "act":
                assert t.plan is not None and "Proposes" in t.description, t.name
    by_name = {t.name: t for t in operator}
    for destructive in ("line_terminate", "line_top_up", "line_renew", "line_change_plan", "order_create", "order_cancel",
                        "stuck_order_decide", "task_resolve", "task_retry", "port_approve", "port_reject",
                        "catalog_add_plan", "catalog_add_price", "catalog_retire_plan", "promo_create",
                        "promo_exhaust", "case_close", "customer_close", "payment_method_remove", "fault_set"):  # fmt: skip
        assert by_name[destructive].kind == "act", destructive
    rt = Runtime.create(Settings(db_url="postgresql+asyncpg://u:p@127.0.0.1:1/none"))
    csr = {t.name for t in operator_tools(rt, CTX, role="csr")}
    supervisor = {t.name for t in operator_tools(rt, CTX, role="supervisor")}
    assert "line_top_up" in csr and "line_terminate" not in csr and "line_terminate" in supervisor
    assert "stuck_order_decide" not in csr and "catalog_add_plan" not in supervisor
    assert {"catalog_add_plan", "promo_create", "fault_set"} <= {t.name for t in operator}


def test_customer_tools_take_no_id_that_could_point_at_another_customer() -> None:
    _, customer = all_tools()
    for t in customer:
        params = set(t.args.model_json_schema().get("properties", {}))
        assert not params & {
            "customer_id",
            "order_id",
            "case_id",
            "ticket_id",
            "payment_method_id",
            "msisdn",
        }, t.name
        assert t.check is not None, f"{t.name}'s result is not ownership-checked"
    assert {"top_up", "renew", "change_plan", "terminate_line"} <= {
        t.name for t in customer if t.kind == "act"
    }

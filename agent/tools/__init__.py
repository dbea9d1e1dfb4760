"""The agent's tools: thin wrappers over the one operations layer (ops/*), never a second copy of
its rules.

Each tool has a name, a precise description, a JSON schema (a pydantic model) and a kind:
- `read`: runs at once and answers with what the operation returned;
- `write`: runs at once; only harmless writes (a note, opening a case or ticket, an assignment);
- `act`: destructive or money-moving. It does NOT act: `plan` spells out exactly what would happen
  (the line, the price, the card, the effect; refusing what the rules refuse already), the proposal
  is stored with the session, and only the person's /confirm (agent/loop.py `confirm`) runs it,
  through the same operation the API uses, with the proposal id as idempotency key.

`call_tool` is the one way the loop runs a tool: arguments are validated against the schema, a
domain error (core.errors) comes back as {"error": {"code", "message"}} the model can recover
from, never as an exception, and every call is audited (channel `llm`, the person as actor, the
tool's arguments).

Operator tools follow the person's role (csr < supervisor < admin, as in the cockpit; the CLI is
admin). Customer tools are bound to one customer: no customer, order or case id parameter; a line
id is checked with ops/ownership.py before use, and every result is checked for other customers'
ids before the model sees it.

The package, by capability: base.py (the Tool, schemas, results, call_tool), one module per part of
the business for the operator tools (customers, catalog, promotions, orders, fallout, lines, usage,
inventory, porting, care, operations; operator_tools below adds them in this order, which is the
order the model sees), knowledge.py (the handbook search) and customer_profile.py (customer_tools).
"""

from __future__ import annotations

from agent.tools.base import ROLE_RANK, Args, Tool, ToolSet, call_tool, describe, error_result, jsonable
from agent.tools.care import add_care_tools
from agent.tools.catalog import add_catalog_tools
from agent.tools.customer_profile import check_owned, customer_tools
from agent.tools.customers import add_customer_tools
from agent.tools.fallout import add_fallout_tools
from agent.tools.inventory import add_inventory_tools
from agent.tools.knowledge import _knowledge_tool
from agent.tools.lines import add_line_tools
from agent.tools.operations import add_operations_tools
from agent.tools.orders import add_order_tools
from agent.tools.porting import add_porting_tools
from agent.tools.promotions import add_promotion_tools
from agent.tools.usage import add_usage_tools
from core.context import RequestContext
from ops.runtime import Runtime


def operator_tools(rt: Runtime, ctx: RequestContext, *, role: str = "admin") -> list[Tool]:
    """Every operation an operator has, as tools, filtered by the person's role (csr, supervisor,
    admin; anything else counts as csr)."""
    ts = ToolSet()
    add_customer_tools(ts, rt, ctx)
    add_catalog_tools(ts, rt, ctx)
    add_promotion_tools(ts, rt, ctx)
    add_order_tools(ts, rt, ctx)
    add_fallout_tools(ts, rt, ctx)
    add_line_tools(ts, rt, ctx)
    add_usage_tools(ts, rt, ctx)
    add_inventory_tools(ts, rt, ctx)
    add_porting_tools(ts, rt, ctx)
    add_care_tools(ts, rt, ctx)
    add_operations_tools(ts, rt, ctx)
    _knowledge_tool(ts, rt)
    rank = ROLE_RANK.get(role, 0)
    return [t for t in ts.tools if ROLE_RANK[t.min_role] <= rank]


# Public operations that are deliberately not tools (tests/agent/test_tool_coverage.py): each with
# its reason. A new operation must become a tool or be listed here, or that test fails.
NOT_TOOLS: dict[str, str] = {
    # credentials: a model never holds a secret
    "ops.access.create_token": "an API token is a secret shown once; a person makes it with `bss admin token`",
    "ops.access.list_tokens": "API credentials are administered by a person, never through a model",
    "ops.access.revoke_token": "API credentials are administered by a person, never through a model",
    "ops.staff.create_operator": "returns a generated password shown once; the model must never see it",
    "ops.staff.authenticate": "the cockpit's sign-in (a password check), not an operation",
    "ops.staff.signed_out": "the cockpit's sign-out bookkeeping",
    "ops.login.request_code": "the portal's email sign-in door",
    "ops.login.verify_code": "the portal's email sign-in door",
    "ops.login.customer_for_email": "the portal's sign-in lookup (takes a DB session)",
    "ops.kyc.attest": "a KYC attestation is signed by the provider through the channel; a model cannot sign one",
    "ops.kyc.require_verified": "a check inside order creation (takes a DB session)",
    "ops.payment.add_payment_method": "a card number must never pass through a model (PCI); the customer adds it on the portal",
    # the network's and the worker's machinery
    "ops.usage.record_usage": "usage comes from the network (mediation), never from a model",
    "ops.usage.record_bulk": "usage comes from the network (mediation), never from a model",
    "ops.usage.signal_exhausted": "called after rating commits; internal",
    "ops.orders.start_order_workflow": "part of create_order and the sweeper",
    "ops.orders.sweep_stranded_orders": "the worker's order sweeper",
    "ops.orders.run_order_sweeper": "the worker's order sweeper loop",
    "ops.som.undo_abandoned_orders": "the worker's order sweeper",
    "ops.porting.start_workflow": "part of porting.create",
    "ops.crm.start_sla_timer": "part of open_ticket and the SLA sweeper",
    "ops.crm.tell_sla_timer": "part of every ticket change",
    "ops.crm.sweep_ticket_timers": "the worker's SLA sweeper",
    "ops.crm.run_ticket_sla_sweeper": "the worker's SLA sweeper loop",
    "ops.notify.queue_from_events": "the worker's notifier",
    "ops.notify.queue_renewal_reminders": "the worker's notifier",
    "ops.notify.send_due": "the worker's notifier",
    "ops.notify.dispatch_pending": "the worker's notifier",
    "ops.notify.run_notifier": "the worker's notifier loop",
    "ops.notify.send": "sends a message that is not about a write (a login code); flows write audit events instead",
    "ops.seed.seed_all": "reference data at start-up",
    "ops.seed.seed_reference_data": "reference data at start-up",
    "ops.idempotency.once": "plumbing of the idempotent creates",
    "ops.ownership.require_own_line": "takes a DB session; check_line and own_line wrap it",
    "ops.cockpit.ticket_queue": "the first cockpit queue; ticket_queue uses ops.workbench.ticket_queue, the same queue with views",
    "ops.workbench.active_agents": "the cockpit's assignee picker; agent_list (ops.crm.list_agents) answers the same",
    "ops.workbench.ensure_agent": "creates the support-agent record of a signed-in cockpit operator (cockpit plumbing)",
    "ops.ownership.require_own_order": "takes a DB session; the customer chat lists its own orders instead",
    "ops.ownership.require_own_case": "takes a DB session; the customer chat lists its own cases instead",
    "ops.ownership.require_own_payment_method": "takes a DB session; the customer chat lists its own cards instead",
    "ops.ownership.own_order": "takes an order id: the customer chat has no order id parameter (my_orders lists theirs)",
    "ops.ownership.own_case": "takes a case id: the customer chat has no case id parameter (my_cases lists theirs)",
    "ops.ownership.check_case": "takes a case id: the customer chat has no case id parameter",
    "ops.ownership.own_payment_method": "takes a card id: the customer chat has no card id parameter",
    "ops.ownership.check_payment_method": "takes a card id: the customer chat has no card id parameter",
    "ops.signup.signup_status": "the portal's sign-up funnel for a visitor (prospect session), not a chat's",
    "ops.signup.promo_preview": "the portal's sign-up funnel for a visitor (prospect session), not a chat's",
    "ops.signup.order_progress": "the portal's sign-up funnel for a visitor (prospect session), not a chat's",
    "ops.signup.order_esim": "the portal's sign-up funnel: the eSIM QR of a new order, shown on the portal only",
    "ops.signup.last_order": "the portal's sign-up funnel for a visitor (prospect session), not a chat's",
    "ops.step_up.request_code": "the portal's step-up code for money moves; the chat's /confirm is the person's own act",
    "ops.step_up.verify": "the portal's step-up code for money moves; the chat's /confirm is the person's own act",
    "ops.step_up.state": "the portal's step-up code for money moves; the chat's /confirm is the person's own act",
    "ops.step_up.require": "the portal's step-up code for money moves; the chat's /confirm is the person's own act",
    "ops.step_up.confirm": "the portal's step-up code for money moves; the chat's /confirm is the person's own act",
    "ops.cockpit.do_line_action": "the cockpit's executor of its own confirm page; the agent calls the same ops.subscriptions operations with the proposal id as key",
}


__all__ = [
    "Args",
    "NOT_TOOLS",
    "ROLE_RANK",
    "Tool",
    "call_tool",
    "check_owned",
    "customer_tools",
    "describe",
    "error_result",
    "jsonable",
    "operator_tools",
]

"""The cockpit's workbench: case and ticket queues by SLA due time on the business clock, the
operator's own agent record (for "assign to me" and "mine"), and the plans of the confirm steps
for tickets, cases, port requests, promotions and the catalogue: each says exactly what the
action will do before anything is done.

The names live by capability in ops/queues.py (queues, pages, agents, answering a ticket) and
ops/confirm_plans.py (the "what will happen" of every confirm step); this module keeps the names
the cockpit and the agent import.

Reads here; every write goes through the existing operations (ops/crm.py, ops/attention.py,
ops/porting.py, ops/promotions.py, ops/catalog.py) with the operator's RequestContext, so the
rules live once and the audit rows name the operator.
"""

from __future__ import annotations

from ops.confirm_plans import (
    Plan,
    add_offering_plan,
    add_price_plan,
    case_close_plan,
    check_promotion,
    describe_promotion,
    port_plan,
    promotion_create_plan,
    promotion_exhaust_plan,
    retire_plan,
    ticket_plan,
)
from ops.queues import (
    QUEUE_MAX,
    VIEWS,
    CasePage,
    CaseRow,
    Due,
    TicketPage,
    TicketRow,
    active_agents,
    agent_of,
    answer_ticket,
    case_page,
    case_queue,
    due,
    ensure_agent,
    stuck_task_of,
    ticket_page,
    ticket_queue,
)

__all__ = [
    "QUEUE_MAX",
    "VIEWS",
    "CasePage",
    "CaseRow",
    "Due",
    "Plan",
    "TicketPage",
    "TicketRow",
    "active_agents",
    "add_offering_plan",
    "add_price_plan",
    "agent_of",
    "answer_ticket",
    "case_close_plan",
    "case_page",
    "case_queue",
    "check_promotion",
    "describe_promotion",
    "due",
    "ensure_agent",
    "port_plan",
    "promotion_create_plan",
    "promotion_exhaust_plan",
    "retire_plan",
    "stuck_task_of",
    "ticket_page",
    "ticket_plan",
    "ticket_queue",
]

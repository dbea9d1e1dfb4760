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
"""

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
from core.errors import DomainError, NotFound, PolicyViolation
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


def _knowledge_tool(ts: ToolSet, rt: Runtime) -> None:
    class KnowledgeArgs(Args):
        query: str = Field(min_length=2, max_length=300, description="What to look up, in plain words.")
        limit: int = Field(5, ge=1, le=10)

    @ts.add(
        "knowledge_search",
        "Search the operator handbook and the project docs (plans, rules, how to handle a blocked "
        "line, porting, refunds). Answers passages with their source path and anchor: cite them as "
        "[source#anchor] when you use them.",
        KnowledgeArgs,
        ops=("agent.knowledge.knowledge_search",),
    )
    async def _(a: Any, key: str | None) -> Any:
        try:
            from agent.knowledge import knowledge_search
        except ImportError:
            raise NotFound("knowledge.unavailable", "The handbook search is not installed here.") from None
        return await knowledge_search(rt, a.query, limit=a.limit)


# ================================================================================== operator tools


def operator_tools(rt: Runtime, ctx: RequestContext, *, role: str = "admin") -> list[Tool]:
    """Every operation an operator has, as tools, filtered by the person's role (csr, supervisor,
    admin; anything else counts as csr)."""
    from ops import (
        attention,
        catalog,
        clock,
        cockpit,
        crm,
        inventory,
        notify,
        orders,
        payment,
        porting,
        promotions,
        provisioning,
        som,
        staff,
        subscriptions,
        trace,
        usage,
        workbench,
    )

    ts = ToolSet()
    add = ts.add

    # ------------------------------------------------------------------ customers
    class Search(Args):
        query: str = Field(
            min_length=1,
            max_length=100,
            description="A customer id, an email, a phone number or MSISDN, or part of a name.",
        )
        limit: int = Field(10, ge=1, le=LIST_MAX)

    @add(
        "customer_search",
        "Find customers by id (CUST-…), email, MSISDN (any of their lines', past ones too) or part of the name.",
        Search,
        ops=("ops.cockpit.search_customers",),
    )
    async def _(a, key):
        return await cockpit.search_customers(rt, a.query, a.limit)

    class CustomerList(Page):
        status: Literal["active", "pending", "suspended", "closed"] | None = None
        name_contains: str | None = Field(None, max_length=100)
        email: str | None = Field(None, max_length=254)

    @add(
        "customer_list",
        "List customers, filtered by status, part of the name or exact email.",
        CustomerList,
        ops=("ops.crm.list_customers",),
    )
    async def _(a, key):
        return await crm.list_customers(
            rt, status=a.status, name_contains=a.name_contains, email=a.email, offset=a.offset, limit=a.limit
        )

    @add(
        "customer_get",
        "One customer: name, status, contact media, KYC status.",
        CustomerRef,
        ops=("ops.crm.get_customer",),
    )
    async def _(a, key):
        return await crm.get_customer(rt, a.customer_id)

    @add(
        "customer_360",
        "Everything about one customer at once: lines with balances (live first), latest orders with "
        "their provisioning steps, cases, tickets, payments, cards on file, interactions and messages "
        "sent. Start here to diagnose a customer's problem.",
        CustomerRef,
        ops=("ops.cockpit.customer_360",),
    )
    async def _(a, key):
        return await cockpit.customer_360(rt, a.customer_id, limit=10)

    class NewCustomer(Args):
        given_name: str = Field(min_length=1, max_length=100)
        family_name: str = Field(min_length=1, max_length=100)
        email: str | None = Field(None, max_length=254)
        phone: str | None = Field(None, max_length=20)
        date_of_birth: date | None = None

    @add(
        "customer_create",
        "Create a customer (name and at least an email or a phone).",
        NewCustomer,
        kind="write",
        ops=("ops.crm.create_customer",),
    )
    async def _(a, key):
        view, _replayed = await crm.create_customer(rt, ctx, **a.model_dump(), idempotency_key=key)
        return view

    class CustomerChange(CustomerRef):
        given_name: str | None = Field(None, max_length=100)
        family_name: str | None = Field(None, max_length=100)
        phone: str | None = Field(None, max_length=20)
        email: str | None = Field(None, max_length=254, description="Only when the customer has none yet.")

    @add(
        "customer_update",
        "Correct a customer's name or phone, or add an email when they have none (changing an email "
        "needs the customer's own verified flow). Closing an account is customer_close.",
        CustomerChange,
        kind="write",
        ops=("ops.crm.update_customer",),
    )
    async def _(a, key):
        changes = {k: v for k, v in a.model_dump(exclude={"customer_id"}).items() if v is not None}
        return await crm.update_customer(rt, ctx, a.customer_id, **changes)

    class Close(CustomerRef):
        reason: str = Field(min_length=3, max_length=200)

    async def plan_close(a):
        c = await crm.get_customer(rt, a.customer_id)
        name = " ".join(filter(None, [getattr(c, "given_name", None), getattr(c, "family_name", None)]))
        return _sentences(
            f"Close the account of {name or a.customer_id} ({a.customer_id}).",
            "Refused while any of their lines is still live (terminate those first).",
            f"Reason recorded: {a.reason}",
        )

    @add(
        "customer_close",
        "Close a customer's account (no live lines allowed). Proposes; the person confirms.",
        Close,
        kind="act",
        min_role="supervisor",
        plan=plan_close,
        ops=("ops.crm.update_customer",),
    )
    async def _(a, key):
        return await crm.update_customer(rt, ctx, a.customer_id, status="closed", status_reason=a.reason)

    class Interactions(Page):
        customer_id: str = _customer()

    @add(
        "interaction_list",
        "A customer's interactions (contacts, actions taken for them), newest first.",
        Interactions,
        ops=("ops.crm.interactions_of",),
    )
    async def _(a, key):
        return await crm.interactions_of(rt, customer_id=a.customer_id, offset=a.offset, limit=a.limit)

    class InteractionRef(Args):
        interaction_id: str = Field(max_length=40)

    @add("interaction_get", "One interaction.", InteractionRef, ops=("ops.crm.get_interaction",))
    async def _(a, key):
        return await crm.get_interaction(rt, a.interaction_id)

    class Messages(Page):
        customer_id: str | None = _customer("Only this customer's messages.")
        state: str | None = Field(None, max_length=20, description="queued, sent or failed.")

    @add(
        "message_list",
        "Messages (emails) sent or queued to customers, newest first.",
        Messages,
        ops=("ops.notify.list_messages",),
    )
    async def _(a, key):
        total, rows = await notify.list_messages(
            rt, customer_id=a.customer_id, state=a.state, offset=a.offset, limit=a.limit
        )
        return {"total": total, "items": rows}

    class MessageRef(Args):
        message_id: str = Field(max_length=20, description="e.g. MSG-1a2b3c4d")

    @add(
        "message_get",
        "One message sent to a customer, with its body.",
        MessageRef,
        ops=("ops.notify.get_message",),
    )
    async def _(a, key):
        return await notify.get_message(rt, a.message_id)

    # ------------------------------------------------------------------ payment methods
    @add(
        "payment_method_list",
        "A customer's cards on file (brand, last 4, expiry, default).",
        CustomerRef,
        ops=("ops.payment.list_payment_methods",),
    )
    async def _(a, key):
        return await payment.list_payment_methods(rt, a.customer_id)

    class PmRef(Args):
        payment_method_id: str = Field(pattern=r"^PM-\d{6,}$", description="e.g. PM-000012")

    @add("payment_method_get", "One card on file.", PmRef, ops=("ops.payment.get_payment_method",))
    async def _(a, key):
        return await payment.get_payment_method(rt, a.payment_method_id)

    @add(
        "payment_method_default",
        "The card a customer's charges go to now (none: charges are refused).",
        CustomerRef,
        ops=("ops.payment.default_payment_method",),
    )
    async def _(a, key):
        return await payment.default_payment_method(rt, a.customer_id) or {"default": None}

    async def plan_pm(verb: str, a) -> str:
        pm = await payment.get_payment_method(rt, a.payment_method_id)
        return f"{verb} {pm.brand} •••• {pm.last4} (expires {pm.exp_month:02d}/{pm.exp_year}) of {pm.customer_id}."

    async def plan_pm_remove(a):
        return _sentences(
            await plan_pm("Remove the card", a), "Renewals and top-ups cannot charge it any more."
        )

    async def plan_pm_default(a):
        return _sentences(
            await plan_pm("Make the default card", a), "Renewals and top-ups are charged to it from now on."
        )

    @add(
        "payment_method_remove",
        "Remove a card on file. Proposes; the person confirms.",
        PmRef,
        kind="act",
        plan=plan_pm_remove,
        ops=("ops.payment.remove_payment_method",),
    )
    async def _(a, key):
        return await payment.remove_payment_method(rt, ctx, a.payment_method_id)

    @add(
        "payment_method_set_default",
        "Make a card the default for charges. Proposes; the person confirms.",
        PmRef,
        kind="act",
        plan=plan_pm_default,
        ops=("ops.payment.set_default",),
    )
    async def _(a, key):
        return await payment.set_default(rt, ctx, a.payment_method_id)

    # ------------------------------------------------------------------ catalogue
    @add(
        "catalog_plans",
        "The plans a customer can buy now, each with its price and allowances.",
        ops=("ops.catalog.sellable_offerings",),
    )
    async def _(a, key):
        return await catalog.sellable_offerings(rt)

    @add(
        "catalog_all_plans",
        "Every plan, retired ones too, with all their price rows and windows.",
        ops=("ops.cockpit.all_offerings",),
    )
    async def _(a, key):
        return await cockpit.all_offerings(rt)

    @add(
        "catalog_plan_get",
        "One plan: prices (the winning one now), allowances.",
        OfferingRef,
        ops=("ops.catalog.offering_details",),
    )
    async def _(a, key):
        return await catalog.offering_details(rt, a.offering_id)

    @add(
        "catalog_top_ups",
        "The top-ups (VAS) a line can buy, with prices and allowances.",
        ops=("ops.catalog.list_vas",),
    )
    async def _(a, key):
        return await catalog.list_vas(rt)

    @add("catalog_top_up_get", "One top-up (VAS).", VasRef, ops=("ops.catalog.get_vas",))
    async def _(a, key):
        return await catalog.get_vas(rt, a.vas_id)

    class NewOffering(Args):
        offering_id: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,39}$", description="e.g. PLAN_XL")
        name: str = Field(min_length=1, max_length=100)
        amount: Decimal = Field(
            gt=0, max_digits=10, decimal_places=2, description="SGD per 30 days, tax inclusive."
        )
        allowances: dict[Literal["data", "voice", "sms", "data_roaming"], int] = Field(
            description="Quantities per period: data and data_roaming in MB, voice in minutes, sms in count; -1 = unlimited."
        )
        description: str | None = Field(None, max_length=500)
        valid_from: datetime | None = None
        valid_to: datetime | None = None

    async def plan_offering(a):
        return _plan_text(
            await workbench.add_offering_plan(
                rt,
                offering_id=a.offering_id,
                name=a.name,
                amount=a.amount,
                allowances=dict(a.allowances),
                price_id=None,
                valid_from=a.valid_from,
                valid_to=a.valid_to,
            )
        )

    @add(
        "catalog_add_plan",
        "Add a plan with its price and allowances. Proposes; the person confirms.",
        NewOffering,
        kind="act",
        min_role="admin",
        plan=plan_offering,
        ops=("ops.catalog.add_offering", "ops.workbench.add_offering_plan"),
    )
    async def _(a, key):
        return await catalog.add_offering(rt, ctx, **a.model_dump())

    class NewPrice(OfferingRef):
        price_id: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,39}$")
        amount: Decimal = Field(gt=0, max_digits=10, decimal_places=2)
        valid_from: datetime | None = None
        valid_to: datetime | None = None

    async def plan_price(a):
        return _plan_text(
            await workbench.add_price_plan(rt, a.offering_id, a.price_id, a.amount, a.valid_from, a.valid_to)
        )

    @add(
        "catalog_add_price",
        "Add a price row (with its validity window) to a plan. Proposes; the person confirms.",
        NewPrice,
        kind="act",
        min_role="admin",
        plan=plan_price,
        ops=("ops.catalog.add_price", "ops.workbench.add_price_plan"),
    )
    async def _(a, key):
        return await catalog.add_price(rt, ctx, a.offering_id, a.price_id, a.amount, a.valid_from, a.valid_to)

    async def plan_retire(a):
        return _plan_text(await workbench.retire_plan(rt, a.offering_id))

    @add(
        "catalog_retire_plan",
        "Retire a plan (no new sales). Proposes; the person confirms.",
        OfferingRef,
        kind="act",
        min_role="admin",
        plan=plan_retire,
        ops=("ops.catalog.retire_offering", "ops.workbench.retire_plan"),
    )
    async def _(a, key):
        return await catalog.retire_offering(rt, ctx, a.offering_id)

    class Migrate(OfferingRef):
        new_price_id: str = Field(max_length=40)
        notice_days: int = Field(30, ge=0, le=365)

    async def plan_migrate(a):
        await catalog.offering_details(rt, a.offering_id)
        return f"Move every live line of {a.offering_id} to price {a.new_price_id} from its first renewal after {a.notice_days} days' notice; each customer is told."

    @add(
        "catalog_migrate_price",
        "Move every live line of a plan to a new price after a notice period. Proposes; the person confirms.",
        Migrate,
        kind="act",
        min_role="admin",
        plan=plan_migrate,
        ops=("ops.subscriptions.migrate_price",),
    )
    async def _(a, key):
        return {
            "linesMigrating": await subscriptions.migrate_price(
                rt, ctx, a.offering_id, a.new_price_id, a.notice_days
            )
        }

    # ------------------------------------------------------------------ promotions
    class PromoList(Page):
        state: Literal["active", "exhausted"] | None = None

    @add("promo_list", "Promotions (codes, discounts, state).", PromoList, ops=("ops.promotions.listing",))
    async def _(a, key):
        rows, total = await promotions.listing(rt, state=a.state, offset=a.offset, limit=a.limit)
        return {"total": total, "items": rows}

    @add(
        "promo_get",
        "One promotion: its terms, uses and eligible customers.",
        PromoRef,
        ops=("ops.promotions.show",),
    )
    async def _(a, key):
        return await promotions.show(rt, a.code)

    class NewPromo(Args):
        code: str = Field(min_length=3, max_length=40)
        name: str = Field(min_length=1, max_length=100)
        discount_type: Literal["percent", "absolute"]
        discount_value: Decimal = Field(gt=0, max_digits=10, decimal_places=2)
        periods: int | None = Field(
            None, ge=1, le=36, description="How many periods it discounts; none = the first only."
        )
        code_kind: Literal["single_use_shared", "multi_use", "single_use_per_customer"]
        max_uses: int | None = Field(None, ge=1)
        valid_from: datetime | None = None
        valid_to: datetime | None = None
        eligible_customer_ids: list[str] | None = Field(None, max_length=100)

    async def plan_promo(a):
        from ops.promotions import NewPromotion

        return _plan_text(await workbench.promotion_create_plan(rt, NewPromotion(**a.model_dump())))

    @add(
        "promo_create",
        "Create a promotion code. Proposes; the person confirms.",
        NewPromo,
        kind="act",
        min_role="admin",
        plan=plan_promo,
        ops=("ops.promotions.create", "ops.workbench.promotion_create_plan"),
    )
    async def _(a, key):
        from ops.promotions import NewPromotion

        return await promotions.create(rt, ctx, NewPromotion(**a.model_dump()))

    class PromoCustomer(PromoRef):
        customer_id: str = _customer()

    async def plan_assign(a):
        await promotions.show(rt, a.code)
        return f"Make {a.customer_id} eligible for promo {a.code}."

    async def plan_unassign(a):
        await promotions.show(rt, a.code)
        return f"Remove {a.customer_id} from the customers eligible for promo {a.code}."

    async def plan_exhaust(a):
        return _plan_text(await workbench.promotion_exhaust_plan(rt, a.code))

    @add(
        "promo_assign",
        "Make a customer eligible for a targeted promo. Proposes; the person confirms.",
        PromoCustomer,
        kind="act",
        min_role="admin",
        plan=plan_assign,
        ops=("ops.promotions.assign",),
    )
    async def _(a, key):
        return await promotions.assign(rt, ctx, a.code, a.customer_id)

    @add(
        "promo_unassign",
        "Remove a customer from a targeted promo. Proposes; the person confirms.",
        PromoCustomer,
        kind="act",
        min_role="admin",
        plan=plan_unassign,
        ops=("ops.promotions.unassign",),
    )
    async def _(a, key):
        return await promotions.unassign(rt, ctx, a.code, a.customer_id)

    @add(
        "promo_exhaust",
        "End a promotion now. Proposes; the person confirms.",
        PromoRef,
        kind="act",
        min_role="admin",
        plan=plan_exhaust,
        ops=("ops.promotions.exhaust", "ops.workbench.promotion_exhaust_plan"),
    )
    async def _(a, key):
        return await promotions.exhaust(rt, ctx, a.code)

    # ------------------------------------------------------------------ orders
    class OrderList(Page):
        customer_id: str | None = _customer("Only this customer's orders.")
        state: Literal["acknowledged", "in_progress", "completed", "failed", "cancelled"] | None = None

    @add(
        "order_list",
        "Product orders, newest first, by customer and/or state.",
        OrderList,
        ops=("ops.orders.list_orders",),
    )
    async def _(a, key):
        rows, total = await orders.list_orders(
            rt, customer_id=a.customer_id, state=a.state, offset=a.offset, limit=a.limit
        )
        return {"total": total, "items": rows}

    @add(
        "order_get",
        "One product order: state, plan, price, number, dates, failure reason.",
        OrderRef,
        ops=("ops.orders.get_order",),
    )
    async def _(a, key):
        return await orders.get_order(rt, a.order_id)

    class NewOrder(CustomerRef):
        offering_id: str = Field(max_length=64, description="The plan to sell.")
        msisdn_preference: str | None = Field(
            None, pattern=MSISDN, description="A number the customer asked for."
        )
        promo_code: str | None = Field(None, max_length=40)

    async def plan_order(a):
        from ops import payment as pay

        d = await catalog.offering_details(rt, a.offering_id)
        await crm.get_customer(rt, a.customer_id)
        card = await pay.default_payment_method(rt, a.customer_id)
        price = d.active_price
        return _sentences(
            f"Order the plan {d.offering.id} “{d.offering.name}” for {a.customer_id}"
            + (f" with the number {a.msisdn_preference}" if a.msisdn_preference else "")
            + (f" and promo {a.promo_code}" if a.promo_code else "")
            + ".",
            f"Charge {price.currency} {price.amount:.2f} (before any promo) to "
            + (f"{card.brand} •••• {card.last4}" if card else "no card on file (the order will fail)")
            + ", then activate a new line with an eSIM."
            if price
            else "That plan has no price on sale now; the order will be refused.",
        )

    @add(
        "order_create",
        "Sell a plan to a customer: a new line, charged to their default card. Proposes; the person confirms.",
        NewOrder,
        kind="act",
        plan=plan_order,
        ops=("ops.orders.create_order",),
    )
    async def _(a, key):
        from ops.orders import OrderRequest

        return await orders.create_order(rt, ctx, OrderRequest(**a.model_dump(), idempotency_key=key))

    class CancelOrder(OrderRef):
        reason: str | None = Field(None, max_length=200)

    async def plan_cancel_order(a):
        o = await orders.get_order(rt, a.order_id)
        return f"Cancel order {o.id} ({o.offering_id} for {o.customer_id}, now {o.state}); refused once provisioning has started. Anything charged is refunded by the order."

    @add(
        "order_cancel",
        "Cancel an order before provisioning starts. Proposes; the person confirms.",
        CancelOrder,
        kind="act",
        plan=plan_cancel_order,
        ops=("ops.orders.cancel_order",),
    )
    async def _(a, key):
        return await orders.cancel_order(rt, ctx, a.order_id, a.reason)

    @add(
        "order_trace",
        "The timeline of an order's saga (every step, retry and error, from Temporal).",
        OrderRef,
        ops=("ops.trace.order_trace",),
    )
    async def _(a, key):
        return await trace.order_trace(rt, a.order_id)

    # ------------------------------------------------------------------ stuck work
    @add(
        "order_queue",
        "Orders still running, stuck ones first, with the stuck task or waiting ticket.",
        ops=("ops.cockpit.order_queue",),
    )
    async def _(a, key):
        return (await cockpit.order_queue(rt))[:LIST_MAX]

    @add(
        "stuck_work",
        "What is stuck in one order right now: the task or the ticket to retry or resolve.",
        OrderRef,
        ops=("ops.cockpit.stuck_work",),
    )
    async def _(a, key):
        return await cockpit.stuck_work(rt, a.order_id)

    @add(
        "stuck_orders",
        "Workflows flagged stuck (BssStuck) in Temporal, with their stuck tasks and tickets.",
        ops=("ops.som.stuck_orders_with_tasks", "ops.orders.stuck_orders"),
    )
    async def _(a, key):
        return await som.stuck_orders_with_tasks(rt)

    class Decide(OrderRef):
        action: Literal["retry", "resolve"]
        note: str = Field("", max_length=1000, description="What was done by hand (required to resolve).")

    async def plan_decide(a):
        row = await cockpit.stuck_work(rt, a.order_id)
        what = f"task {row.task_id} ({row.task_type})" if row.task_id else f"ticket {row.ticket_id}"
        if a.action == "retry":
            return f"Retry the stuck {what} of order {a.order_id} now ({row.reason})."
        return f"Mark the stuck {what} of order {a.order_id} as done by hand (note: {a.note or '—'}); the order carries on as if it had succeeded."

    @add(
        "stuck_order_decide",
        "Retry or resolve (done by hand, with a note) an order's stuck work. Proposes; the person confirms.",
        Decide,
        kind="act",
        min_role="supervisor",
        plan=plan_decide,
        ops=("ops.cockpit.decide_stuck",),
    )
    async def _(a, key):
        return await cockpit.decide_stuck(rt, ctx, a.order_id, a.action, a.note)

    class TaskResolve(TaskRef):
        note: str = Field(min_length=3, max_length=1000)

    async def plan_task(a, verb):
        task, _wf = await orders._task_workflow(rt, a.task_id)
        return (
            f"{verb} provisioning task {task.id} ({task.task_type}, now {task.state})"
            + (f"; note: {a.note}" if getattr(a, "note", None) else "")
            + "."
        )

    async def plan_task_resolve(a):
        return await plan_task(a, "Mark as done by hand")

    async def plan_task_retry(a):
        return await plan_task(a, "Retry")

    @add(
        "task_resolve",
        "Mark a stuck provisioning task as done by hand. Proposes; the person confirms.",
        TaskResolve,
        kind="act",
        min_role="supervisor",
        plan=plan_task_resolve,
        ops=("ops.orders.resolve_task",),
    )
    async def _(a, key):
        return await orders.resolve_task(rt, ctx, a.task_id, a.note)

    @add(
        "task_retry",
        "Retry a stuck provisioning task. Proposes; the person confirms.",
        TaskRef,
        kind="act",
        min_role="supervisor",
        plan=plan_task_retry,
        ops=("ops.orders.retry_task",),
    )
    async def _(a, key):
        return await orders.retry_task(rt, ctx, a.task_id)

    class WaitingList(Args):
        state: Literal["open", "resolved", "closed", "cancelled"] | None = "open"

    @add(
        "waiting_tickets",
        "Tickets a workflow waits on (a renewal that cannot be charged, a refund refused…).",
        WaitingList,
        ops=("ops.attention.waiting_tickets",),
    )
    async def _(a, key):
        return (await attention.waiting_tickets(rt, state=a.state))[:LIST_MAX]

    class TicketDecide(TicketRef):
        action: Literal["retry", "resolve"]
        note: str = Field("", max_length=1000)

    async def plan_ticket_decide(a):
        task = await workbench.stuck_task_of(rt, a.ticket_id)
        if task is None:  # a workflow waits on the ticket: the cockpit's own confirm step
            return _plan_text(await workbench.ticket_plan(rt, a.ticket_id, a.action, a.note))
        if a.action == "retry":
            return f"Retry the stuck provisioning task {task.id} ({task.task_type}) behind ticket {a.ticket_id} now."
        if not a.note.strip():
            raise PolicyViolation(
                "provisioning.resolve_stuck.requires_note", "Say what was done: a note is required."
            )
        return _sentences(
            f"Mark the stuck provisioning task {task.id} ({task.task_type}) behind ticket {a.ticket_id} as done by hand.",
            f"Note: {a.note.strip()}",
            "The order carries on as if the step had succeeded.",
        )

    @add(
        "ticket_decide",
        "Answer what a ticket stands for: retry the stuck task or waiting workflow step behind it, "
        "or mark it resolved by hand (with a note). Proposes; the person confirms.",
        TicketDecide,
        kind="act",
        min_role="supervisor",
        plan=plan_ticket_decide,
        ops=(
            "ops.workbench.answer_ticket",
            "ops.workbench.stuck_task_of",
            "ops.workbench.ticket_plan",
            "ops.cockpit.work_ticket",
            "ops.attention.decide",
            "ops.attention.get_ticket",
        ),
    )
    async def _(a, key):
        return await workbench.answer_ticket(rt, ctx, a.ticket_id, a.action, a.note)

    # ------------------------------------------------------------------ lines
    @add(
        "line_status",
        "A line: state (active, blocked and why, terminated), plan, price, period end, balances left "
        "per allowance, pending plan change or price migration, running day passes.",
        LineRef,
        ops=("ops.subscriptions.status",),
    )
    async def _(a, key):
        return await subscriptions.status(rt, a.line_id)

    class TopUp(LineRef):
        vas_id: str = Field(max_length=64, description="The top-up to buy (catalog_top_ups).")

    async def plan_topup(a):
        return await _line_plan(rt, a.line_id, "topup", {"vas": a.vas_id})

    @add(
        "line_top_up",
        "Buy a top-up (VAS) for a line, charged to the customer's default card; a data top-up brings "
        "back a line blocked because its data ran out. Proposes; the person confirms.",
        TopUp,
        kind="act",
        plan=plan_topup,
        ops=("ops.subscriptions.purchase_vas", "ops.cockpit.line_action_plan"),
    )
    async def _(a, key):
        return await subscriptions.purchase_vas(rt, ctx, a.line_id, a.vas_id, idempotency_key=key)

    async def plan_renew(a):
        return await _line_plan(rt, a.line_id, "renew", {})

    @add(
        "line_renew",
        "Charge the next period now and start it (unblocks a blocked line). Proposes; the person confirms.",
        LineRef,
        kind="act",
        plan=plan_renew,
        ops=("ops.subscriptions.renew_now",),
    )
    async def _(a, key):
        return await subscriptions.renew_now(rt, ctx, a.line_id, idempotency_key=key)

    class PlanChange(LineRef):
        offering_id: str = Field(max_length=64, description="The plan to move to at the next renewal.")

    async def plan_plan_change(a):
        return await _line_plan(rt, a.line_id, "plan_change", {"offering": a.offering_id})

    @add(
        "line_change_plan",
        "Move a line to another plan at its next renewal (nothing charged now). Proposes; the person confirms.",
        PlanChange,
        kind="act",
        plan=plan_plan_change,
        ops=("ops.subscriptions.schedule_plan_change",),
    )
    async def _(a, key):
        return await subscriptions.schedule_plan_change(rt, ctx, a.line_id, a.offering_id)

    async def plan_cancel_change(a):
        return await _line_plan(rt, a.line_id, "cancel_plan_change", {})

    @add(
        "line_cancel_plan_change",
        "Cancel a line's pending plan change. Proposes; the person confirms.",
        LineRef,
        kind="act",
        plan=plan_cancel_change,
        ops=("ops.subscriptions.cancel_plan_change",),
    )
    async def _(a, key):
        return await subscriptions.cancel_plan_change(rt, ctx, a.line_id)

    class Terminate(LineRef):
        reason: str = Field("", max_length=200)

    async def plan_terminate(a):
        return await _line_plan(rt, a.line_id, "terminate", {"reason": a.reason})

    @add(
        "line_terminate",
        "End a line for good (number to quarantine, eSIM back to the pool, nothing refunded). Proposes; the person confirms.",
        Terminate,
        kind="act",
        min_role="supervisor",
        plan=plan_terminate,
        ops=("ops.subscriptions.terminate",),
    )
    async def _(a, key):
        return await subscriptions.terminate(rt, ctx, a.line_id, a.reason or None)

    @add(
        "line_trace",
        "The life of a line: the saga that sold it, then every renewal, block and top-up (from Temporal).",
        LineRef,
        ops=("ops.trace.subscription_trace",),
    )
    async def _(a, key):
        return await trace.subscription_trace(rt, a.line_id)

    # ------------------------------------------------------------------ usage and balances
    class UsageList(Page):
        line_id: str | None = _line("Only this line's usage.")
        msisdn: str | None = Field(None, pattern=MSISDN)
        usage_type: Literal["data", "voice", "sms", "data_roaming"] | None = None

    @add(
        "usage_list",
        "Rated usage events (data, voice, sms), newest first, by line or number.",
        UsageList,
        ops=("ops.usage.list_usage",),
    )
    async def _(a, key):
        total, rows = await usage.list_usage(
            rt,
            msisdn=a.msisdn,
            subscription_id=a.line_id,
            usage_type=a.usage_type,
            offset=a.offset,
            limit=a.limit,
        )
        return {"total": total, "items": rows}

    class UsageRef(Args):
        event_id: str = Field(max_length=40, description="e.g. UE-000123")

    @add("usage_get", "One rated usage event.", UsageRef, ops=("ops.usage.get_usage",))
    async def _(a, key):
        return await usage.get_usage(rt, a.event_id)

    class Buckets(Page):
        line_id: str | None = _line("Only this line's balances.")
        customer_id: str | None = _customer("Only this customer's balances.")
        msisdn: str | None = Field(None, pattern=MSISDN)

    @add(
        "balance_list",
        "Balance buckets (allowance left per line and type).",
        Buckets,
        ops=("ops.usage.list_buckets",),
    )
    async def _(a, key):
        total, rows = await usage.list_buckets(
            rt,
            subscription_id=a.line_id,
            customer_id=a.customer_id,
            msisdn=a.msisdn,
            offset=a.offset,
            limit=a.limit,
        )
        return {"total": total, "items": rows}

    class BucketRef(Args):
        bucket_id: str = Field(max_length=60)

    @add("balance_get", "One balance bucket.", BucketRef, ops=("ops.usage.get_bucket",))
    async def _(a, key):
        return await usage.get_bucket(rt, a.bucket_id)

    class Consumption(Args):
        line_id: str | None = _line()
        msisdn: str | None = Field(None, pattern=MSISDN)

    @add(
        "usage_consumption",
        "A line's balances and what was used since its period started.",
        Consumption,
        ops=("ops.usage.usage_consumption",),
    )
    async def _(a, key):
        return await usage.usage_consumption(rt, subscription_id=a.line_id, msisdn=a.msisdn)

    # ------------------------------------------------------------------ inventory
    class Resources(Page):
        type: Literal["msisdn", "esim"] | None = None
        status: str | None = Field(
            None, max_length=20, description="available, held, reserved, assigned, quarantine…"
        )
        prefix: str | None = Field(None, max_length=19)

    @add(
        "inventory_list",
        "Numbers (MSISDN) and eSIM profiles in the pools, by status or prefix.",
        Resources,
        ops=("ops.inventory.list_resources",),
    )
    async def _(a, key):
        page = await inventory.list_resources(
            rt,
            types=(a.type,) if a.type else ("msisdn", "esim"),
            status=a.status,
            prefix=a.prefix,
            offset=a.offset,
            limit=a.limit,
        )
        return {"total": page.total, "items": page.items}

    class ResourceRef(Args):
        resource_id: str = Field(max_length=20, description="An MSISDN or an ICCID.")

    @add(
        "inventory_get",
        "One number or eSIM profile by MSISDN or ICCID.",
        ResourceRef,
        ops=("ops.inventory.get_resource",),
    )
    async def _(a, key):
        return await inventory.get_resource(rt, a.resource_id)

    class IccidRef(Args):
        iccid: str = Field(pattern=ICCID)

    @add("esim_get", "One eSIM profile from the inventory.", IccidRef, ops=("ops.inventory.get_esim",))
    async def _(a, key):
        return await inventory.get_esim(rt, a.iccid)

    @add(
        "esim_status",
        "An eSIM's live state (prepared, downloaded, installed) and its activation code.",
        IccidRef,
        ops=("ops.som.esim_status",),
    )
    async def _(a, key):
        return await som.esim_status(rt, a.iccid)

    @add(
        "inventory_counts",
        "How many numbers and eSIM profiles are in each state.",
        ops=("ops.inventory.pool_counts",),
    )
    async def _(a, key):
        return await inventory.pool_counts(rt)

    class MsisdnRef(Args):
        msisdn: str = Field(pattern=MSISDN)

    @add(
        "number_hold_get",
        "A number held for a signup: by whom, until when.",
        MsisdnRef,
        ops=("ops.inventory.get_hold",),
    )
    async def _(a, key):
        return await inventory.get_hold(rt, a.msisdn)

    class Hold(Args):
        msisdn: str | None = Field(
            None, pattern=MSISDN, description="A number to hold; none = any available."
        )
        customer_id: str | None = _customer("The customer it is held for, if known.")

    async def plan_hold(a):
        return (
            f"Hold {a.msisdn or 'an available number'} for 24 hours for a signup"
            + (f" of {a.customer_id}" if a.customer_id else "")
            + "; nobody else can take it meanwhile."
        )

    @add(
        "number_hold",
        "Hold a number 24 h for a signup. Proposes; the person confirms.",
        Hold,
        kind="act",
        plan=plan_hold,
        ops=("ops.inventory.hold_number",),
    )
    async def _(a, key):
        return await inventory.hold_number(rt, ctx, msisdn=a.msisdn, customer_id=a.customer_id)

    async def plan_cancel_hold(a):
        h = await inventory.get_hold(rt, a.msisdn)
        return f"Give back {h.msisdn} (held by {h.hold_ref} until {h.expires_at}) to the pool now."

    @add(
        "number_hold_cancel",
        "Give a signup's held number back now. Proposes; the person confirms.",
        MsisdnRef,
        kind="act",
        plan=plan_cancel_hold,
        ops=("ops.inventory.cancel_hold",),
    )
    async def _(a, key):
        return await inventory.cancel_hold(rt, ctx, a.msisdn)

    async def plan_rearm(a):
        p = await inventory.get_esim(rt, a.iccid)
        return f"Re-arm eSIM {p.iccid} of line {p.assigned_to_subscription_id} ({p.assigned_msisdn}) for a new device: a new activation code; the old one stops working."

    @add(
        "esim_rearm",
        "Issue a new activation code for a line's eSIM (new device). Proposes; the person confirms.",
        IccidRef,
        kind="act",
        plan=plan_rearm,
        ops=("ops.inventory.rearm_esim",),
    )
    async def _(a, key):
        return await inventory.rearm_esim(rt, ctx, a.iccid)

    class Range(Args):
        prefix: str = Field(pattern=r"^\d{2,12}$")
        count: int = Field(ge=1, le=10_000)

    async def plan_range(a):
        return (
            f"Add {a.count} numbers starting {a.prefix} to the pool as available (existing ones are skipped)."
        )

    @add(
        "inventory_add_numbers",
        "Add a range of numbers to the pool. Proposes; the person confirms.",
        Range,
        kind="act",
        min_role="admin",
        plan=plan_range,
        ops=("ops.inventory.add_msisdn_range",),
    )
    async def _(a, key):
        return {"added": await inventory.add_msisdn_range(rt, ctx, prefix=a.prefix, count=a.count)}

    async def plan_quarantine(a):
        return "Put every quarantined number whose 90 days are over back on sale."

    @add(
        "inventory_release_quarantine",
        "Release quarantined numbers whose time is up. Proposes; the person confirms.",
        kind="act",
        min_role="admin",
        plan=plan_quarantine,
        ops=("ops.inventory.release_expired_quarantine",),
    )
    async def _(a, key):
        return {"released": await inventory.release_expired_quarantine(rt, ctx)}

    class Device(IccidRef):
        event: Literal["downloaded", "installed"]

    async def plan_device(a):
        return f"Report to the eSIM flow of {a.iccid} that the device has {a.event} the profile (as the SM-DP+ would)."

    @add(
        "esim_device_event",
        "Play the device for a test: report an eSIM downloaded or installed. Proposes; the person confirms.",
        Device,
        kind="act",
        min_role="admin",
        plan=plan_device,
        ops=("ops.orders.device_event",),
    )
    async def _(a, key):
        await orders.device_event(rt, ctx, a.iccid, a.event)
        return {"sent": a.event, "iccid": a.iccid}

    # ------------------------------------------------------------------ porting
    class PortList(Page):
        state: str | None = Field(None, max_length=20)
        direction: Literal["port_in", "port_out"] | None = None
        customer_id: str | None = _customer("Only this customer's requests.")
        msisdn: str | None = Field(None, pattern=MSISDN)

    @add(
        "port_list",
        "Port requests (in and out), by state, direction, customer or number.",
        PortList,
        ops=("ops.porting.listing",),
    )
    async def _(a, key):
        total, rows = await porting.listing(
            rt,
            state=a.state,
            direction=a.direction,
            customer_id=a.customer_id,
            msisdn=a.msisdn,
            offset=a.offset,
            limit=a.limit,
        )
        return {"total": total, "items": rows}

    @add("port_get", "One port request.", PortRef, ops=("ops.porting.get",))
    async def _(a, key):
        return await porting.get(rt, a.port_id)

    class NewPort(Args):
        direction: Literal["port_in", "port_out"]
        msisdn: str = Field(pattern=MSISDN)
        requested_port_date: date
        donor_carrier: str | None = Field(None, max_length=60)
        recipient_carrier: str | None = Field(None, max_length=60)
        customer_id: str | None = _customer("Port-in: the customer who gets the line.")
        offering_id: str | None = Field(None, max_length=64, description="Port-in: the plan of the new line.")
        line_id: str | None = _line("Port-out: the line leaving.")

    async def plan_port(a):
        if a.direction == "port_in":
            return f"Open a port-in of {a.msisdn} from {a.donor_carrier or 'the donor'} on {a.requested_port_date} for {a.customer_id} on {a.offering_id}; once approved and completed it becomes a new line (charged like an order)."
        return f"Open a port-out of {a.msisdn} ({a.line_id}) to {a.recipient_carrier or 'the recipient'} on {a.requested_port_date}; when it completes, the line ends."

    @add(
        "port_create",
        "Open a port-in or port-out request. Proposes; the person confirms.",
        NewPort,
        kind="act",
        plan=plan_port,
        ops=("ops.porting.create",),
    )
    async def _(a, key):
        fields = a.model_dump(exclude={"line_id"})
        return await porting.create(rt, ctx, **fields, subscription_id=a.line_id, idempotency_key=key)

    async def plan_port_approve(a):
        return _plan_text(await workbench.port_plan(rt, a.port_id, "approve"))

    class Reject(PortRef):
        reason: str = Field(min_length=3, max_length=200)

    async def plan_port_reject(a):
        return _plan_text(await workbench.port_plan(rt, a.port_id, "reject", a.reason))

    @add(
        "port_approve",
        "Approve a port request. Proposes; the person confirms.",
        PortRef,
        kind="act",
        min_role="supervisor",
        plan=plan_port_approve,
        ops=("ops.porting.approve", "ops.workbench.port_plan"),
    )
    async def _(a, key):
        return await porting.approve(rt, ctx, a.port_id)

    @add(
        "port_reject",
        "Reject a port request with a reason. Proposes; the person confirms.",
        Reject,
        kind="act",
        min_role="supervisor",
        plan=plan_port_reject,
        ops=("ops.porting.reject",),
    )
    async def _(a, key):
        return await porting.reject(rt, ctx, a.port_id, a.reason)

    # ------------------------------------------------------------------ cases
    class CaseList(Page):
        customer_id: str | None = _customer("Only this customer's cases.")
        state: Literal["open", "in_progress", "pending_customer", "resolved", "closed"] | None = None

    @add("case_list", "Cases, by customer and/or state.", CaseList, ops=("ops.crm.list_cases",))
    async def _(a, key):
        return await crm.list_cases(
            rt, customer_id=a.customer_id, state=a.state, offset=a.offset, limit=a.limit
        )

    @add(
        "case_get",
        "One case with its notes and its tickets (state, SLA due, assignee).",
        CaseRef,
        ops=("ops.workbench.case_page", "ops.crm.case_detail"),
    )
    async def _(a, key):
        return await workbench.case_page(rt, a.case_id)

    class Queue(Args):
        view: Literal["all", "mine", "unassigned"] = Field(
            "all", description="mine: assigned to the person (as a support agent), or opened by them."
        )

    @add(
        "case_queue",
        "Open cases by the SLA due time of their most pressing ticket, overdue first.",
        Queue,
        ops=("ops.workbench.case_queue", "ops.workbench.agent_of"),
    )
    async def _(a, key):
        agent = await workbench.agent_of(rt, ctx.actor)
        return await workbench.case_queue(
            rt, view=a.view, agent_id=agent.id if agent else None, actor=ctx.actor, limit=LIST_MAX
        )

    class NewCase(CustomerRef):
        subject: str = Field(min_length=3, max_length=200)
        description: str = Field("", max_length=2000)
        priority: Literal["low", "normal", "medium", "high", "critical"] = "normal"
        category: Literal["account", "billing", "technical", "information", "complaint", "other"] = "other"

    @add(
        "case_open", "Open a support case for a customer.", NewCase, kind="write", ops=("ops.crm.open_case",)
    )
    async def _(a, key):
        detail, _replayed = await crm.open_case(rt, ctx, **a.model_dump(), idempotency_key=key)
        return detail

    class CaseNote(CaseRef):
        text: str = Field(min_length=1, max_length=2000)

    @add("case_note", "Add an internal note to a case.", CaseNote, kind="write", ops=("ops.crm.note_case",))
    async def _(a, key):
        return await crm.note_case(rt, ctx, a.case_id, a.text)

    class CaseUpdate(CaseRef):
        priority: Literal["low", "normal", "medium", "high", "critical"] | None = None
        subject: str | None = Field(None, max_length=200)

    @add(
        "case_update",
        "Change a case's priority or subject.",
        CaseUpdate,
        kind="write",
        ops=("ops.crm.update_case",),
    )
    async def _(a, key):
        return await crm.update_case(
            rt,
            ctx,
            a.case_id,
            **{k: v for k, v in a.model_dump(exclude={"case_id"}).items() if v is not None},
        )

    class CaseMove(CaseRef):
        trigger: Literal["take", "await_customer", "resume", "resolve"]
        note: str | None = Field(None, max_length=1000)

    @add(
        "case_transition",
        "Move a case on: take, await_customer, resume, resolve (closing or cancelling is case_close).",
        CaseMove,
        kind="write",
        ops=("ops.crm.transition_case",),
    )
    async def _(a, key):
        return await crm.transition_case(rt, ctx, a.case_id, a.trigger, a.note)

    class CaseClose(CaseRef):
        resolution_code: str = Field(
            min_length=2,
            max_length=40,
            description="e.g. resolved, no_fault_found, duplicate, customer_withdrew",
        )
        note: str | None = Field(None, max_length=1000)

    async def plan_case_close(a):
        return _plan_text(await workbench.case_close_plan(rt, a.case_id, a.resolution_code, a.note or ""))

    @add(
        "case_close",
        "Close a case with a resolution code. Proposes; the person confirms.",
        CaseClose,
        kind="act",
        plan=plan_case_close,
        ops=("ops.crm.close_case", "ops.workbench.case_close_plan"),
    )
    async def _(a, key):
        return await crm.close_case(rt, ctx, a.case_id, a.resolution_code, a.note)

    # ------------------------------------------------------------------ tickets
    class TicketList(Page):
        state: str | None = Field(
            "open",
            max_length=20,
            description="open (any open state), resolved, closed, cancelled; none = all",
        )
        customer_id: str | None = _customer("Only this customer's tickets.")
        case_id: str | None = Field(None, pattern=CASE)
        priority: Literal["low", "normal", "high", "urgent"] | None = None

    @add(
        "ticket_list",
        "Trouble tickets, newest first, by state, customer, case or priority.",
        TicketList,
        ops=("ops.crm.list_tickets",),
    )
    async def _(a, key):
        filters = {k: v for k, v in a.model_dump(exclude={"offset", "limit"}).items() if v is not None}
        rows, total = await crm.list_tickets(rt, offset=a.offset, limit=a.limit, **filters)
        return {"total": total, "items": rows}

    @add(
        "ticket_queue",
        "Open tickets by SLA due time, overdue first (all, mine, or unassigned).",
        Queue,
        ops=("ops.workbench.ticket_queue", "ops.workbench.agent_of"),
    )
    async def _(a, key):
        agent = await workbench.agent_of(rt, ctx.actor)
        return await workbench.ticket_queue(
            rt, view=a.view, agent_id=agent.id if agent else None, limit=LIST_MAX
        )

    @add(
        "ticket_get",
        "One ticket with its notes, state history, SLA due time, assignee and case.",
        TicketRef,
        ops=("ops.workbench.ticket_page",),
    )
    async def _(a, key):
        return await workbench.ticket_page(rt, a.ticket_id)

    class Agents(Args):
        role: Literal["csr", "supervisor"] | None = None

    @add(
        "agent_list",
        "Support agents, to pick one to assign a ticket to.",
        Agents,
        ops=("ops.crm.list_agents",),
    )
    async def _(a, key):
        return await crm.list_agents(rt, a.role)

    class NewTicket(Args):
        ticket_type: Literal[
            "information_request",
            "service_outage",
            "billing_dispute",
            "configuration",
            "provisioning_exception",
            "payment_exception",
        ]
        subject: str = Field(min_length=3, max_length=200)
        description: str = Field(min_length=1, max_length=2000)
        customer_id: str | None = _customer("The customer concerned.")
        case_id: str | None = Field(None, pattern=CASE)
        related_order_id: str | None = Field(None, pattern=ORD)
        priority: Literal["low", "normal", "high", "urgent"] = "normal"

    @add(
        "ticket_open",
        "Open a trouble ticket (its SLA timer starts).",
        NewTicket,
        kind="write",
        ops=("ops.crm.open_ticket",),
    )
    async def _(a, key):
        detail, _replayed = await crm.open_ticket(
            rt, ctx, idempotency_key=key, **{k: v for k, v in a.model_dump().items() if v is not None}
        )
        return detail

    class TicketChange(TicketRef):
        note: str | None = Field(None, max_length=2000, description="A note to add.")
        agent_id: str | None = Field(None, max_length=20, description="Assign to this agent (agent_list).")
        priority: Literal["low", "normal", "high", "urgent"] | None = None
        trigger: Literal["ack", "start", "wait", "resume", "reopen"] | None = Field(
            None, description="Move the ticket on (resolve, close and cancel are separate tools)."
        )

    @add(
        "ticket_update",
        "Add a note, assign, change priority or move a ticket on (ack, start, wait, resume, reopen).",
        TicketChange,
        kind="write",
        ops=("ops.crm.change_ticket",),
    )
    async def _(a, key):
        return await crm.change_ticket(
            rt,
            ctx,
            a.ticket_id,
            notes=[a.note] if a.note else [],
            agent_id=a.agent_id,
            priority=a.priority,
            trigger=a.trigger,
        )

    class TicketNote(TicketRef):
        text: str = Field(min_length=1, max_length=1000)

    @add(
        "ticket_note",
        "Add a note to a ticket (as the cockpit's workbench does).",
        TicketNote,
        kind="write",
        ops=("ops.cockpit.work_ticket",),
    )
    async def _(a, key):
        return await cockpit.work_ticket(rt, ctx, a.ticket_id, "note", a.text)

    class TicketEnd(TicketRef):
        action: Literal["resolve", "close", "cancel"]
        notes: str = Field(
            "", max_length=1000, description="Resolution notes (required to resolve) or the reason to cancel."
        )

    async def plan_ticket_end(a):
        if a.action == "close":  # the cockpit's own confirm step
            return _plan_text(await workbench.ticket_plan(rt, a.ticket_id, "close", a.notes))
        d = await crm.ticket_detail(rt, a.ticket_id)
        t = d.ticket
        tail = (
            " Its waiting workflow is told and carries on."
            if t.waiting_workflow_id and a.action == "resolve"
            else ""
        )
        return (
            f"{a.action.capitalize()} ticket {t.id} “{t.subject}” (now {t.state})"
            + (f": {a.notes}" if a.notes else "")
            + "."
            + tail
        )

    @add(
        "ticket_finish",
        "Resolve (with notes), close or cancel a ticket. Proposes; the person confirms.",
        TicketEnd,
        kind="act",
        plan=plan_ticket_end,
        ops=(
            "ops.crm.change_ticket",
            "ops.cockpit.work_ticket",
            "ops.crm.ticket_detail",
            "ops.workbench.ticket_plan",
        ),
    )
    async def _(a, key):
        if a.action == "cancel":
            return await crm.change_ticket(rt, ctx, a.ticket_id, trigger="cancel", reason=a.notes or None)
        return await cockpit.work_ticket(rt, ctx, a.ticket_id, a.action, a.notes)

    # ------------------------------------------------------------------ home, faults, clock, operators
    @add(
        "today",
        "Today's figures: orders completed and failed, revenue, orders stuck, lines active and blocked, tickets past SLA.",
        ops=("ops.cockpit.today_figures",),
    )
    async def _(a, key):
        return await cockpit.today_figures(rt)

    class Hours(Args):
        hours: int = Field(12, ge=1, le=72)

    @add(
        "orders_by_hour",
        "Orders completed and failed per hour over the last hours.",
        Hours,
        ops=("ops.cockpit.orders_by_hour",),
    )
    async def _(a, key):
        return await cockpit.orders_by_hour(rt, a.hours)

    @add(
        "fault_rules",
        "The network fault-injection rules (for rehearsals).",
        ops=("ops.provisioning.fault_rules",),
    )
    async def _(a, key):
        return await provisioning.fault_rules(rt)

    class Fault(Args):
        task_type: str = Field(max_length=40, description="e.g. HLR_PROVISION")
        fault_type: str = Field(max_length=40, description="e.g. fail_always, fail_first_attempt, stuck")
        probability: float = Field(1.0, ge=0, le=1)
        enabled: bool = True

    async def plan_fault(a):
        return f"{'Enable' if a.enabled else 'Disable'} fault {a.fault_type} on {a.task_type} with probability {a.probability:g}: real orders hit it."

    @add(
        "fault_set",
        "Switch a network fault on or off for rehearsals. Proposes; the person confirms.",
        Fault,
        kind="act",
        min_role="admin",
        plan=plan_fault,
        ops=("ops.provisioning.set_fault",),
    )
    async def _(a, key):
        rule, _created = await provisioning.set_fault(rt, ctx, **a.model_dump())
        return rule

    class FaultChange(Args):
        rule_id: str = Field(max_length=40)
        enabled: bool | None = None
        probability: float | None = Field(None, ge=0, le=1)

    async def plan_fault_change(a):
        return (
            f"Change fault rule {a.rule_id}: "
            + ", ".join(f"{k}={v}" for k, v in a.model_dump(exclude={"rule_id"}).items() if v is not None)
            + "."
        )

    @add(
        "fault_change",
        "Change a fault rule by id. Proposes; the person confirms.",
        FaultChange,
        kind="act",
        min_role="admin",
        plan=plan_fault_change,
        ops=("ops.provisioning.change_fault_rule",),
    )
    async def _(a, key):
        return await provisioning.change_fault_rule(
            rt, ctx, a.rule_id, enabled=a.enabled, probability=a.probability
        )

    @add("clock_now", "The business clock: now, frozen or not (test stacks can move it).", ops=())
    async def _(a, key):
        return clock.read(rt)

    class Advance(Args):
        duration: str = Field(pattern=r"^[0-9A-Za-z.]{2,20}$", description="e.g. 30d, 25h, 90m, PT1H")

    async def plan_advance(a):
        return f"Move the business clock of this test stack forward by {a.duration}: renewals, day passes and SLA timers due in that time happen now."

    @add(
        "clock_advance",
        "Test stacks only: move business time forward. Proposes; the person confirms.",
        Advance,
        kind="act",
        min_role="admin",
        plan=plan_advance,
        ops=("ops.clock.advance",),
    )
    async def _(a, key):
        return await clock.advance(rt, ctx, a.duration)

    async def plan_freeze(a):
        return "Freeze the business clock of this test stack now."

    async def plan_unfreeze(a):
        return "Let the business clock of this test stack run again."

    @add(
        "clock_freeze",
        "Test stacks only: stop business time. Proposes; the person confirms.",
        kind="act",
        min_role="admin",
        plan=plan_freeze,
        ops=("ops.clock.freeze",),
    )
    async def _(a, key):
        return await clock.freeze(rt, ctx)

    @add(
        "clock_unfreeze",
        "Test stacks only: let business time run again. Proposes; the person confirms.",
        kind="act",
        min_role="admin",
        plan=plan_unfreeze,
        ops=("ops.clock.unfreeze",),
    )
    async def _(a, key):
        return await clock.unfreeze(rt, ctx)

    @add(
        "operator_list",
        "Cockpit operator accounts (email, role, enabled).",
        min_role="admin",
        ops=("ops.staff.list_operators",),
    )
    async def _(a, key):
        return await staff.list_operators(rt)

    class OperatorRef(Args):
        operator: str = Field(max_length=254, description="The operator's id or email.")

    @add(
        "operator_get",
        "One cockpit operator account, by its id.",
        OperatorRef,
        min_role="admin",
        ops=("ops.staff.get_operator",),
    )
    async def _(a, key):
        return await staff.get_operator(rt, a.operator)

    async def plan_disable(a):
        return f"Disable the cockpit account {a.operator}: signed out now, cannot sign in until enabled."

    async def plan_enable(a):
        return f"Enable the cockpit account {a.operator} again."

    @add(
        "operator_disable",
        "Disable a cockpit account. Proposes; the person confirms.",
        OperatorRef,
        kind="act",
        min_role="admin",
        plan=plan_disable,
        ops=("ops.staff.disable_operator",),
    )
    async def _(a, key):
        return await staff.disable_operator(rt, ctx, a.operator)

    @add(
        "operator_enable",
        "Enable a disabled cockpit account. Proposes; the person confirms.",
        OperatorRef,
        kind="act",
        min_role="admin",
        plan=plan_enable,
        ops=("ops.staff.enable_operator",),
    )
    async def _(a, key):
        return await staff.enable_operator(rt, ctx, a.operator)

    _knowledge_tool(ts, rt)
    rank = ROLE_RANK.get(role, 0)
    return [t for t in ts.tools if ROLE_RANK[t.min_role] <= rank]


# ================================================================================== customer tools

_CUST_IN_TEXT = re.compile(r"CUST-[0-9a-fA-F]{8}")
_SUB_IN_TEXT = re.compile(r"SUB-\d{6,}")


def customer_tools(rt: Runtime, ctx: RequestContext, customer_id: str) -> list[Tool]:
    """The customer chat's tools, bound to `customer_id`: no customer, order or case id parameter
    the model could point elsewhere; a line id is checked with ops/ownership.py before use, and
    every result is checked for other customers' things before the model sees it."""
    from ops import catalog, crm, ownership, subscriptions

    ts = ToolSet()
    add = ts.add

    async def own(line_id: str) -> None:
        await ownership.check_line(rt, customer_id, line_id)  # another customer's line = 404

    @add(
        "my_account",
        "The customer's own account: name, status, contact details, KYC status.",
        ops=("ops.crm.get_customer",),
    )
    async def _(a, key):
        return await crm.get_customer(rt, customer_id)

    @add(
        "my_lines",
        "The customer's own lines, live first, with state, plan, balances left and period end.",
        ops=("ops.ownership.own_lines",),
    )
    async def _(a, key):
        return await ownership.own_lines(rt, customer_id)

    @add(
        "line_status",
        "One of the customer's lines: state (and why blocked), plan, balances left, pending plan change.",
        LineRef,
        ops=("ops.ownership.own_line",),
    )
    async def _(a, key):
        return await ownership.own_line(rt, customer_id, a.line_id)

    class LineUsage(LineRef):
        limit: int = Field(20, ge=1, le=LIST_MAX)

    @add(
        "line_usage",
        "The latest usage (data, calls, texts) of one of the customer's lines, newest first.",
        LineUsage,
        ops=("ops.ownership.own_line_usage",),
    )
    async def _(a, key):
        return await ownership.own_line_usage(rt, customer_id, a.line_id, limit=a.limit)

    @add("my_orders", "The customer's own orders, newest first.", ops=("ops.ownership.own_orders",))
    async def _(a, key):
        return await ownership.own_orders(rt, customer_id, limit=20)

    @add("my_cases", "The customer's own support cases.", ops=("ops.ownership.own_cases",))
    async def _(a, key):
        return await ownership.own_cases(rt, customer_id, limit=20)

    @add(
        "my_payment_methods",
        "The customer's own cards on file (brand, last 4, expiry, default).",
        ops=("ops.ownership.own_payment_methods",),
    )
    async def _(a, key):
        return await ownership.own_payment_methods(rt, customer_id)

    @add("my_messages", "Messages we sent the customer, newest first.", ops=("ops.ownership.own_messages",))
    async def _(a, key):
        return await ownership.own_messages(rt, customer_id, limit=20)

    @add(
        "plans", "The plans on sale now, with price and allowances.", ops=("ops.catalog.sellable_offerings",)
    )
    async def _(a, key):
        return await catalog.sellable_offerings(rt)

    @add("top_ups", "The top-ups a line can buy, with price and allowance.", ops=("ops.catalog.list_vas",))
    async def _(a, key):
        return await catalog.list_vas(rt)

    class Help(Args):
        subject: str = Field(min_length=3, max_length=200)
        description: str = Field("", max_length=2000)
        category: Literal["account", "billing", "technical", "information", "complaint", "other"] = "other"

    @add(
        "open_case",
        "Open a support case for the customer so a person follows up (billing dispute, fraud, complaint, anything the chat cannot do).",
        Help,
        kind="write",
        ops=("ops.crm.open_case",),
    )
    async def _(a, key):
        detail, _replayed = await crm.open_case(
            rt, ctx, customer_id=customer_id, idempotency_key=key, **a.model_dump()
        )
        return detail

    class TopUp(LineRef):
        vas_id: str = Field(max_length=64, description="The top-up to buy (top_ups).")

    async def plan_topup(a):
        await own(a.line_id)
        return await _line_plan(rt, a.line_id, "topup", {"vas": a.vas_id})

    @add(
        "top_up",
        "Buy a top-up for one of the customer's lines, charged to their default card; a data top-up unblocks a line whose data ran out. Proposes; the customer confirms.",
        TopUp,
        kind="act",
        plan=plan_topup,
        ops=("ops.subscriptions.purchase_vas", "ops.ownership.check_line"),
    )
    async def _(a, key):
        await own(a.line_id)
        return await subscriptions.purchase_vas(rt, ctx, a.line_id, a.vas_id, idempotency_key=key)

    async def plan_renew(a):
        await own(a.line_id)
        return await _line_plan(rt, a.line_id, "renew", {})

    @add(
        "renew",
        "Renew one of the customer's lines now (charges the next period, unblocks it). Proposes; the customer confirms.",
        LineRef,
        kind="act",
        plan=plan_renew,
        ops=("ops.subscriptions.renew_now",),
    )
    async def _(a, key):
        await own(a.line_id)
        return await subscriptions.renew_now(rt, ctx, a.line_id, idempotency_key=key)

    class PlanChange(LineRef):
        offering_id: str = Field(max_length=64, description="The plan to move to (plans).")

    async def plan_change(a):
        await own(a.line_id)
        return await _line_plan(rt, a.line_id, "plan_change", {"offering": a.offering_id})

    @add(
        "change_plan",
        "Move one of the customer's lines to another plan at its next renewal. Proposes; the customer confirms.",
        PlanChange,
        kind="act",
        plan=plan_change,
        ops=("ops.subscriptions.schedule_plan_change",),
    )
    async def _(a, key):
        await own(a.line_id)
        return await subscriptions.schedule_plan_change(rt, ctx, a.line_id, a.offering_id)

    async def plan_cancel_change(a):
        await own(a.line_id)
        return await _line_plan(rt, a.line_id, "cancel_plan_change", {})

    @add(
        "cancel_plan_change",
        "Cancel the pending plan change of one of the customer's lines. Proposes; the customer confirms.",
        LineRef,
        kind="act",
        plan=plan_cancel_change,
        ops=("ops.subscriptions.cancel_plan_change",),
    )
    async def _(a, key):
        await own(a.line_id)
        return await subscriptions.cancel_plan_change(rt, ctx, a.line_id)

    class Terminate(LineRef):
        reason: str = Field("", max_length=200)

    async def plan_terminate(a):
        await own(a.line_id)
        return await _line_plan(rt, a.line_id, "terminate", {"reason": a.reason})

    @add(
        "terminate_line",
        "End one of the customer's lines for good (nothing refunded). Proposes; the customer confirms.",
        Terminate,
        kind="act",
        plan=plan_terminate,
        ops=("ops.subscriptions.terminate",),
    )
    async def _(a, key):
        await own(a.line_id)
        return await subscriptions.terminate(rt, ctx, a.line_id, a.reason or None)

    _knowledge_tool(ts, rt)
    from agent.escalation import escalation_tool  # fraud, disputes, regulator, identity, bereavement

    ts.tools.append(escalation_tool(rt, ctx, customer_id))

    async def check(result: Any) -> None:
        await check_owned(rt, customer_id, result)

    async def public(result: Any) -> None:
        """The handbook and docs are public text: an example id in them is no customer's data."""

    for t in ts.tools:
        t.check = public if t.name == "knowledge_search" else check
    return ts.tools


async def check_owned(rt: Runtime, customer_id: str, result: Any) -> None:
    """Trip-wire before the model sees a customer tool's result: any other customer's id, or a line
    that is not theirs, anywhere in it → NotFound (the model gets an error, not the data)."""
    from ops import ownership

    text = json.dumps(result, default=str)
    for other in set(_CUST_IN_TEXT.findall(text)):
        if other.lower() != customer_id.lower():
            raise NotFound("agent.ownership_violation", "That is not something of yours.")
    lines = set(_SUB_IN_TEXT.findall(text))
    if lines:
        mine = {v["id"] for v in await ownership.own_lines(rt, customer_id)}
        if lines - mine:
            raise NotFound("agent.ownership_violation", "That is not something of yours.")


# ================================================================================== calling a tool

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


__all__ = [
    "NOT_TOOLS",
    "Tool",
    "call_tool",
    "check_owned",
    "customer_tools",
    "describe",
    "jsonable",
    "operator_tools",
]

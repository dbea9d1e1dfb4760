"""Operator tools: customers (search, profile, interactions, messages) and their cards on file."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from agent.tools.base import LIST_MAX, Args, CustomerRef, Page, ToolSet, _customer, _sentences
from core.context import RequestContext
from ops.runtime import Runtime


def add_customer_tools(ts: ToolSet, rt: Runtime, ctx: RequestContext) -> None:
    """Add these tools to `ts`, in this order (part of operator_tools)."""
    from ops import cockpit, crm, notify, payment

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

"""Customer operations for every door (API, CLI via the API, portals, agent)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from core.context import RequestContext
from core.db import transaction
from core.errors import PolicyViolation
from domains.crm import services
from domains.crm.models import CrmIdempotencyKey, CustomerIdentity
from domains.crm.services import CustomerView
from ops import idempotency
from ops.runtime import Runtime


async def create_customer(
    rt: Runtime,
    ctx: RequestContext,
    *,
    given_name: str,
    family_name: str,
    email: str | None = None,
    phone: str | None = None,
    date_of_birth: date | None = None,
    status: str = "active",
    idempotency_key: str | None = None,
) -> tuple[CustomerView, bool]:
    """The new customer (or, for a replayed Idempotency-Key, the one it created) and whether replayed."""
    request = {
        "given_name": given_name,
        "family_name": family_name,
        "email": email,
        "phone": phone,
        "date_of_birth": date_of_birth,
        "status": status,
    }

    async def create(s: AsyncSession) -> str:
        customer = await services.create_customer(
            s,
            ctx,
            given_name=given_name,
            family_name=family_name,
            email=email,
            phone=phone,
            date_of_birth=date_of_birth,
            status=status,
        )
        return customer.id

    return await idempotency.once(
        rt.db,
        CrmIdempotencyKey,
        "customer.create",
        idempotency_key,
        idempotency.fingerprint(request),
        create,
        services.customer_view,
    )


async def get_customer(rt: Runtime, customer_id: str) -> CustomerView:
    async with rt.db() as s:
        return await services.customer_view(s, customer_id)


async def list_customers(
    rt: Runtime,
    *,
    status: str | None = None,
    name_contains: str | None = None,
    email: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[CustomerView]:
    async with rt.db() as s:
        rows = await services.list_customers(
            s, status=status, name_contains=name_contains, email=email, offset=offset, limit=limit
        )
        return await services.load_customer_views(s, rows)


async def update_customer(rt: Runtime, ctx: RequestContext, customer_id: str, **changes: Any) -> CustomerView:
    async with transaction(rt.db) as s:
        if changes.get("status") == "closed":
            await _refuse_close_with_live_lines(s, customer_id)
        await services.update_customer(s, ctx, customer_id, **changes)
        return await services.customer_view(s, customer_id)


async def _refuse_close_with_live_lines(session: AsyncSession, customer_id: str) -> None:
    """Closing a customer who still has lines would strand them: terminate the lines first."""
    from domains.subscription.services import list_subscriptions

    await services.get_customer(session, customer_id, for_update=True)
    live = [
        sub.id
        for sub in await list_subscriptions(session, customer_id=customer_id)
        if sub.state != "terminated"
    ]
    if live:
        raise PolicyViolation(
            "customer.close.no_active_subscriptions",
            f"Customer {customer_id} still has lines ({', '.join(live)}); terminate them first.",
            subscription_ids=live,
        )


async def attest_kyc(
    rt: Runtime,
    ctx: RequestContext,
    customer_id: str,
    *,
    document_type: str,
    document_number: str,
    document_country: str,
    verified_by: str,
    date_of_birth: date | None = None,
    nationality: str | None = None,
    reference: str | None = None,
    attestation: dict[str, Any] | None = None,
) -> tuple[CustomerView, CustomerIdentity]:
    async with transaction(rt.db) as s:
        identity = await services.attest_kyc(
            s,
            ctx,
            customer_id,
            document_type,
            document_number,
            document_country,
            verified_by,
            date_of_birth=date_of_birth,
            nationality=nationality,
            reference=reference,
            attestation=attestation,
        )
        return await services.customer_view(s, customer_id), identity

"""Payment-method operations for every door. The card number passes through, never kept."""

from __future__ import annotations

from core.context import RequestContext
from core.db import transaction
from domains.payment import services
from domains.payment.models import PaymentIdempotencyKey, PaymentMethod
from ops import idempotency
from ops.runtime import Runtime


async def add_payment_method(
    rt: Runtime,
    ctx: RequestContext,
    *,
    customer_id: str,
    exp_month: int,
    exp_year: int,
    card_number: str | None = None,
    token: str | None = None,
    name_on_card: str | None = None,
    set_default: bool | None = None,
    last4: str | None = None,
    brand: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[PaymentMethod, bool]:
    # The fingerprint sees only the card's last four digits: a hash of a card number is no secret.
    request = {
        "customer_id": customer_id,
        "exp": [exp_month, exp_year],
        "card_last4": card_number.strip()[-4:] if card_number else None,
        "token": token,
        "name_on_card": name_on_card,
        "set_default": set_default,
    }

    async def create(s) -> str:
        method = await services.add_payment_method(
            s,
            ctx,
            customer_id=customer_id,
            card_number=card_number,
            token=token,
            exp_month=exp_month,
            exp_year=exp_year,
            name_on_card=name_on_card,
            set_default=set_default,
            last4=last4,
            brand=brand,
        )
        return method.id

    return await idempotency.once(
        rt.db,
        PaymentIdempotencyKey,
        "payment_method.add",
        idempotency_key,
        idempotency.fingerprint(request),
        create,
        services.get_payment_method,
    )


async def get_payment_method(rt: Runtime, pm_id: str) -> PaymentMethod:
    async with rt.db() as s:
        return await services.get_payment_method(s, pm_id)


async def list_payment_methods(
    rt: Runtime, customer_id: str, *, include_removed: bool = False
) -> list[PaymentMethod]:
    async with rt.db() as s:
        return await services.list_payment_methods(s, customer_id, include_removed=include_removed)


async def remove_payment_method(rt: Runtime, ctx: RequestContext, pm_id: str) -> PaymentMethod:
    async with transaction(rt.db) as s:
        return await services.remove_payment_method(s, ctx, pm_id)


async def set_default(rt: Runtime, ctx: RequestContext, pm_id: str) -> PaymentMethod:
    async with transaction(rt.db) as s:
        return await services.set_default(s, ctx, pm_id)


async def default_payment_method(rt: Runtime, customer_id: str) -> PaymentMethod | None:
    async with rt.db() as s:
        return await services.default_payment_method(s, customer_id)

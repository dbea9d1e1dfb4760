"""Promo claims through the real order saga (dev server, real Postgres): two concurrent orders
for the last use of a capped code (one discounted, the other at full price with the note), and a
failed activation revoking its claim so the code is not burned.

BSS_EXPORT_HISTORIES=1 writes the replay histories of PromoClaimWorkflow and of the order's
patched path (`order-claims-promotion`) from these runs."""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

from core.context import RequestContext
from core.db import transaction
from tests.saga_harness import Saga
from workflows.promo_claim import PromoClaimWorkflow, promo_claim_workflow_id

ADMIN = RequestContext(actor="admin-ann", channel="cli")
HISTORIES = Path(__file__).resolve().parent.parent / "replay" / "histories"


async def rows(saga: Saga, sql: str, **params) -> list[tuple]:
    async with saga.runtime.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]


async def new_promo(saga: Saga, code: str, **kw) -> None:
    from domains.catalog import promotions

    terms = {
        "name": code.title(),
        "discount_type": "percent",
        "discount_value": Decimal("50"),
        "periods": 3,
        "code_kind": "multi_use",
    } | kw
    async with transaction(saga.runtime.db) as s:
        await promotions.create_promotion(s, ADMIN, code=code, **terms)


async def export(saga: Saga, workflow_id: str, workflow_type: str, case: str) -> None:
    if os.environ.get("BSS_EXPORT_HISTORIES") != "1":
        return
    history = await saga.client.get_workflow_handle(workflow_id).fetch_history()
    (HISTORIES / workflow_type).mkdir(parents=True, exist_ok=True)
    (HISTORIES / workflow_type / f"{case}.json").write_text(history.to_json())


async def activation_charges(saga: Saga, customer: str) -> list[tuple[str, str]]:
    return [
        (str(amount), status)
        for amount, status in await rows(
            saga,
            "SELECT amount, status FROM payment.payment WHERE customer_id = :c AND purpose = 'activation' ORDER BY id",
            c=customer,
        )
    ]


async def test_two_concurrent_orders_for_the_last_use_one_discounted_one_full_price(saga: Saga):
    await new_promo(saga, "LAST1", max_uses=1)
    customers = [await saga.customer(), await saga.customer()]
    orders = [await saga.order(c, promo_code="LAST1") for c in customers]
    assert all(o.promo_amount == Decimal("5.00") for o in orders)  # both valid when placed
    results = await asyncio.gather(*(saga.handle(o.id).result() for o in orders))
    assert [r.state for r in results] == ["completed", "completed"], [r.reason for r in results]
    claims = await asyncio.gather(
        *(
            saga.client.get_workflow_handle_for(
                PromoClaimWorkflow.run, promo_claim_workflow_id(o.id)
            ).result()
            for o in orders
        )
    )
    assert sorted(c.state for c in claims) == ["redeemed", "refused"]
    won = next(i for i, c in enumerate(claims) if c.state == "redeemed")
    lost = 1 - won
    assert await activation_charges(saga, customers[won]) == [("5.00", "approved")]
    assert await activation_charges(saga, customers[lost]) == [("10.00", "approved")]
    (note,) = await rows(saga, "SELECT note FROM ordering.product_order WHERE id = :o", o=orders[lost].id)
    assert "LAST1" in note[0] and "[no_active_promotion]" in note[0] and "full price" in note[0]
    events = await rows(
        saga,
        "SELECT payload FROM audit.domain_event WHERE event_type = 'order.promo_rejected' AND aggregate_id = :o",
        o=orders[lost].id,
    )
    assert [e[0] for e in events] == [
        {"customer_id": customers[lost], "code": "LAST1", "reason": "no_active_promotion"}
    ]
    assert await rows(saga, "SELECT uses, state FROM catalog.promotion WHERE code = 'LAST1'") == [
        (1, "exhausted")
    ]
    assert await rows(
        saga,
        "SELECT state, subscription_id, periods_remaining FROM catalog.promotion_claim WHERE order_id = :o",
        o=orders[won].id,
    ) == [("redeemed", results[won].subscription_id, 2)]
    # The line renews at its snapshot (full) price once the promotion's periods are used.
    assert await rows(
        saga,
        "SELECT price_amount FROM subscription.subscription WHERE id = :s",
        s=results[won].subscription_id,
    ) == [(Decimal("10.00"),)]
    for i, case in ((won, "promo_redeemed"), (lost, "promo_refused")):
        await export(saga, promo_claim_workflow_id(orders[i].id), "PromoClaimWorkflow", case)
        await export(saga, f"order-{orders[i].id}", "ProductOrderWorkflow", case)


async def test_a_declined_activation_revokes_the_claim_and_never_burns_the_code(saga: Saga):
    await new_promo(saga, "ONLY1", code_kind="single_use_shared")
    customer = await saga.customer(card="4000000000000002")
    order = await saga.order(customer, promo_code="only1")
    result = await saga.handle(order.id).result()
    assert result.state == "failed" and "declined" in result.reason
    claim = await saga.client.get_workflow_handle_for(
        PromoClaimWorkflow.run, promo_claim_workflow_id(order.id)
    ).result()
    assert claim.state == "revoked"
    assert await activation_charges(saga, customer) == [
        ("5.00", "declined")
    ]  # the discounted price was tried
    assert await rows(saga, "SELECT state FROM catalog.promotion_claim WHERE order_id = :o", o=order.id) == [
        ("revoked",)
    ]
    assert await rows(saga, "SELECT uses, state FROM catalog.promotion WHERE code = 'ONLY1'") == [
        (0, "active")
    ]
    # the code is still there for the next customer
    other = await saga.customer()
    again = await saga.order(other, promo_code="ONLY1")
    assert (await saga.handle(again.id).result()).state == "completed"
    assert await activation_charges(saga, other) == [("5.00", "approved")]
    # a code that makes the activation free: nothing is charged, the line is active
    await new_promo(saga, "GIFT", discount_value=Decimal(100), periods=1)
    lucky = await saga.customer()
    gift = await saga.order(lucky, promo_code="GIFT")
    assert (await saga.handle(gift.id).result()).state == "completed"
    assert await activation_charges(saga, lucky) == []
    await export(saga, promo_claim_workflow_id(order.id), "PromoClaimWorkflow", "promo_revoked")
    await export(saga, f"order-{order.id}", "ProductOrderWorkflow", "promo_revoked")

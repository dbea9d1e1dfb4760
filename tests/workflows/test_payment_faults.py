"""The order saga against a card gateway that fails like a real one (dev server, real Postgres):
an unanswered or refused call is retried with the same key, and the gateway's own ledger shows one
authorisation per completed order, whatever was lost on the way."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from domains.payment.mock_gateway import live_authorizations_for
from simulators.faults import Fault
from tests.saga_harness import Saga


class Once:
    """A gateway fault that fires on the first call of its task type only (then the gateway is well)."""

    def __init__(self, task_type: str, fault_type: str) -> None:
        self.left = {task_type: Fault("T_ONCE", task_type, fault_type, 1.0)}
        self.fired = 0

    async def for_task(self, task_type: str) -> list[Fault]:
        fault = self.left.pop(task_type, None)
        self.fired += fault is not None
        return [fault] if fault else []


@pytest.mark.parametrize("fault_type", ["lost_response", "timeout", "unavailable"])
async def test_a_charge_without_an_answer_is_retried_and_charged_once(saga: Saga, fault_type):
    once = Once("PAYMENT_CHARGE", fault_type)
    saga.gateway.faults, saga.gateway.timeout = once, 0.2
    customer = await saga.customer()
    order = await saga.order(customer)
    result = await saga.handle(order.id).result()
    assert result.state == "completed", result.reason
    assert once.fired == 1
    async with saga.runtime.db() as s:
        live = await live_authorizations_for(s, f"order-{order.id}/")
        payments = (
            await s.execute(
                text("select status, gateway_ref from payment.payment where customer_id = :c"),
                {"c": customer},
            )
        ).all()
    assert [(p.status, p.gateway_ref) for p in payments] == [("approved", live[0].id)]
    assert len(live) == 1 and saga.gateway.authorizations == 1

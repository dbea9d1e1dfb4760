"""An order row never strands (issue 8, item 9): an order stored while Temporal is down answers 201
`acknowledged`, and the sweeper (ops/orders.py, run by the worker) starts it once Temporal is back,
or closes it (cancelled) with a reason when it cannot be started for too long or its workflow ended unstarted."""

from __future__ import annotations

import uuid

from ops.orders import NOT_STARTED, sweep_stranded_orders
from tests.api.order_flow import ORDERS, customer, order_body, order_until


async def _place_while_temporal_is_down(api, runtime) -> str:
    # Without the saga fixture the runtime points at a closed port: Temporal is down.
    r = await api.post(ORDERS, json=order_body(await customer(runtime)))
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "acknowledged"
    return r.json()["id"]


async def test_an_order_stored_while_temporal_is_down_completes_once_it_is_back(
    api, runtime, settings, temporal_dev
):
    from tests.saga_harness import running_saga

    order_id = await _place_while_temporal_is_down(api, runtime)
    still_down = await sweep_stranded_orders(runtime, grace_seconds=0)
    assert still_down.waiting == [order_id] and not still_down.started and not still_down.cancelled
    assert (await api.get(f"{ORDERS}/{order_id}")).json()["state"] == "acknowledged"

    # Temporal comes back (the dev server, with a real worker on it): the next sweep starts the order.
    async for saga in running_saga(temporal_dev, runtime, settings):
        swept = await sweep_stranded_orders(runtime, grace_seconds=0)
        assert swept.started == [order_id]
        done = await order_until(api, order_id, {"completed", "failed"}, timeout=60)
        assert done["state"] == "completed", done
        # Idempotent: a second sweep finds nothing left to start, and one workflow ran.
        assert (await sweep_stranded_orders(runtime, grace_seconds=0)).started == []
        assert (await saga.handle(order_id).describe()).run_id is not None


async def test_an_order_that_cannot_be_started_for_too_long_is_cancelled_with_a_reason(api, runtime):
    order_id = await _place_while_temporal_is_down(api, runtime)
    within_grace = await sweep_stranded_orders(runtime, grace_seconds=3600)
    assert order_id not in within_grace.waiting + within_grace.cancelled
    swept = await sweep_stranded_orders(runtime, grace_seconds=0, give_up_seconds=0)
    assert swept.cancelled == [order_id]
    body = (await api.get(f"{ORDERS}/{order_id}")).json()
    assert body["state"] == "cancelled"
    assert NOT_STARTED in str(body), body


async def test_an_order_whose_workflow_ended_before_taking_it_up_is_cancelled_with_a_reason(
    api, runtime, settings, temporal_dev
):
    from temporalio.client import WorkflowExecutionStatus

    from ops.orders import start_order_workflow
    from workflows.product_order import order_workflow_id

    order_id = await _place_while_temporal_is_down(api, runtime)
    # Temporal back, no worker on this queue yet: the workflow starts and is terminated from the UI.
    settings.task_queue = f"no-worker-{uuid.uuid4().hex[:8]}"
    runtime.use_temporal(temporal_dev.client)
    async with runtime.db() as s:
        from domains.ordering.services import get_order

        order = await get_order(s, order_id)
    assert await start_order_workflow(runtime, order) is True
    handle = temporal_dev.client.get_workflow_handle(order_workflow_id(order_id))
    await handle.terminate("terminated by an operator")
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED

    swept = await sweep_stranded_orders(runtime, grace_seconds=0)
    assert swept.cancelled == [order_id] and swept.started == []
    body = (await api.get(f"{ORDERS}/{order_id}")).json()
    assert body["state"] == "cancelled" and NOT_STARTED in str(body)

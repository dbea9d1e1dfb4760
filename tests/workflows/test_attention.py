"""A workflow that needs an operator opens a ticket, shows BssStuck, and carries on with the
operator's decision sent through the API; the ticket is then resolved under the operator's name."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus
from temporalio.worker import Worker

from activities.registry import build_activities
from tests.workflows.attention_probe import AttentionProbe
from worker import workflow_runner
from workflows.ticket_sla import TicketSlaWorkflow, ticket_sla_workflow_id


async def _waiting_ticket(api, workflow_id: str, seconds: float = 20) -> dict:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        rows = (await api.get("/bss-api/v1/ticket")).json()
        mine = [t for t in rows if t["waitingWorkflowId"] == workflow_id]
        if mine:
            return mine[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no ticket for {workflow_id}")


async def test_operator_decision_reaches_the_waiting_workflow_and_resolves_its_ticket(saga, api):
    customer = await saga.customer()
    queue = f"probe-{uuid.uuid4().hex[:6]}"
    async with Worker(
        saga.client,
        task_queue=queue,
        workflows=[AttentionProbe],
        workflow_runner=workflow_runner(),
        activities=build_activities(saga.runtime),
    ):
        wf_id = f"probe-{uuid.uuid4().hex[:8]}"
        handle = await saga.client.start_workflow(AttentionProbe.run, customer, id=wf_id, task_queue=queue)
        ticket = await _waiting_ticket(api, wf_id)
        assert ticket["state"] == "open" and ticket["waitingTopic"] == "probe"
        assert ticket["customerId"] == customer
        # The ask's ticket has its SLA timer, like every ticket.
        sla = saga.client.get_workflow_handle_for(TicketSlaWorkflow.run, ticket_sla_workflow_id(ticket["id"]))
        assert (await sla.describe()).status == WorkflowExecutionStatus.RUNNING

        refused = await api.post(f"/bss-api/v1/ticket/{ticket['id']}/resolve", json={"note": "  "})
        assert refused.status_code == 422
        assert refused.json()["reason"] == "ticket.resolve.requires_resolution_notes"

        answer = await api.post(
            f"/bss-api/v1/ticket/{ticket['id']}/resolve",
            json={"note": "charged by hand"},
        )
        assert answer.status_code == 202, answer.text
        assert await handle.result() == "resolve:charged by hand"
        # Resolved through the workflow: the timer is told and ends without escalating.
        timer = await sla.result()
        assert (timer.state, timer.escalations) == ("resolved", 0)

    after = (await api.get(f"/bss-api/v1/ticket/{ticket['id']}")).json()
    assert after["state"] == "resolved"
    assert "charged by hand" in after["resolutionNotes"]
    async with saga.runtime.engine.connect() as conn:
        resolved_by = (
            await conn.execute(
                text(
                    "SELECT actor FROM audit.domain_event WHERE aggregate_id = :id "
                    "AND event_type = 'ticket.resolved'"
                ),
                {"id": ticket["id"]},
            )
        ).scalar_one()
    # The workflow resolved it, but under the operator who decided, not as itself.
    assert not resolved_by.startswith("workflow")

    again = await api.post(f"/bss-api/v1/ticket/{ticket['id']}/retry")
    assert again.status_code == 422
    assert again.json()["reason"] == "ticket.transition.valid_from_state"


async def test_a_ticket_no_workflow_waits_on_is_refused(api):
    missing = await api.post("/bss-api/v1/ticket/TKT-00000000/retry")
    assert missing.status_code == 404
    bad = await api.post("/bss-api/v1/ticket/not-a-ticket/retry")
    assert bad.status_code in (400, 422)

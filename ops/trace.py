"""The saga of one order, read back from Temporal: every workflow it ran, and in each one every
activity (remote and local), timer, child workflow and signal, with its start and duration.

The histories are the record, so this works for an order finished last month as well as one
that is stuck now. Workflows are found two ways, because visibility is eventually consistent
and an external cluster may lack our search attributes: by walking child starts down from
`order-<ORD>`, and by `BssOrderId = "<ORD>"` (which also finds the eSIM flow's later runs).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.errors import NotFound

if TYPE_CHECKING:
    from core.settings import Settings
    from ops.runtime import Runtime

LOCAL_ACTIVITY_MARKER = "core_local_activity"
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_CLOSED = {
    "workflow_execution_completed_event_attributes": "completed",
    "workflow_execution_failed_event_attributes": "failed",
    "workflow_execution_timed_out_event_attributes": "timedOut",
    "workflow_execution_terminated_event_attributes": "terminated",
    "workflow_execution_canceled_event_attributes": "cancelled",
    "workflow_execution_continued_as_new_event_attributes": "continuedAsNew",
}
_ACTIVITY_END = {
    "activity_task_completed_event_attributes": "completed",
    "activity_task_failed_event_attributes": "failed",
    "activity_task_timed_out_event_attributes": "timedOut",
    "activity_task_canceled_event_attributes": "cancelled",
}
_CHILD_END = {
    "child_workflow_execution_completed_event_attributes": "completed",
    "child_workflow_execution_failed_event_attributes": "failed",
    "child_workflow_execution_canceled_event_attributes": "cancelled",
    "child_workflow_execution_timed_out_event_attributes": "timedOut",
    "child_workflow_execution_terminated_event_attributes": "terminated",
    "start_child_workflow_execution_failed_event_attributes": "failed",
}


def temporal_ui_url(settings: Settings, path: str = "") -> str:
    """The Temporal UI of the stack (`bss up` serves it beside the dev server)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return (
        f"http://{host}:{settings.temporal_ui_port}/namespaces/{settings.temporal_namespace}/workflows{path}"
    )


@dataclass
class Step:
    kind: str  # activity | localActivity | timer | childWorkflow | signal | update | flag
    name: str
    start: datetime
    end: datetime | None = None
    status: str = "running"
    attempts: int | None = None
    detail: str | None = None
    error: str | None = None
    planned_ms: int | None = None


@dataclass
class Lane:
    workflow_id: str
    run_id: str
    workflow_type: str = ""
    parent_workflow_id: str | None = None
    status: str = "running"
    start: datetime | None = None
    end: datetime | None = None
    last_event: datetime | None = None
    steps: list[Step] = field(default_factory=list)
    children: list[tuple[str, str]] = field(default_factory=list)


async def order_trace(rt: Runtime, order_id: str) -> dict[str, Any]:
    """The timeline of an order's saga as JSON (GET /bss-api/v1/trace/order/{id})."""
    from temporalio.service import RPCError, RPCStatusCode

    from domains.ordering.services import get_order
    from ops.orders import TemporalUnavailable
    from workflows.product_order import order_workflow_id

    if not _ORDER_ID.fullmatch(order_id):
        raise NotFound("order.not_found", f"No product order {order_id}.", order_id=order_id)
    async with rt.db() as s:
        await get_order(s, order_id)
    try:
        client = await rt.temporal()
        lanes = await _read_lanes(client, order_workflow_id(order_id), order_id)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(
                "order.workflow.not_found",
                f"Temporal holds no workflow for order {order_id}.",
                order_id=order_id,
            ) from None
        raise TemporalUnavailable(
            "trace.temporal.unavailable", f"Temporal did not answer: {exc.message}"
        ) from None
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise TemporalUnavailable(
            "trace.temporal.unavailable", f"Temporal is not reachable ({exc})."
        ) from None
    return timeline(order_id, lanes, temporal_ui_url(rt.settings, f"/{order_workflow_id(order_id)}"))


async def subscription_trace(rt: Runtime, subscription_id: str) -> dict[str, Any]:
    """The life of a line (GET /bss-api/v1/trace/subscription/{id}): the saga of the order that
    sold it, then every run of `subscription-<SUB>` (renewals, blocks, top-ups; continue-as-new
    runs each a lane of their own)."""
    from temporalio.service import RPCError

    from domains.subscription.services import get_subscription
    from ops.orders import TemporalUnavailable
    from workflows.product_order import order_workflow_id

    if not _ORDER_ID.fullmatch(subscription_id):
        raise NotFound(
            "subscription.not_found", f"No subscription {subscription_id}.", subscription_id=subscription_id
        )
    async with rt.db() as s:
        sub = await get_subscription(s, subscription_id)
    root = f"subscription-{subscription_id}"
    try:
        client = await rt.temporal()
        try:
            lanes = await _read_lanes(client, order_workflow_id(sub.order_id), sub.order_id)
        except RPCError:
            lanes = []  # an order whose history is gone (retention): the line's own runs still tell
        known = {(lane.workflow_id, lane.run_id) for lane in lanes}
        runs = [wf.run_id async for wf in client.list_workflows(f'WorkflowId = "{root}"')]
        histories = await asyncio.gather(
            *(client.get_workflow_handle(root, run_id=r).fetch_history() for r in runs),
            return_exceptions=True,
        )
        for run_id, history in zip(runs, histories, strict=True):
            if not isinstance(history, BaseException) and (root, run_id) not in known:
                lanes.append(read_history(root, run_id, history.events))
    except RPCError as exc:
        raise TemporalUnavailable(
            "trace.temporal.unavailable", f"Temporal did not answer: {exc.message}"
        ) from None
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise TemporalUnavailable(
            "trace.temporal.unavailable", f"Temporal is not reachable ({exc})."
        ) from None
    if not any(lane.workflow_id == root for lane in lanes):
        raise NotFound(
            "subscription.workflow.not_found",
            f"Temporal holds no workflow for subscription {subscription_id}.",
            subscription_id=subscription_id,
        )
    trace = timeline(sub.order_id, lanes, temporal_ui_url(rt.settings, f"/{root}"))
    trace["subscriptionId"] = subscription_id
    trace["title"] = f"Life of {subscription_id} (sold by {sub.order_id})"
    return trace


async def _read_lanes(client: Any, root_id: str, order_id: str) -> list[Lane]:
    from temporalio.service import RPCError

    todo: list[tuple[str, str | None]] = [(root_id, None)]
    try:  # visibility may lag or lack the attribute; the child walk below still finds the saga
        async for wf in client.list_workflows(f'BssOrderId = "{order_id}"'):
            if wf.id != root_id:
                todo.append((wf.id, wf.run_id))
    except RPCError:
        pass
    lanes: dict[tuple[str, str], Lane] = {}
    seen: set[tuple[str, str | None]] = set()
    while todo:
        batch = [t for t in dict.fromkeys(todo) if t not in seen]
        todo = []
        seen.update(batch)
        histories = await asyncio.gather(
            *(client.get_workflow_handle(wid, run_id=rid).fetch_history() for wid, rid in batch),
            return_exceptions=True,
        )
        for (wid, rid), history in zip(batch, histories, strict=True):
            if isinstance(history, BaseException):
                if rid is None and wid == root_id:
                    raise history
                continue  # a run deleted by retention: the rest of the saga is still worth showing
            lane = read_history(wid, rid or history.run_id, history.events)
            lanes.setdefault((lane.workflow_id, lane.run_id), lane)
            seen.add((wid, lane.run_id))
            todo += [c for c in lane.children if c not in seen]
    return list(lanes.values())


def read_history(workflow_id: str, run_id: str, events: Any) -> Lane:
    """One workflow run's history, folded into its steps."""
    lane = Lane(workflow_id, run_id)
    open_steps: dict[int, Step] = {}  # by the event id that began them; closed ones are popped

    def begin(event_id: int, step: Step) -> None:
        open_steps[event_id] = step
        lane.steps.append(step)

    # Local activities have no events of their own: the earliest one of them could start is
    # when its workflow task started, or when the one before it in that task ended.
    la_floor: datetime | None = None
    for e in events:
        kind = e.WhichOneof("attributes")
        at = e.event_time.ToDatetime(tzinfo=UTC)
        a = getattr(e, kind)
        lane.last_event = at
        if kind == "workflow_execution_started_event_attributes":
            lane.start, lane.workflow_type = at, a.workflow_type.name
            if a.HasField("parent_workflow_execution"):
                lane.parent_workflow_id = a.parent_workflow_execution.workflow_id
        elif kind in _CLOSED:
            lane.end, lane.status = at, _CLOSED[kind]
        elif kind == "workflow_task_started_event_attributes":
            la_floor = at
        elif kind == "activity_task_scheduled_event_attributes":
            begin(e.event_id, Step("activity", a.activity_type.name, at, detail=_detail(a.input)))
        elif kind == "activity_task_started_event_attributes":
            _close_attempt(open_steps.get(a.scheduled_event_id), a.attempt)
        elif kind in _ACTIVITY_END:
            _finish(open_steps.pop(a.scheduled_event_id, None), at, _ACTIVITY_END[kind], a)
        elif kind == "marker_recorded_event_attributes" and a.marker_name == LOCAL_ACTIVITY_MARKER:
            step = _local_activity(a, at, la_floor)
            lane.steps.append(step)
            la_floor = max(la_floor or step.end or at, step.end or at)
        elif kind == "timer_started_event_attributes":
            planned = a.start_to_fire_timeout.ToMilliseconds()
            begin(e.event_id, Step("timer", f"timer {a.timer_id}", at, planned_ms=planned))
        elif kind in ("timer_fired_event_attributes", "timer_canceled_event_attributes"):
            status = "fired" if kind == "timer_fired_event_attributes" else "cancelled"
            _finish(open_steps.pop(a.started_event_id, None), at, status, None)
        elif kind == "start_child_workflow_execution_initiated_event_attributes":
            begin(e.event_id, Step("childWorkflow", a.workflow_type.name, at, detail=a.workflow_id))
        elif kind == "child_workflow_execution_started_event_attributes":
            lane.children.append((a.workflow_execution.workflow_id, a.workflow_execution.run_id))
            step = open_steps.get(a.initiated_event_id)
            if step is not None:
                step.status, step.end = "started", at  # provisional: an abandoned child never reports back
        elif kind in _CHILD_END:
            _finish(open_steps.pop(a.initiated_event_id, None), at, _CHILD_END[kind], a)
        elif kind == "workflow_execution_signaled_event_attributes":
            lane.steps.append(Step("signal", a.signal_name, at, at, "received"))
        elif kind == "workflow_execution_update_accepted_event_attributes":
            lane.steps.append(Step("update", a.accepted_request.input.name, at, at, "accepted"))
        elif kind == "upsert_workflow_search_attributes_event_attributes":
            stuck = a.search_attributes.indexed_fields.get("BssStuck")
            if stuck is not None and stuck.data:
                lane.steps.append(Step("flag", f"BssStuck={stuck.data.decode()}", at, at, "set"))
    for step in open_steps.values():
        if step.kind == "childWorkflow" and step.status == "started" and lane.end is None:
            step.end = None  # the parent is still waiting for it
    lane.steps.sort(key=lambda s: s.start)
    return lane


def _close_attempt(step: Step | None, attempt: int) -> None:
    if step is not None:
        step.attempts = attempt


def _finish(step: Step | None, at: datetime, status: str, attrs: Any) -> None:
    if step is None:
        return
    step.end, step.status = at, status
    failure = getattr(attrs, "failure", None)
    if failure is not None and failure.message:
        step.error = failure.message


def _local_activity(attrs: Any, at: datetime, floor: datetime | None) -> Step:
    """Local activities leave one marker at the end of the workflow task that ran them; its data
    holds the type, the attempt and the worker's own schedule and completion times."""
    data = _decode(attrs.details["data"].payloads) if "data" in attrs.details else {}
    data = data if isinstance(data, dict) else {}
    end = min(_timestamp(data.get("complete_time")) or at, at)
    start = _timestamp(data.get("original_schedule_time"))
    if start is None or start > end:  # the first one of a task can be stamped after it ran
        start = min(floor or end, end)
    step = Step("localActivity", str(data.get("activity_type", "local activity")), start, end, "completed")
    step.attempts = data.get("attempt")
    # The marker keeps no input; a provisioning task's result names its task (TaskOutcome.task_type).
    if "result" in attrs.details:
        step.detail = _detail(attrs.details["result"])
    if attrs.HasField("failure"):
        step.status, step.error = "failed", attrs.failure.message
    return step


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, dict) or "seconds" not in value:
        return None
    return datetime.fromtimestamp(value["seconds"] + value.get("nanos", 0) / 1e9, tz=UTC)


def _decode(payloads: Any) -> Any:
    from temporalio.converter import DataConverter

    try:
        values = DataConverter.default.payload_converter.from_payloads(list(payloads))
    except Exception:  # noqa: BLE001 - an undecodable payload only costs the label its detail
        return None
    return values[0] if values else None


def _detail(inputs: Any) -> str | None:
    """What a provisioning task works on (its input, or a local one's result), so four `run_task`
    rows read as four tasks."""
    arg = _decode(inputs.payloads) if inputs.payloads else None
    if isinstance(arg, dict):
        for key in ("task_type", "event"):
            if isinstance(arg.get(key), str):
                return arg[key]
    return None


def timeline(order_id: str, lanes: list[Lane], ui_url: str) -> dict[str, Any]:
    """Offsets in ms from the order's first workflow start; running things have no duration."""
    started = [lane.start for lane in lanes if lane.start is not None]
    if not started:
        raise NotFound("order.workflow.not_found", f"Temporal holds no workflow for order {order_id}.")
    origin = min(started)
    ended = max(lane.last_event or origin for lane in lanes)

    def ms(at: datetime | None, since: datetime = origin) -> int | None:
        return None if at is None else max(0, round((at - since).total_seconds() * 1000))

    def step_json(s: Step) -> dict[str, Any]:
        return {
            "kind": s.kind,
            "name": s.name,
            "detail": s.detail,
            "status": s.status,
            "startedAt": s.start.isoformat(),
            "startMs": ms(s.start),
            "durationMs": ms(s.end, s.start),
            "attempts": s.attempts,
            "plannedMs": s.planned_ms,
            "error": s.error,
        }

    root = f"order-{order_id}"
    ordered = sorted(lanes, key=lambda lane: (lane.workflow_id != root, lane.start or origin))
    return {
        "orderId": order_id,
        "startedAt": origin.isoformat(),
        "endedAt": ended.isoformat(),
        "durationMs": ms(ended),
        "temporalUiUrl": ui_url,
        "workflows": [
            {
                "workflowId": lane.workflow_id,
                "runId": lane.run_id,
                "workflowType": lane.workflow_type,
                "parentWorkflowId": lane.parent_workflow_id,
                "status": lane.status,
                "startedAt": lane.start.isoformat() if lane.start else None,
                "closedAt": lane.end.isoformat() if lane.end else None,
                "startMs": ms(lane.start),
                "durationMs": ms(lane.end, lane.start or origin),
                "steps": [step_json(s) for s in lane.steps],
            }
            for lane in ordered
        ],
    }

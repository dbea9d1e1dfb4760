"""One trace from the HTTP POST of an order through every workflow and activity of its saga."""

from __future__ import annotations

import asyncio
import time

import pytest_asyncio
from sqlalchemy import text

from core import telemetry
from tests.saga_harness import Saga

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"


@pytest_asyncio.fixture
async def traced_saga(temporal_dev, runtime, settings):
    """The saga's worker and the API's client both carry the tracing interceptor."""
    from tests.saga_harness import running_saga

    telemetry.setup("bss-test", settings)
    async for s in running_saga(
        temporal_dev, runtime, settings, interceptors=telemetry.temporal_interceptors()
    ):
        yield s


def _order_body(customer_id: str) -> dict:
    return {
        "productOrderItem": [{"id": "1", "action": "add", "productOffering": {"id": "PLAN_S"}}],
        "relatedParty": [{"id": customer_id, "role": "customer"}],
    }


async def _spans_until(exporter, names: set[str], timeout: float = 10.0) -> list:
    """Spans of workflows started last (the subscription) end a moment after the order does."""
    deadline = time.monotonic() + timeout
    while True:
        spans = exporter.get_finished_spans()
        if names <= {s.name for s in spans} or time.monotonic() > deadline:
            return list(spans)
        await asyncio.sleep(0.1)


async def test_one_trace_from_http_post_through_every_workflow_and_activity(traced_saga: Saga, api):
    cust = await traced_saga.customer()
    with telemetry.capture() as exporter:
        r = await api.post(ORDERS, json=_order_body(cust))
        assert r.status_code == 201, r.text
        order_id = r.json()["id"]
        result = await traced_saga.handle(order_id).result()
        assert result.state == "completed", result.reason
        expected = {
            f"POST {ORDERS}",
            "StartWorkflow:ProductOrderWorkflow",
            "RunWorkflow:ProductOrderWorkflow",
            "StartChildWorkflow:ServiceOrderWorkflow",
            "RunWorkflow:ServiceOrderWorkflow",
            "RunWorkflow:EsimProvisioningWorkflow",
            "RunWorkflow:SubscriptionWorkflow",
            "RunActivity:run_task",
            "RunActivity:charge_activation",
            "RunActivity:create_subscription",
            "CompleteWorkflow:ProductOrderWorkflow",
        }
        spans = await _spans_until(exporter, expected)

    names = {s.name for s in spans}
    assert expected <= names, sorted(expected - names)
    http = next(s for s in spans if s.name == f"POST {ORDERS}")
    trace_id = http.context.trace_id
    assert {s.context.trace_id for s in spans if s.name in expected} == {trace_id}
    # Every network task of the order (HLR, PCRF, OCS and the eSIM prepare) ran inside that trace.
    assert sum(1 for s in spans if s.name == "RunActivity:run_task" and s.context.trace_id == trace_id) == 4
    # The HTTP span is the root: the workflows hang under it, not beside it.
    assert http.parent is None
    start = next(s for s in spans if s.name == "StartWorkflow:ProductOrderWorkflow")
    assert start.parent.span_id == http.context.span_id

    async with traced_saga.runtime.engine.connect() as conn:
        audit = (
            await conn.execute(
                text(
                    "select trace_id from audit.domain_event where aggregate_id = :o "
                    "and actor not like 'workflow%' order by id limit 1"
                ),
                {"o": order_id},
            )
        ).scalar()
    assert audit == format(trace_id, "032x")


async def test_without_an_exporter_spans_carry_ids_but_are_not_recorded(settings):
    telemetry.setup("bss-test", settings)
    tracer = telemetry.trace.get_tracer("test")
    with tracer.start_as_current_span("order") as span:
        assert not span.is_recording()
        assert telemetry.current_trace_id() == format(span.get_span_context().trace_id, "032x")
    with telemetry.capture() as exporter, tracer.start_as_current_span("order") as span:
        assert span.is_recording()
    assert [s.name for s in exporter.get_finished_spans()] == ["order"]


async def test_the_otlp_url_gets_the_traces_path_once():
    assert telemetry.traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert telemetry.traces_url("http://collector:4318/v1/traces/") == "http://collector:4318/v1/traces"


async def test_without_an_exporter_each_request_still_gets_a_trace_id_and_keeps_a_callers(api, runtime):
    """With nothing exporting, a request skips the instrumentation's middleware (core.telemetry
    instrument_app) yet runs under a trace id of its own, which its audit rows keep; a request
    with a `traceparent` keeps the caller's trace."""
    from tests.usage_harness import active_line, usage_body

    _, msisdn = await active_line(runtime, "PLAN_M")
    usage = "/tmf-api/usageManagement/v4/usage"
    caller = "ab" * 16
    for i in range(2):
        assert (await api.post(usage, json=usage_body(msisdn, id=f"trace-{i}"))).status_code == 201
    r = await api.post(
        usage,
        json=usage_body(msisdn, id="trace-caller"),
        headers={"traceparent": f"00-{caller}-{'cd' * 8}-00"},
    )
    assert r.status_code == 201
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT aggregate_id, trace_id FROM audit.domain_event "
                "WHERE event_type = 'usage.rated' AND aggregate_id LIKE 'trace-%'"
            )
        )
        traces = dict(rows.all())
    assert traces["trace-caller"] == caller
    assert all(t and len(t) == 32 and t != "0" * 32 for t in traces.values())
    assert len({traces["trace-0"], traces["trace-1"], caller}) == 3


async def test_an_unexpected_error_gets_a_tmf_body_with_or_without_a_traceparent(settings, runtime):
    """Skipping the instrumentation's middleware must not skip the app's last-resort handlers
    (api/errors.py: a 500 with a TMF body, a lost database connection as 503), which Starlette
    runs in the outermost middleware."""
    import httpx
    from asyncpg.exceptions import CannotConnectNowError

    from api.app import create_app
    from tests.conftest import TEST_TOKEN

    app = create_app(settings, runtime)

    async def boom() -> None:
        raise RuntimeError("a bug")

    async def starting() -> None:
        raise CannotConnectNowError("the database system is starting up")

    app.add_api_route("/boom", boom)
    app.add_api_route("/starting", starting)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport, base_url="http://bss.test", headers={"Authorization": f"Bearer {TEST_TOKEN}"}
        ) as client,
    ):
        for headers in ({}, {"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"}):
            r = await client.get("/boom", headers=headers)
            assert r.status_code == 500 and r.json()["reason"] == "internal.error", (headers, r.text)
            r = await client.get("/starting", headers=headers)
            assert r.status_code == 503 and r.json()["reason"] == "service.unavailable", (headers, r.text)

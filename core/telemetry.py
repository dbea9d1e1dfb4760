"""OpenTelemetry for the API and the worker: one trace from the HTTP request of an order through
every workflow and activity of its saga.

`setup(service_name, settings)` installs the process's tracer provider, once. With
`BSS_OTEL_ENDPOINT` set, spans are batched to that OTLP/HTTP collector. Without it nothing is
sampled: spans still get ids (so the audit row keeps a trace id and Temporal headers carry it to
the worker) but are neither recorded nor exported, which costs a few random numbers per step.
Tests attach an in-memory exporter with `capture()`, which switches sampling on while it lasts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, SamplingResult

from core.settings import Settings, get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from temporalio.client import Interceptor

TRACER_NAME = "bss"


class _Exporters(SpanProcessor):
    """The span processors currently attached; an SDK provider cannot detach its own."""

    def __init__(self) -> None:
        self.processors: tuple[SpanProcessor, ...] = ()
        self._lock = threading.Lock()

    def attach(self, processor: SpanProcessor) -> None:
        with self._lock:
            self.processors = (*self.processors, processor)

    def detach(self, processor: SpanProcessor) -> None:
        with self._lock:
            self.processors = tuple(p for p in self.processors if p is not processor)
        processor.shutdown()

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        for p in self.processors:
            p.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for p in self.processors:
            p.on_end(span)

    def shutdown(self) -> None:
        for p in self.processors:
            p.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self.processors)


class _SampleWhenExporting(Sampler):
    """Record a new trace only when something will read it; children follow their parent."""

    _on, _off = ParentBased(ALWAYS_ON), ParentBased(ALWAYS_OFF)

    def __init__(self, exporters: _Exporters) -> None:
        self.exporters = exporters

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Any = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        sampler = self._on if self.exporters.processors else self._off
        return sampler.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "SampleWhenExporting"


_lock = threading.Lock()
_provider: TracerProvider | None = None
_exporters = _Exporters()


def setup(service_name: str, settings: Settings | None = None) -> TracerProvider:
    """Install the tracer provider of this process (`bss-api`, `bss-worker`); later calls reuse it."""
    global _provider
    with _lock:
        if _provider is not None:
            return _provider
        settings = settings or get_settings()
        provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}), sampler=_SampleWhenExporting(_exporters)
        )
        provider.add_span_processor(_exporters)
        if settings.otel_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            _exporters.attach(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(settings.otel_endpoint)))
            )
        trace.set_tracer_provider(provider)
        _provider = provider
        return provider


def traces_url(endpoint: str) -> str:
    """`http://collector:4318` → `http://collector:4318/v1/traces`; a full path is kept as given."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def shutdown() -> None:
    """Flush what is still batched (the worker and the API call this on their way out)."""
    if _provider is not None:
        _provider.force_flush(5000)


def temporal_interceptors() -> list[Interceptor]:
    """For `Client.connect`: the client's calls open spans and carry the trace in Temporal
    headers; a worker built on that client continues it in workflows and activities."""
    from temporalio.contrib.opentelemetry import TracingInterceptor

    # The tracer is a proxy until setup() runs, so a client made before setup still traces.
    return [TracingInterceptor(trace.get_tracer(TRACER_NAME))]


def instrument_app(app: FastAPI) -> None:
    """One server span per request (no spans for each ASGI send/receive: they only add cost).

    While nothing exports (no collector, no capture()), a request without a `traceparent` skips the
    instrumentation's middleware: it would only build a span nobody records (its name, route and
    ~20 attributes: a fifth of the API's CPU for a usage event). Such a request runs under a
    non-recording span of fresh random ids instead, which is what the sampler would have given it,
    so its audit rows and the Temporal calls it makes still carry a trace id."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])
    instrumented = app.build_middleware_stack

    def build_middleware_stack() -> Any:
        outer = instrumented()  # ServerErrorMiddleware(OpenTelemetryMiddleware(the app's stack))
        inner = getattr(getattr(outer, "app", None), "app", None)
        return outer if inner is None else _UnsampledShortcut(outer, inner)

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]


class _UnsampledShortcut:
    def __init__(self, traced: Any, untraced: Any) -> None:
        # `app`: FastAPI looks down the stack for the instrumentation's middleware, and leaves the
        # tracing to it when it finds it.
        self.app, self.untraced = traced, untraced
        self.ids = RandomIdGenerator()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if _exporters.processors or scope["type"] != "http" or _has_traceparent(scope["headers"]):
            await self.app(scope, receive, send)
            return
        span = trace.NonRecordingSpan(
            trace.SpanContext(self.ids.generate_trace_id(), self.ids.generate_span_id(), is_remote=False)
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            await self.untraced(scope, receive, send)
        finally:
            otel_context.detach(token)


def _has_traceparent(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    return any(name == b"traceparent" for name, _ in headers)


def current_trace_id() -> str | None:
    span = trace.get_current_span().get_span_context()
    return format(span.trace_id, "032x") if span.is_valid else None


@contextmanager
def capture() -> Iterator[InMemorySpanExporter]:
    """Tests: every span ended meanwhile lands in the returned exporter (sampling on)."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    if _provider is None:
        raise RuntimeError("telemetry.setup() must run before capture()")
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    _exporters.attach(processor)
    try:
        yield exporter
    finally:
        _exporters.detach(processor)

"""Traces of the exporter's own work (``OTEL_TRACES_EXPORTER=otlp``, off by default): a span per collection
cycle with a child per stage (engine read, SDK collection, each output), and a span per push request whose
failed attempts are events on it. Uses the OpenTelemetry SDK's tracer; the provider is this exporter's own,
never the process-wide global."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:  # the tracing SDK loads only when tracing is on (CycleTracing.build): most runs never need it
    from opentelemetry.context import Context
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

TRACES_EXPORTERS = ("none", "otlp", "console")
TRACES_PROTOCOLS = ("http/protobuf", "grpc")
SCOPE = "otel_fakegpu.cycle"


@dataclass(frozen=True)
class TracingSettings:
    exporter: str  # one of TRACES_EXPORTERS
    protocol: str = "http/protobuf"  # OTLP only; endpoint, headers and timeout come from the SDK's own variables


@dataclass
class TracedItem(Generic[T]):
    """A queued push item with the cycle context it was made in and, once tried, its open span."""

    item: T
    parent: Context | None
    span: Span | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


def _span_exporter(settings: TracingSettings) -> SpanExporter:
    if settings.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter  # noqa: PLC0415

        return ConsoleSpanExporter()
    # Imported here: each exporter pulls in its transport (grpc or requests) only when asked for.
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter  # noqa: PLC0415

    return HttpExporter()


class CycleTracing:
    """Span hooks for the cycle and the push senders; every hook is a no-op when tracing is off."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._provider = provider
        self._tracer: Tracer | None = provider.get_tracer(SCOPE) if provider else None

    @classmethod
    def build(cls, settings: TracingSettings | None, resource: Resource) -> CycleTracing:
        if settings is None or settings.exporter == "none":
            return cls()
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415 - see the imports above
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(_span_exporter(settings)))
        log.info("tracing each cycle to %s (%s)", settings.exporter, settings.protocol)
        return cls(provider)

    def cycle(self, number: int) -> AbstractContextManager[object]:
        """The cycle's root span, current for everything the cycle thread does inside it."""
        if self._tracer is None:
            return nullcontext()
        return self._tracer.start_as_current_span(
            "collection cycle", attributes={"otel_fakegpu.cycle.number": number}, record_exception=True
        )

    def stage(self, name: str, attributes: Mapping[str, str | int] | None = None) -> AbstractContextManager[object]:
        """A child of the current cycle span."""
        if self._tracer is None:
            return nullcontext()
        return self._tracer.start_as_current_span(name, attributes=attributes)

    def wrap(self, item: T) -> TracedItem[T]:
        """Remember the current (cycle) context with an item queued for push."""
        if self._tracer is None:
            return TracedItem(item, None)
        from opentelemetry import context as otel_context  # noqa: PLC0415 - loaded with the tracer's SDK already

        return TracedItem(item, otel_context.get_current())

    def send(self, traced: TracedItem[T], send: Callable[[T], R], target: str) -> R:
        """One attempt at delivering ``traced``: the first opens its span, a failure is an event on it; the
        queue ends it (``finish``). Returns what ``send`` returned."""
        if self._tracer is None:
            return send(traced.item)
        from opentelemetry.trace import SpanKind  # noqa: PLC0415 - loaded with the tracer's SDK already

        traced.attempts += 1
        if traced.span is None:
            traced.span = self._tracer.start_span(
                f"push {target}",
                context=traced.parent,
                kind=SpanKind.CLIENT,
                attributes={"otel_fakegpu.push.target": target},
            )
        else:
            traced.span.add_event("retry", {"attempt": traced.attempts, "previous_error": traced.errors[-1]})
        with _failure_recorded(traced):
            return send(traced.item)

    def finish(self, traced: TracedItem[T], outcome: str) -> None:
        """End the span of an item the push queue is done with: "ok" (delivered), or dropped as "rejected"
        (refused for good) or "overflow" (no room left in the retry buffer). An item never tried has none."""
        span, traced.span = traced.span, None
        if span is None:
            return
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415 - loaded with the tracer's SDK already

        span.set_attribute("otel_fakegpu.push.attempts", traced.attempts)
        if outcome != "ok":
            span.set_attribute("otel_fakegpu.push.dropped", outcome)
            span.set_status(Status(StatusCode.ERROR, f"dropped ({outcome})"))
        span.end()

    def shutdown(self) -> None:
        """Flush queued spans (bounded by the SDK's export timeout)."""
        if self._provider is not None:
            self._provider.shutdown()


@contextmanager
def _failure_recorded(traced: TracedItem[T]) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        traced.errors.append(reason)
        if traced.span is not None:
            traced.span.add_event("attempt failed", {"attempt": traced.attempts, "error": reason})
        raise


def span_name(consumer: object) -> str:
    """What a cycle output's span is called: its ``span_name`` when it has one."""
    name = getattr(consumer, "span_name", None)
    return name if isinstance(name, str) else f"output {type(consumer).__name__}"

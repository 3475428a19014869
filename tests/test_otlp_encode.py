"""The caching OTLP encoder produces exactly the stock encoder's request, and both stock exporters use it."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.types import Attributes

from otel_fakegpu.fields import collectors_preset_path, load_collectors
from otel_fakegpu.outputs import OtlpSettings
from otel_fakegpu.outputs.batching import split
from otel_fakegpu.outputs.otlp import make_exporter
from otel_fakegpu.outputs.otlp_encode import CachingMetricsEncoder
from tests.conftest import build_stack


def _pipeline_cycle() -> MetricsData:
    stack = build_stack(
        6, ["faulty", "chaos", "stable"], collectors=load_collectors(collectors_preset_path("digitalocean"))
    )
    for _ in range(5):
        stack.clock.advance(1.0)
        stack.simulator.step()
        stack.cycle()
    return stack.pipeline.collect(stack.pipeline.read(stack.engine))


def test_equal_to_the_stock_encoder_for_a_pipeline_cycle() -> None:
    data = _pipeline_cycle()
    encoder = CachingMetricsEncoder()
    for _ in range(2):  # cold, then with every attribute set cached
        assert encoder.encode(data) == encode_metrics(data)
    for piece in split(data, 50):
        assert encoder.encode(piece) == encode_metrics(piece)
    assert encoder.stock_fallbacks == 0  # every request took the fast path


def _sdk_data(record: Attributes) -> MetricsData:
    """Odd shapes straight from the SDK: every instrument kind, with the attributes given."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource.create({"service.name": "t", "n": 3}), metric_readers=[reader])
    meter = provider.get_meter("scope-a", "1.0", schema_url="https://opentelemetry.io/schemas/1.21.0")
    attrs = record
    meter.create_counter("c", unit="By", description="d").add(5, attrs)
    meter.create_up_down_counter("ud").add(-7, attrs)
    meter.create_gauge("g").set(0.0, attrs)
    meter.create_gauge("neg").set(-(2**63), attrs)
    provider.get_meter("scope-b").create_counter("f").add(2.5)
    data = reader.get_metrics_data()
    assert data is not None
    provider.shutdown()
    return data


@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"gpu": "0", "flag": True, "n": 7, "ratio": 0.5},
        {"list": ["a", "b"]},  # structured: left to the stock encoder
    ],
    ids=["none", "scalars", "sequence"],
)
def test_equal_to_the_stock_encoder_for_every_instrument_kind(attributes: Attributes) -> None:
    data = _sdk_data(attributes)
    encoder = CachingMetricsEncoder()
    assert encoder.encode(data) == encode_metrics(data)
    assert encoder.stock_fallbacks == (1 if attributes and "list" in attributes else 0)


def test_histograms_are_left_to_the_stock_encoder() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("h").create_histogram("latency").record(3.0, {"k": "v"})
    data = reader.get_metrics_data()
    assert data is not None
    encoder = CachingMetricsEncoder()
    assert encoder.encode(data) == encode_metrics(data)
    assert encoder.stock_fallbacks == 1
    provider.shutdown()


@pytest.mark.parametrize(
    ("protocol", "endpoint", "expected"),
    [("grpc", "127.0.0.1:4317", "CachingGrpcExporter"), ("http/protobuf", "http://127.0.0.1:4318/v1/metrics",
                                                           "CachingHttpExporter")],
)  # fmt: skip
def test_the_stock_exporters_encode_through_it(protocol: str, endpoint: str, expected: str) -> None:
    exporter = make_exporter(OtlpSettings(endpoint, protocol, insecure=True))
    try:
        assert type(exporter).__name__ == expected
    finally:
        exporter.shutdown()

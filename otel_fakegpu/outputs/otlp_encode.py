"""OTLP encoding that converts each attribute set once, not once per point.

The stock ``encode_metrics`` builds every point's attribute messages afresh: at 4096 GPUs that is 700,000
KeyValue messages per cycle and two thirds of the push time. Every GPU's points share one attribute set, so
here each set is serialised once (by protobuf) and kept; a point is then its fixed-width fields followed by
those bytes, and each metric's points are parsed into the message in one C call. Resources and scopes still
go through the stock encoder, and the result equals ``encode_metrics``' request (tested).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb2
from opentelemetry.sdk.metrics.export import Gauge, Metric, MetricsData, NumberDataPoint, Sum

log = logging.getLogger(__name__)

AttributeKey = tuple[tuple[str, Any], ...]
# Attribute sets are per GPU (shared by all its metrics), so this holds a large fleet many times over.
MAX_CACHED_SETS = 100_000

# NumberDataPoint's fixed-width fields, as (tag byte, value) pairs of the OTLP proto: start_time_unix_nano
# (field 2, fixed64), time_unix_nano (3, fixed64), as_double (4, double), as_int (6, sfixed64).
_GAUGE_DOUBLE = struct.Struct("<BQBd")
_GAUGE_INT = struct.Struct("<BQBq")
_SUM_DOUBLE = struct.Struct("<BQBQBd")
_SUM_INT = struct.Struct("<BQBQBq")
_START, _TIME, _DOUBLE, _INT = 0x11, 0x19, 0x21, 0x31


@dataclass(frozen=True)
class _EncodedSet:
    """One attribute set, serialised, with the length-delimited framing of a gauge and of a sum point."""

    attributes: bytes
    gauge_framing: bytes
    sum_framing: bytes


class _UnsupportedError(Exception):
    """Something this encoder leaves to the stock one (histograms, list-valued attributes)."""


def _any_value(value: object) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    raise _UnsupportedError(f"attribute value of type {type(value).__name__}")


class CachingMetricsEncoder:
    """``encode(data)`` equals ``encode_metrics(data)``, with attribute sets serialised once across cycles."""

    def __init__(self) -> None:
        self._sets: dict[AttributeKey, _EncodedSet] = {}
        self.stock_fallbacks = 0  # requests handed to the stock encoder

    def encode(self, data: MetricsData) -> ExportMetricsServiceRequest:
        try:
            return self._encode(data)
        except (_UnsupportedError, struct.error) as exc:  # struct.error: an integer beyond int64
            log.debug("stock OTLP encoding for this request: %s", exc)
            self.stock_fallbacks += 1
            return encode_metrics(data)

    def _encode(self, data: MetricsData) -> ExportMetricsServiceRequest:
        # The stock encoder does resources and scopes (few, and rich in types); metrics are added here.
        skeleton = replace(
            data,
            resource_metrics=[
                replace(rm, scope_metrics=[replace(sm, metrics=[]) for sm in rm.scope_metrics])
                for rm in data.resource_metrics
            ],
        )
        request = encode_metrics(skeleton)
        for rm, pb_rm in zip(data.resource_metrics, request.resource_metrics, strict=True):
            for sm, pb_sm in zip(rm.scope_metrics, pb_rm.scope_metrics, strict=True):
                pb_sm.metrics.extend(self._metric(metric) for metric in sm.metrics)
        return request

    def _metric(self, metric: Metric) -> pb2.Metric:
        pb_metric = pb2.Metric(name=metric.name, description=metric.description or "", unit=metric.unit or "")
        data = metric.data
        if not isinstance(data, (Gauge, Sum)):
            raise _UnsupportedError(f"{type(data).__name__} data in {metric.name}")
        if not data.data_points:  # as the stock encoder: no points, no data field at all
            return pb_metric
        if isinstance(data, Gauge):
            pb_metric.gauge.MergeFromString(b"".join(map(self._gauge_point, data.data_points)))
        else:
            pb_metric.sum.MergeFromString(b"".join(map(self._sum_point, data.data_points)))
            pb_metric.sum.aggregation_temporality = data.aggregation_temporality  # type: ignore[assignment]
            pb_metric.sum.is_monotonic = data.is_monotonic
        return pb_metric

    def _gauge_point(self, point: NumberDataPoint) -> bytes:
        encoded = self._set(point.attributes)
        value = point.value
        if type(value) is int:
            fields = _GAUGE_INT.pack(_TIME, point.time_unix_nano, _INT, value)
        else:
            fields = _GAUGE_DOUBLE.pack(_TIME, point.time_unix_nano, _DOUBLE, value)
        return encoded.gauge_framing + fields + encoded.attributes

    def _sum_point(self, point: NumberDataPoint) -> bytes:
        encoded = self._set(point.attributes)
        value, start = point.value, point.start_time_unix_nano or 0
        if type(value) is int:
            fields = _SUM_INT.pack(_START, start, _TIME, point.time_unix_nano, _INT, value)
        else:
            fields = _SUM_DOUBLE.pack(_START, start, _TIME, point.time_unix_nano, _DOUBLE, value)
        return encoded.sum_framing + fields + encoded.attributes

    def _set(self, attributes: Mapping[str, Any] | None) -> _EncodedSet:
        key: AttributeKey = tuple(attributes.items()) if attributes else ()
        encoded = self._sets.get(key)
        if encoded is None:
            encoded = self._sets[key] = self._serialise(key)
        return encoded

    def _serialise(self, key: AttributeKey) -> _EncodedSet:
        if any(isinstance(v, (list, tuple, Mapping, bytes)) for _, v in key):
            raise _UnsupportedError("structured attribute values")
        if len(self._sets) >= MAX_CACHED_SETS:
            self._sets.clear()  # label churn (pods come and go): start over rather than grow without end
        attributes = pb2.NumberDataPoint(attributes=[KeyValue(key=k, value=_any_value(v)) for k, v in key])
        attribute_bytes = attributes.SerializeToString()
        return _EncodedSet(
            attribute_bytes,
            _framing(_GAUGE_DOUBLE.pack(_TIME, 1, _DOUBLE, 1.0) + attribute_bytes),
            _framing(_SUM_DOUBLE.pack(_START, 1, _TIME, 1, _DOUBLE, 1.0) + attribute_bytes),
        )


def _framing(point: bytes) -> bytes:
    """The tag and length protobuf writes before ``point`` in a data_points field (a varint: asked of
    protobuf rather than written here). ``point`` has every field non-zero, so none is left out."""
    framed: bytes = pb2.Gauge(data_points=[pb2.NumberDataPoint.FromString(point)]).SerializeToString()
    if not framed.endswith(point):
        raise _UnsupportedError("protobuf serialised a point differently")
    return framed[: len(framed) - len(point)]

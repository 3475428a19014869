"""A fast path through the OpenTelemetry SDK for attribute sets that are built once and reused every cycle.

For every point of every collection the SDK (1.45) cleans each attribute when it makes the ``Measurement``, then
copies the set, sorts it and hashes it into a nested tuple to find the series' aggregation. Measured on an 8-GPU
cycle that is nearly half of the cycle, and it is paid per attribute: three pod labels on every series cost 15 %
of a cycle (BENCHMARKS.md, "Workload attribution").

Our attribute sets are built once per entity and reused while the entity's identity holds (``LabelScheme``).
``FrozenAttributes`` is such a set, cleaned and hashed once, when it is made, by the SDK's own functions. Two narrow
hooks let the SDK use that work: cleaning hands a ``FrozenAttributes`` back as it is, and the aggregation lookup
uses its precomputed key (the same key the SDK would compute), storing the set itself instead of a copy (it cannot
change, which is why the SDK copies). Every other attribute set takes the SDK's own path, unchanged.

The hooks depend on SDK internals. ``install`` checks them and runs a small collection through both paths; when
anything differs (another SDK version), it installs nothing, logs why, ``frozen`` makes plain ``FixedAttributes``
(label_sets.py) and the SDK's own path runs: slower, never wrong. tests/test_sdk_fastpath.py fails when the hooks
stop installing, so an SDK upgrade cannot slow us silently; ``make test-sdk-next`` tries the newest SDK
(docs/sdk-hooks.md).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

from otel_fakegpu.telemetry.label_sets import FixedAttributes
from otel_fakegpu.telemetry.sdk_check import selfcheck_meter

log = logging.getLogger(__name__)


def _internal(module: str) -> ModuleType | None:
    """One of the SDK's internal modules; None where this SDK has no such module (``install`` then refuses)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


class _Hooks:
    """What ``install`` did in this process, and the SDK's internals it hooks (looked up by ``install``: the
    serving process, which renders nothing, never loads the SDK's metrics internals for them)."""

    vim: Any = None  # opentelemetry.sdk.metrics._internal._view_instrument_match
    measurement: Any = None  # opentelemetry.sdk.metrics._internal.measurement
    stock_clean: Any = None  # opentelemetry.attributes._clean_attribute_value
    stock_consume: Callable[..., None] | None = None
    status: str | None = None  # None before install, then "yes" or why not
    quick_keys = False  # whether a set of text labels gets its key without the SDK's recursion (install checks)


_hooks = _Hooks()


def _look_up_internals() -> None:
    """Imported by name, so that an SDK which moved them costs the fast path, never the import of the exporter."""
    _hooks.vim = _internal("opentelemetry.sdk.metrics._internal._view_instrument_match")
    _hooks.measurement = _internal("opentelemetry.sdk.metrics._internal.measurement")
    _hooks.stock_clean = getattr(_internal("opentelemetry.attributes"), "_clean_attribute_value", None)


class FrozenAttributes(FixedAttributes):
    """A fixed attribute set cleaned and hashed once, as the SDK would: its ``key`` is the SDK's lookup key."""

    __slots__ = ("key",)

    def __init__(self, attributes: Mapping[str, str]) -> None:
        key = _quick_key(attributes) if _hooks.quick_keys else None
        if key is None:
            super().__init__(_hooks.stock_clean(attributes, None))
            key = _hooks.vim._hash_attributes(self)
        else:
            super().__init__(attributes)  # text labels: the SDK's cleaning copies them as they are
        self.key: object = key


def _quick_key(attributes: Mapping[str, str]) -> object | None:
    """The SDK's key of a set of text labels (what ``_hash_attributes`` makes of it), without its recursion per
    label (4096 GPUs' sets: ~40 -> ~10 ms); None for a set with anything but non-empty text keys and text values."""
    for name, value in attributes.items():
        if type(name) is not str or not name or type(value) is not str:
            return None
    return "mapping", tuple([(name, ("str", attributes[name])) for name in sorted(attributes)])


def _quick_keys_fit() -> bool:
    """Whether quick keys and copies are the SDK's keys and cleaned sets, on sets like ours."""
    samples = [{}, {"gpu": "0", "UUID": "GPU-a", "Hostname": "h", "modelName": "NVIDIA H100"}, {"b": "1", "a": "2"}]
    for sample in samples:
        cleaned = _hooks.stock_clean(sample, None)
        if list(cleaned.items()) != list(sample.items()) or _quick_key(sample) != _hooks.vim._hash_attributes(cleaned):
            return False
    return True


def frozen(attributes: Mapping[str, str]) -> FixedAttributes:
    """``attributes`` as a set that never changes (itself when it already is one): a FrozenAttributes once the
    hooks are installed, a plain FixedAttributes (which the SDK's own path copies) when they are not."""
    if isinstance(attributes, FixedAttributes):
        return attributes
    if _hooks.status is None:
        install()
    return FrozenAttributes(attributes) if _hooks.status == "yes" else FixedAttributes(attributes)


def _clean(value: Any, max_string_value_length: int | None) -> Any:
    if type(value) is FrozenAttributes:
        return value
    return _hooks.stock_clean(value, max_string_value_length)


def _consume_measurement(self: Any, measurement: Any, should_sample_exemplar: bool = True) -> None:
    """The SDK's ``_ViewInstrumentMatch.consume_measurement``, minus the per-point copy, sort and hash for a
    FrozenAttributes under a View that keeps every attribute (ours do)."""
    attributes = measurement.attributes
    if type(attributes) is FrozenAttributes and self._view._attribute_keys is None and not self._reset_on_collect:
        aggregation = self._attributes_aggregation.get(attributes.key)
        if aggregation is None:
            with self._lock:
                aggregation = self._get_or_create_aggregation(attributes.key, attributes)
        aggregation.aggregate(measurement, should_sample_exemplar)
        return
    assert _hooks.stock_consume is not None
    _hooks.stock_consume(self, measurement, should_sample_exemplar)


def _points(use_fast: bool) -> list[tuple[str, Any, dict[str, Any]]]:
    """A small collection (a gauge and a counter, two cycles, one set changing) as sorted comparable tuples."""
    from opentelemetry.metrics import Observation  # noqa: PLC0415 (only the self-check needs these)
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415

    sets = [{"gpu": "0", "UUID": "GPU-a"}, {"gpu": "1", "UUID": "GPU-b", "pod": "p"}]
    wrap: Callable[[dict[str, str]], Mapping[str, str]] = FrozenAttributes if use_fast else dict
    made = [wrap(s) for s in sets]
    cycle = [0]

    def observe(_: object) -> Iterable[Observation]:
        cycle[0] += 1
        return [Observation(cycle[0] * 10 + i, attrs) for i, attrs in enumerate(made)]

    reader = InMemoryMetricReader()
    provider, meter = selfcheck_meter(reader)
    meter.create_observable_gauge("g", callbacks=[observe])
    meter.create_observable_counter("c", callbacks=[observe])
    found = []
    for _ in range(2):
        data = reader.get_metrics_data()
        for metric in data.resource_metrics[0].scope_metrics[0].metrics if data else ():
            found += [
                (metric.name, getattr(p, "value", None), dict(p.attributes or {})) for p in metric.data.data_points
            ]
        made[1] = wrap({**sets[1], "pod": "q"})
    provider.shutdown()
    return sorted(found, key=repr)


def install() -> bool:
    """Install the hooks once per process; False (and the SDK's own path) if this SDK is not the one they fit."""
    if _hooks.status is not None:
        return _hooks.status == "yes"
    _look_up_internals()
    _vim, _measurement, _stock_clean = _hooks.vim, _hooks.measurement, _hooks.stock_clean
    cls: Any = getattr(_vim, "_ViewInstrumentMatch", None)
    clean_is_stock = _stock_clean is not None and getattr(_measurement, "_clean_attribute_value", None) is _stock_clean
    missing = [
        name
        for name, present in (
            ("measurement._clean_attribute_value", clean_is_stock),
            ("_view_instrument_match._hash_attributes", hasattr(_vim, "_hash_attributes")),
            ("_ViewInstrumentMatch.consume_measurement", hasattr(cls, "consume_measurement")),
            ("_ViewInstrumentMatch._get_or_create_aggregation", hasattr(cls, "_get_or_create_aggregation")),
        )
        if not present
    ]
    if missing:
        return _refuse(f"this SDK lacks {', '.join(missing)}")
    expected = _points(use_fast=False)
    _hooks.quick_keys = _quick_keys_fit()  # the check below runs with them
    _hooks.stock_consume = cls.consume_measurement
    setattr(_measurement, "_clean_attribute_value", _clean)  # noqa: B010 (a module's private name: setattr says so)
    cls.consume_measurement = _consume_measurement
    try:
        same = _points(use_fast=True) == expected
    except Exception as exc:  # any surprise in the SDK's internals: back to its own path
        same, why = False, f"{type(exc).__name__}: {exc}"
    else:
        why = "a self-check collection differed from the SDK's own"
    if not same:
        setattr(_measurement, "_clean_attribute_value", _stock_clean)  # noqa: B010
        cls.consume_measurement = _hooks.stock_consume
        _hooks.quick_keys = False
        return _refuse(why)
    _hooks.status = "yes"
    return True


def _refuse(why: str) -> bool:
    _hooks.status = why
    log.warning("OpenTelemetry SDK fast path not installed (%s): attribute sets take the SDK's own, slower path", why)
    return False


def status() -> str | None:
    """``"yes"`` once installed, the reason when refused, None before ``install``."""
    return _hooks.status


def quick_keys_status() -> str | None:
    """Whether text label sets get quick keys: ``"yes"``, why not, or None before ``install``."""
    if _hooks.status is None:
        return None
    return "yes" if _hooks.quick_keys else "they differed from the SDK's keys, or the fast path is not installed"

"""Forget the SDK's series whose attribute set is gone: a pod that left, a job that ended, a MIG layout replaced.

The SDK (1.45) keeps one aggregation per attribute set an instrument ever saw, for the life of its MeterProvider;
an observable instrument's set that stops being observed just stops producing points. With workload attribution
every pod that comes and goes leaves one aggregation per exported field behind: measured, 200 job changes on 8 GPUs
left 40,212 aggregations (200 per change, none freed), so a node with steady job churn grew without bound.

After a collection in which new attribute sets were made (``FixedAttributes.made`` moved: nothing changes
otherwise, and nothing is done), every aggregation whose attribute set produced no point anywhere in that
collection is dropped. A set that comes back later gets a fresh aggregation, as a new series would.

This reaches into SDK internals and rests on one fact of 1.45: a point's attributes are its aggregation's own
object. Were they a copy, every aggregation would be dropped after each change and every counter would restart.
``install`` checks it once per process against the SDK actually installed (a counter that stays must keep its
value and start time across a prune, one that left must go); when it does not hold, pruning stays off with one
warning and the SDK's own behaviour (growth included) stays.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData

from otel_fakegpu.telemetry.label_sets import FixedAttributes
from otel_fakegpu.telemetry.sdk_check import SelfCheck, selfcheck_meter
from otel_fakegpu.telemetry.sdk_fastpath import frozen

log = logging.getLogger(__name__)


def view_matches(provider: MeterProvider) -> Iterator[Any]:
    """The provider's view matches, in the order they were made (sdk_shared.py relies on it)."""
    storages = provider._measurement_consumer._reader_storages
    for storage in storages.values():
        for matches in storage._instrument_view_instrument_matches.values():
            yield from matches


def observed_sets(data: MetricsData) -> set[int]:
    """The identities of the attribute sets with a point in ``data`` (each is its aggregation's own object)."""
    return {
        id(point.attributes)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    }


def prune(provider: MeterProvider, observed: set[int]) -> int:
    """Drops ``provider``'s aggregations whose attribute set is not in ``observed``; returns how many went."""
    pruned = 0
    for match in view_matches(provider):
        with match._lock:
            aggregations = match._attributes_aggregation
            # Most cycles prune nothing: look before building a new dict (a fleet runs thousands per cycle).
            stale = [key for key, aggregation in aggregations.items() if id(aggregation._attributes) not in observed]
            if stale:
                match._attributes_aggregation = {k: a for k, a in aggregations.items() if id(a._attributes) in observed}
                pruned += len(stale)
    return pruned


def _counter_across_a_prune() -> tuple[int, list[dict[str, tuple[int, float]]]]:
    """A counter over three collections: pod ``a`` stays, ``b`` leaves and ``c`` comes after the first; pruned
    after the second. Returns how many aggregations went and, per collection, pod -> (start time, value)."""
    stays, leaves, comes = (frozen({"pod": pod}) for pod in "abc")
    rounds = [[(stays, 10), (leaves, 5)], [(stays, 20), (comes, 1)], [(stays, 30), (comes, 2)]]
    now = [0]

    def observe(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, attributes) for attributes, value in rounds[now[0]]]

    reader = InMemoryMetricReader()
    provider, meter = selfcheck_meter(reader)
    meter.create_observable_counter("c", callbacks=[observe])
    pruned, seen = 0, []
    try:
        for now[0] in range(len(rounds)):
            data = reader.get_metrics_data()
            assert data is not None
            if now[0] == 1:
                pruned = prune(provider, observed_sets(data))
            points = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
            seen.append(
                {str((p.attributes or {})["pod"]): (p.start_time_unix_nano, getattr(p, "value", 0)) for p in points}
            )
    finally:
        provider.shutdown()
    return pruned, seen


def _check() -> str | None:
    """None when pruning does what it must on this SDK, else what went wrong."""
    pruned, seen = _counter_across_a_prune()
    if pruned != 1:
        return f"a prune that should drop 1 aggregation dropped {pruned}"
    if seen[2].get("a") != (seen[0]["a"][0], 30) or set(seen[2]) != {"a", "c"}:
        return "a counter that stayed did not keep its start time and value across a prune"
    return None


_install = SelfCheck(_check, "stale attribute sets are not pruned on this OpenTelemetry SDK (%s): series stay", log)


def install() -> bool:
    """Check the SDK once per process; False (pruning off, one warning) when it is not as pruning needs."""
    return _install.passed()


def status() -> str | None:
    """``"yes"`` once checked and on, the reason when off, None before ``install``."""
    return _install.status


class StaleSetPruner:
    """Drops a provider's aggregations whose attribute set was not observed, after collections that made sets."""

    def __init__(self, provider: MeterProvider) -> None:
        self._provider = provider
        self.enabled = install()
        self._made_at_last_prune = FixedAttributes.made
        self._first = True
        self.pruned_total = 0

    def after_collection(self, data: MetricsData) -> int:
        """Prune if attribute sets were made since the last time; returns how many aggregations went."""
        first, self._first = self._first, False
        if not self.enabled or FixedAttributes.made == self._made_at_last_prune:
            return 0
        self._made_at_last_prune = FixedAttributes.made
        if first:  # its first collection made every series it prunes (its provider's, its scope's): none is stale
            return 0
        try:
            pruned = prune(self._provider, observed_sets(data))
        except AttributeError as exc:  # passed the check, then differed: keep the SDK's behaviour, say so once
            self.enabled = False
            log.warning("stale attribute sets are no longer pruned on this OpenTelemetry SDK (%s)", exc)
            return 0
        self.pruned_total += pruned
        return pruned

"""Forget the SDK's series whose attribute set is gone: a pod that left, a job that ended, a MIG layout replaced.

The SDK (1.45) keeps one aggregation per attribute set an instrument ever saw, for the life of its MeterProvider;
an observable instrument's set that stops being observed just stops producing points. With workload attribution
every pod that comes and goes leaves one aggregation per exported field behind: measured, 200 job changes on 8 GPUs
left 40,212 aggregations (200 per change, none freed), so a node with steady job churn grew without bound.

After a collection in which new attribute sets were made (``FrozenAttributes.made`` moved: nothing changes
otherwise, and nothing is done), every aggregation whose attribute set produced no point anywhere in that
collection is dropped. A set that comes back later gets a fresh aggregation, as a new series would. This reaches
into SDK internals; they are checked on first use, and when they differ the pruning is switched off with one
warning (the SDK's own behaviour then stays, growth included).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricsData

from otel_fakegpu.telemetry.sdk_fastpath import FrozenAttributes

log = logging.getLogger(__name__)


def _view_matches(provider: MeterProvider) -> Iterator[Any]:
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


class StaleSetPruner:
    """Drops a provider's aggregations whose attribute set was not observed, after collections that made sets."""

    def __init__(self, provider: MeterProvider) -> None:
        self._provider = provider
        self._made_at_last_prune = FrozenAttributes.made
        self.enabled = True
        self.pruned_total = 0

    def after_collection(self, data: MetricsData) -> int:
        """Prune if attribute sets were made since the last time; returns how many aggregations went."""
        if not self.enabled or FrozenAttributes.made == self._made_at_last_prune:
            return 0
        self._made_at_last_prune = FrozenAttributes.made
        try:
            pruned = self._prune(observed_sets(data))
        except AttributeError as exc:  # another SDK's internals: keep its behaviour, say so once
            self.enabled = False
            log.warning("stale attribute sets are not pruned on this OpenTelemetry SDK (%s)", exc)
            return 0
        self.pruned_total += pruned
        return pruned

    def _prune(self, observed: set[int]) -> int:
        pruned = 0
        for match in _view_matches(self._provider):
            with match._lock:
                kept = {
                    key: aggregation
                    for key, aggregation in match._attributes_aggregation.items()
                    if id(aggregation._attributes) in observed
                }
                pruned += len(match._attributes_aggregation) - len(kept)
                match._attributes_aggregation = kept
        return pruned

"""``build_host``: the one place one host's stack is wired, engine ← simulator (with its scenario), attribution
and the telemetry pipeline, from a Config. The worker's collection, the backfill command and the tests' in-process
stack all build their host here; they differ only in the Config, the clock, the engine and the attribution."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from otel_fakegpu.attribution import AttributionStage
from otel_fakegpu.attribution.settings import build_source
from otel_fakegpu.config.model import Config
from otel_fakegpu.engine import Engine
from otel_fakegpu.fields import CollectorSet
from otel_fakegpu.host.engine_choice import make_engine
from otel_fakegpu.sim import FleetSpec, ScenarioClock, Simulator, Workload
from otel_fakegpu.telemetry import (
    CycleStats,
    LabelScheme,
    SelfMetric,
    TelemetryPipeline,
    default_resource,
    sample_keep_age_s,
)
from otel_fakegpu.telemetry.process_metrics import process_metrics

Clock = Callable[[], float]
FROM_CONFIG: Literal["from config"] = "from config"  # build_host's default attribution: the Config's source


@dataclass
class HostStack:
    """One host's engine, simulator (None for real GPUs), attribution stage and telemetry pipeline."""

    config: Config
    engine: Engine
    simulator: Simulator | None
    attribution: AttributionStage | None
    pipeline: TelemetryPipeline = field(init=False)
    stats: CycleStats = field(default_factory=CycleStats)
    self_metrics: list[SelfMetric] = field(default_factory=list)  # beside the cycle's own, on every pipeline
    keep_samples_s: float = 60.0  # how long the engine keeps event samples for the count windows

    def new_pipeline(self, collectors: CollectorSet, previous: TelemetryPipeline | None = None) -> TelemetryPipeline:
        """A pipeline over ``collectors`` watching the engine; ``previous`` hands over its counters (a reload)."""
        config = self.config
        pipeline = TelemetryPipeline(
            collectors,
            LabelScheme(
                config.hostname,
                collectors.labels,
                config.label_style,
                "uuid" if config.attribution.style.old_names else "UUID",
                config.exporter_release.host_label,
            ),
            default_resource(config.service_name, config.host_identity, config.resource_attributes),
            self.stats,
            lambda: self.engine.reads_total,
            self.self_metrics,
            config.otlp is not None and config.otlp.naming != "dcgm",
            config.count_windows_ms,
            previous,
            self.attribution,
            config.attribution.jobstats,
            config.attribution.virtual_gpus,
        )
        # Before the simulator's first update, so no event is missed.
        pipeline.watch(self.engine, self.keep_samples_s)
        if self.simulator is not None and collectors.reads_switches:
            self.simulator.watch_switches()
        return pipeline


def build_host(
    config: Config,
    collectors: CollectorSet,
    *,
    engine: Engine | None = None,
    clock: Clock = time.time,
    attribution: AttributionStage | Literal["from config"] | None = FROM_CONFIG,
    self_metrics: Callable[[Engine], Sequence[SelfMetric]] | None = None,
    keep_samples_s: float | None = None,
) -> HostStack:
    """The host ``config`` describes, its simulated values on ``clock``. Its fleet is ``config``'s own (a scenario's
    fleet is already in it); real GPUs get no simulator. ``self_metrics`` (of the engine chosen) adds to the cycle's
    own on the page; ``keep_samples_s`` defaults to what one late cycle needs."""
    engine = engine or make_engine(config, clock=clock)
    simulator = _simulator(config, engine, clock) if config.engine.simulated else None
    if attribution == FROM_CONFIG:
        attribution = _attribution(config, simulator)
    host = HostStack(
        config,
        engine,
        simulator,
        attribution,
        self_metrics=[
            *(self_metrics(engine) if self_metrics else ()),
            *(process_metrics() if config.exporter_metrics else ()),
        ],
        keep_samples_s=sample_keep_age_s(config.collect_interval_s) if keep_samples_s is None else keep_samples_s,
    )
    host.pipeline = host.new_pipeline(collectors)
    return host


def _simulator(config: Config, engine: Engine, clock: Clock) -> Simulator:
    fleet = FleetSpec(config.num_gpus, config.profiles, config.skus, config.host_identity, config.seed, mig=config.mig)
    scenario = config.scenario
    # A scenario's time advances by a fixed amount per update, so it plays out the same every run.
    scenario_clock = ScenarioClock(clock, scenario.time_scale, config.update_interval_s) if scenario else None
    return Simulator(
        fleet,
        engine,
        clock=clock,
        scenario_clock=scenario_clock,
        events=scenario.events if scenario else (),
        workloads=scenario.workloads if scenario else (),
    )


def _attribution(config: Config, simulator: Simulator | None) -> AttributionStage | None:
    """The stage of the configured source; without a simulator (real GPUs) only a configured source attributes."""

    def running() -> list[Workload]:
        """The simulator's workloads running now: the default attribution source."""
        assert simulator is not None
        now = simulator.now_s()
        return [w for w in simulator.workloads() if w.active_at(now)]

    shared = config.scenario.shared_gpus() if config.scenario is not None else {}
    source = build_source(config.attribution, running if simulator is not None else None, shared)
    if source is None:
        return None
    return AttributionStage(
        source,
        config.attribution.style,
        config.attribution.timeout_for(config.collect_interval_s),
        interval_s=config.collect_interval_s,
    )

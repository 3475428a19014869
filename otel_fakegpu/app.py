"""Wires the stages of the flow together: engine ← simulator, telemetry pipeline, outputs, HTTP serving."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
import time
from collections.abc import Callable

from otel_fakegpu.attribution import AttributionStage
from otel_fakegpu.attribution.settings import build_source
from otel_fakegpu.config import Config, load_field_set
from otel_fakegpu.engine import Engine, EngineUnavailable
from otel_fakegpu.engines import engine_self_metrics, make_engine
from otel_fakegpu.fields import CollectorsError, CollectorSet
from otel_fakegpu.outputs import ExpositionCache, OtlpPushOutput, PrometheusOutput, PrometheusPushOutput
from otel_fakegpu.serve import (
    BoundSocket,
    HealthReport,
    Listeners,
    LiveWebConfig,
    UdsError,
    WebConfig,
    bind_unix_socket,
    build_app,
    evaluate,
    reload_on_sighup,
    start,
)
from otel_fakegpu.sim import FleetSpec, Simulator, Workload
from otel_fakegpu.telemetry import (
    Consumer,
    CycleRunner,
    CycleStats,
    LabelScheme,
    ResultCounter,
    SelfMetric,
    TelemetryPipeline,
    default_resource,
)

log = logging.getLogger(__name__)


# A cycle allocates about ten objects per series, nearly all freed by reference counting; the default gen-0
# threshold (700) still ran ~470 collections per 4096-GPU cycle, and full collections walked every long-lived
# object (identities, label and encoder caches), stalling scrapes on the GIL for up to 0.2 s.
GC_THRESHOLDS = (100_000, 20, 20)


def settle_memory() -> None:
    """After start-up: move what lives for the whole run out of the collector's sight, collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def sample_keep_age_s(collect_interval_s: float) -> float:
    """How long the engine keeps event samples: enough for a cycle that runs late or fails once."""
    return max(60.0, 4 * collect_interval_s)


class Exporter:
    """The running exporter minus its listeners: engine, simulator, cycle, and the cached exposition."""

    def __init__(self, config: Config, collectors: CollectorSet, engine: Engine | None = None) -> None:
        self.config = config
        self.engine: Engine = engine or make_engine(config)
        # Real GPUs need no simulator; the embedded engine and DCGM injection are driven by one.
        fleet = FleetSpec(
            config.num_gpus, config.profiles, config.skus, config.host_identity, config.seed, mig=config.mig
        )
        self.simulator = Simulator(fleet, self.engine) if config.engine.simulated else None
        self.stats = CycleStats()
        self.cache = ExpositionCache()
        self.pushers: list[OtlpPushOutput | PrometheusPushOutput] = []
        if config.otlp is not None:
            self.pushers.append(OtlpPushOutput(config.otlp))
        if config.push_prometheus_url is not None:
            self.pushers.append(PrometheusPushOutput(config.push_prometheus_url, config.push_buffer_points))
        # Without a simulator (real GPUs) there are no simulated workloads: only a configured source attributes.
        source = build_source(config.attribution, self._running_workloads if self.simulator is not None else None)
        # One stage for the exporter's life: a reload builds a new pipeline around the same stage.
        self.attribution = (
            AttributionStage(
                source,
                config.attribution.style,
                config.attribution.timeout_for(config.collect_interval_s),
                interval_s=config.collect_interval_s,
            )
            if source is not None
            else None
        )
        self.reloads = ResultCounter("otel_fakegpu_reloads_total", "Reloads (SIGHUP) by result.")
        self._extra_metrics: list[SelfMetric] = [m for pusher in self.pushers for m in pusher.self_metrics()]
        self._extra_metrics.append(self.reloads.metric)
        self._extra_metrics += engine_self_metrics(self.engine)
        self.pipeline = self._build_pipeline(collectors)
        # Before the simulator's first update, so no event is missed.
        self.pipeline.watch(self.engine, sample_keep_age_s(config.collect_interval_s))
        # Pushers only queue; first in line, their senders start encoding while the exposition renders.
        consumers: list[Consumer] = [*self.pushers, PrometheusOutput(self.cache)]
        self.cycle = CycleRunner(self.engine, self.pipeline, consumers, self.stats)
        # Further things a reload re-reads (the scenario file registers here): each raises to refuse the reload.
        self.reload_hooks: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _running_workloads(self) -> list[Workload]:
        """The simulator's workloads running now: the default attribution source."""
        simulator = self.simulator
        if simulator is None:
            return []
        now = simulator.now_s()
        return [w for w in simulator.workloads() if w.active_at(now)]

    def _build_pipeline(self, collectors: CollectorSet, previous: TelemetryPipeline | None = None) -> TelemetryPipeline:
        config = self.config
        return TelemetryPipeline(
            collectors,
            LabelScheme(
                config.hostname,
                collectors.labels,
                config.label_style,
                "uuid" if config.attribution.style.old_names else "UUID",
            ),
            default_resource(config.service_name, config.host_identity, config.resource_attributes),
            self.stats,
            lambda: self.engine.reads_total,
            self._extra_metrics,
            config.otlp is not None and config.otlp.naming != "dcgm",
            config.count_windows_ms,
            previous,
            self.attribution,
            config.attribution.jobstats,
        )

    def reload(self, serving_error: str | None = None) -> dict[str, object]:
        """SIGHUP, collection side: re-read the collectors file (and run the reload hooks), swap the pipeline between
        two cycles and publish a cycle at once. A bad file is one logged line and the running set stays.

        ``serving_error`` is the serving side's own failure (its web config), counted in the same result. Takes and
        returns plain data, so it can become a message to a worker process."""
        errors = [serving_error] if serving_error else []
        try:
            collectors = load_field_set(self.config)
            for hook in self.reload_hooks:
                hook()
        except (CollectorsError, OSError, ValueError) as exc:
            log.error("reload failed, keeping the running configuration: %s", exc)
            errors.append(str(exc))
        else:
            pipeline = self._build_pipeline(collectors, self.pipeline)
            pipeline.watch(self.engine, sample_keep_age_s(self.config.collect_interval_s))
            previous = self.cycle.replace_pipeline(pipeline)
            self.pipeline = pipeline
            previous.shutdown()
            log.info("reloaded: %d metrics from %s", len(collectors.metrics), collectors.source)
        self.reloads.record(not errors)
        self.cycle.run_once()  # publish now: the new field set and the reload's count on the same page
        return {"ok": not errors, "errors": errors}

    def start(self) -> None:
        """Create the GPUs, run the first cycle before anything listens, then start the background loops."""
        for pusher in self.pushers:
            pusher.start(self._stop)
        loops = [("cycle", self.cycle.run, self.config.collect_interval_s)]
        if self.simulator is not None:
            self.simulator.start()
            loops.append(("simulator", self.simulator.run, self.config.update_interval_s))
        self.cycle.run_once()
        for name, loop, interval in loops:
            thread = threading.Thread(target=loop, args=(self._stop, interval), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def health(self) -> HealthReport:
        return evaluate(
            self.engine.status(),
            self.engine.reads_total,
            self.stats.view(),
            self.config.collect_interval_s,
            time.time(),
            self.pipeline.collections_total,
            None if self.attribution is None else self.attribution.status.as_dict(time.time()),
        )

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for pusher in self.pushers:
            pusher.close()
        self.pipeline.shutdown()
        if self.attribution is not None:
            self.attribution.close()
        self.engine.close()


async def serve(exporter: Exporter, listeners: Listeners) -> None:
    """Serve until SIGTERM or SIGINT; SIGHUP reloads."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    config = exporter.config
    live_web = LiveWebConfig(listeners.web)
    loop.add_signal_handler(signal.SIGHUP, reload_on_sighup(exporter.reload, live_web, config.web_config_path))
    runner = await start(build_app(exporter.cache, exporter.health, live_web), listeners)
    scheme = "https" if listeners.web.ssl_context else "http"
    if config.listen is not None:
        log.info("serving %s://%s/metrics", scheme, config.listen)
    if listeners.unix is not None:
        log.info(
            "serving http over unix socket %s (mode %04o)", listeners.unix.path, config.uds.mode if config.uds else 0
        )
    try:
        await stopping.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()


def run(config: Config, collectors: CollectorSet, web_config: WebConfig | None = None) -> int:
    """Start everything, serve until told to stop, shut down cleanly. Returns the exit code."""
    started = time.perf_counter()
    # Until serving starts (seconds for a large fleet) there is nothing to reload; SIGHUP must not end the process.
    signal.signal(signal.SIGHUP, lambda signum, frame: log.info("SIGHUP during start-up: nothing to reload yet"))
    unix: BoundSocket | None = None
    try:
        unix = bind_unix_socket(config.uds) if config.uds else None
    except UdsError as exc:
        log.error("%s", exc)
        return 2
    try:
        exporter = Exporter(config, collectors)
    except EngineUnavailable as exc:
        log.error("%s", exc)
        if unix is not None:
            unix.remove()
        return 2
    exporter.start()
    settle_memory()
    log.info(
        "%d GPUs (%s engine), %d metrics from %s, first cycle ready in %.2f s",
        len(exporter.engine.entity_ids()),
        config.engine.kind,
        len(collectors.metrics),
        collectors.source,
        time.perf_counter() - started,
    )
    tcp = (config.listen.host, config.listen.port) if config.listen else None
    listeners = Listeners(tcp=tcp, unix=unix, web=web_config or WebConfig(), idle_timeout_s=config.idle_timeout_s)
    try:
        asyncio.run(serve(exporter, listeners))
    except OSError as exc:
        log.error("cannot listen on %s: %s", config.listen, exc.strerror or exc)
        return 2
    finally:
        exporter.stop()
        if unix is not None:
            unix.remove()
    return 0

"""One host's collection side: engine ← simulator, attribution, telemetry pipeline and outputs, as a worker
process drives it (start, step, run_cycle, reload, and the control API's requests)."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from otel_fakegpu.attribution.model import LabelStyle
from otel_fakegpu.config.model import Config, load_field_set
from otel_fakegpu.config.values import MAX_ERROR_CHARS, clip
from otel_fakegpu.engine import Engine
from otel_fakegpu.engine.replay import ReplayEngine
from otel_fakegpu.fields import CollectorsError, CollectorSet
from otel_fakegpu.host.engine_choice import engine_self_metrics
from otel_fakegpu.host.replay import ReplayPage, replay_collectors
from otel_fakegpu.host.spec import Handler, HostSpec
from otel_fakegpu.host.stack import FROM_CONFIG, build_host
from otel_fakegpu.outputs import Exposition, ExpositionCache, PrometheusOutput
from otel_fakegpu.outputs.disk_queue import DiskQueue, PushQueueSettings
from otel_fakegpu.sim import ScenarioReloader, SimulatorControl
from otel_fakegpu.telemetry import Consumer, CycleRunner, Liveness, ResultCounter, SelfMetric, default_resource
from otel_fakegpu.telemetry.labels import DCGM_EXPORTER_STYLE
from otel_fakegpu.telemetry.tracing import CycleTracing

if TYPE_CHECKING:
    from otel_fakegpu.outputs.otlp import OtlpPushOutput
    from otel_fakegpu.outputs.prometheus_push import PrometheusPushOutput

log = logging.getLogger(__name__)


class HostCollection:
    """One host's collection side: engine, simulator, cycle, outputs. Runs in a worker process."""

    def __init__(
        self, config: Config, collectors: CollectorSet, engine: Engine | None = None, rack: tuple[str, int] = ("r0", 0)
    ) -> None:
        self.config = config
        self.cache = ExpositionCache()
        self.pushers: list[OtlpPushOutput | PrometheusPushOutput] = []
        # The push outputs (and the OTLP exporters, gRPC or HTTP) load only when a push is configured.
        if config.otlp is not None:
            from otel_fakegpu.outputs.otlp import OtlpPushOutput  # noqa: PLC0415

            self.pushers.append(OtlpPushOutput(config.otlp, config.push_buffer_points))
        if config.push_prometheus_url is not None:
            from otel_fakegpu.outputs.prometheus_push import PrometheusPushOutput  # noqa: PLC0415

            self.pushers.append(PrometheusPushOutput(config.push_prometheus_url, config.push_buffer_points))
        if config.push_queue is not None:
            self._keep_on_disk(config.push_queue)
        self.reloads = ResultCounter("otel_fakegpu_reloads_total", "Reloads (SIGHUP) by result.")
        # One stage for the host's life: a reload builds a new pipeline around the same stage.
        # A replay's workload labels are the capture's: no attribution source adds its own.
        attribution = None if isinstance(engine, ReplayEngine) else FROM_CONFIG
        self.host = build_host(
            config, collectors, engine=engine, self_metrics=self._self_metrics, attribution=attribution
        )
        self.engine, self.simulator, self.attribution = self.host.engine, self.host.simulator, self.host.attribution
        self.stats, self.pipeline = self.host.stats, self.host.pipeline
        # The control API drives simulated GPUs; real ones offer none.
        self.control = (
            SimulatorControl(self.simulator, config.host_identity, *rack) if self.simulator is not None else None
        )
        # Pushers only queue; first in line, their senders start encoding while the exposition renders.
        # A replay puts the captured page's families back in their order, the captured text where it must.
        arrange = ReplayPage(self.engine) if isinstance(self.engine, ReplayEngine) else None
        consumers: list[Consumer] = [*self.pushers, PrometheusOutput(self.cache, arrange)]
        resource = default_resource(config.service_name, config.host_identity, config.resource_attributes)
        self.tracing = CycleTracing.build(config.tracing, resource)
        for pusher in self.pushers:
            pusher.tracing = self.tracing
        self.cycle = CycleRunner(self.engine, self.pipeline, consumers, self.stats, self.tracing)
        # Further things a reload re-reads (the scenario file registers here): each raises to refuse the reload.
        self.reload_hooks: list[Callable[[], None]] = []
        if config.scenario is not None and self.simulator is not None:
            self.reload_hooks.append(ScenarioReloader(self.simulator, config.scenario, config.num_gpus))
        self._stop = threading.Event()
        self.liveness = Liveness()  # the push senders' threads
        self._prepared = False

    def _keep_on_disk(self, settings: PushQueueSettings) -> None:
        """Each push target keeps its requests in its own folder of the queue directory, an equal share of it."""
        share = settings.queue_bytes(self.config.push_buffer_points, len(self.pushers))
        for pusher in self.pushers:
            if not pusher.can_keep_on_disk():
                log.warning("%s push: this OpenTelemetry release cannot send kept requests: memory only", pusher.target)
                continue
            folder = settings.directory / pusher.target
            pusher.use_disk(DiskQueue(folder, pusher.target, share, settings.min_free_bytes))

    def _self_metrics(self, engine: Engine) -> list[SelfMetric]:
        """The pushers', the reloads' and the engine's own counters, beside the cycle's on every page."""
        metrics: list[SelfMetric] = [m for pusher in self.pushers for m in pusher.self_metrics()]
        return [*metrics, self.reloads.metric, *engine_self_metrics(engine)]

    def reload(self, serving_error: str | None = None) -> dict[str, object]:
        """SIGHUP, collection side: re-read the collectors file (and run the reload hooks), swap the pipeline between
        two cycles and publish a cycle at once. A bad file is one logged line and the running set stays.

        ``serving_error`` is the serving side's own failure (its web config), counted in the same result. Takes and
        returns plain data: it is the ``reload`` request the serving process sends to every worker."""
        errors = [serving_error] if serving_error else []
        try:
            # A replay's fields are its capture's, whatever the collectors file says.
            replay = isinstance(self.engine, ReplayEngine)
            collectors = replay_collectors(self.engine) if replay else load_field_set(self.config)  # type: ignore[arg-type]
            for hook in self.reload_hooks:
                hook()
        except (CollectorsError, OSError, ValueError) as exc:
            # Every host of a fleet meets the same bad file: the serving side logs it once (app.reload_every_host).
            log.debug("reload failed, keeping the running configuration: %s", exc)
            errors.append(clip(str(exc), MAX_ERROR_CHARS))  # logged by the serving side: a line, not the input
        else:
            pipeline = self.host.new_pipeline(collectors, self.pipeline)
            previous = self.cycle.replace_pipeline(pipeline)
            self.pipeline = pipeline
            previous.shutdown()
            log.info("reloaded: %d metrics from %s", len(collectors.metrics), collectors.source)
        self.reloads.record(not errors)
        self.cycle.run_once()  # publish now: the new field set and the reload's count on the same page
        return {"ok": not errors, "errors": errors}

    def prepare(self) -> None:
        """Create the simulated GPUs with their first readings: what can come before the serving process is ready
        to take the first cycle (a worker does it while that process loads aiohttp). ``start`` does it if needed."""
        if self.simulator is not None and not self._prepared:
            self.simulator.start()
        self._prepared = True

    def start(self) -> None:
        """Create the GPUs (unless ``prepare`` did) and run the first cycle (the worker then drives step and
        run_cycle)."""
        for pusher in self.pushers:
            pusher.start(self._stop, self.liveness)
        self.prepare()
        self.cycle.run_once()

    def step(self) -> None:
        if self.simulator is not None:
            self.simulator.step()
        if self.control is not None:
            self.control.host.fire_scripted()

    def take_fired(self) -> list[dict[str, Any]]:
        """Scripted events applied since the last call (for the serving side's history)."""
        return self.control.host.take_fired() if self.control is not None else []

    def run_cycle(self) -> bool:
        return self.cycle.run_once()

    def latest(self) -> Exposition | None:
        return self.cache.latest()

    def facts(self) -> dict[str, Any]:
        """What /health needs, as JSON-able values (it crosses the process boundary)."""
        status, view = self.engine.status(), self.stats.view()
        return {
            "engine": {"kind": status.kind, "state": status.state.value, "detail": status.detail},
            "reads_total": self.engine.reads_total,
            "sdk_collections_total": self.pipeline.collections_total,
            "cycles_total": view.cycles_total,
            "errors_total": view.errors_total,
            "last_ok_at": view.last_ok_at,
            "last_error": view.last_error,
            "series": view.series,
            "gpus": view.gpus,
            "gpus_missing": self.control.gpus_missing() if self.control is not None else [],
            # Raw fields, not an age: /health computes the map's age when it answers.
            "attribution": None if self.attribution is None else self.attribution.status.facts(),
            "dead_loops": self.liveness.dead(),
            "push_queue": {p.target: dataclasses.asdict(p.disk.state()) for p in self.pushers if p.disk is not None},
        }

    def handlers(self) -> Mapping[str, Handler]:
        """Request methods the serving side may call on this host (WorkerPool.call): control and reload hooks."""
        hooks: dict[str, Handler] = {"reload": lambda args: self.reload(args.get("serving_error"))}
        if self.control is not None:
            hooks.update(self.control.handlers())
        return hooks

    def serving(self) -> tuple[str, float]:
        """What this host's scrapers meet (a drill's reachability; real GPUs: always "ok")."""
        return self.control.host.serving() if self.control is not None else ("ok", 0.0)

    def stop(self) -> None:
        self._stop.set()
        for pusher in self.pushers:
            pusher.close()
        self.tracing.shutdown()
        self.pipeline.shutdown()
        if self.attribution is not None:
            self.attribution.close()
        self.engine.close()


def build_any_collection(config: Config, collectors: CollectorSet, host: HostSpec) -> HostCollection:
    """What a worker runs for one host: its collection, or with ``--engine replay`` the capture's host, its
    recorded Hostname and the fields its pages carry, through the same pipeline."""
    replay = config.engine.replay
    if replay is None:
        return build_collection(config, collectors, host)
    engine = ReplayEngine(replay.path, replay.speed, replay.loop)
    hostname = engine.current.hostname
    # Labels as recorded: dcgm-exporter's style and names, whatever --label-style or -o say.
    host_config = dataclasses.replace(
        config,
        hostname=hostname,
        host_identity=hostname or config.host_identity,
        label_style=DCGM_EXPORTER_STYLE,
        attribution=dataclasses.replace(config.attribution, style=LabelStyle()),
    )
    return HostCollection(host_config, replay_collectors(engine), engine=engine)


def build_collection(config: Config, collectors: CollectorSet, host: HostSpec) -> HostCollection:
    """The collection side of one host of the fleet: the config with that host's name."""
    hostname = None if config.hostname is None else host.name
    queue = config.push_queue
    if queue is not None and config.hosts > 1:  # a fleet: one folder per host, an equal share each
        mine = len(range(config.shard[0], config.hosts, config.shard[1]))
        queue = dataclasses.replace(
            queue,
            directory=queue.directory / f"host-{host.index}",
            max_bytes=None if queue.max_bytes is None else max(1, queue.max_bytes // mine),
        )
    changes = {"host_identity": host.name, "hostname": hostname, "push_queue": queue}
    host_config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
    return HostCollection(host_config, collectors, rack=(host.rack, host.rack_position))

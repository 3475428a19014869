"""Wires the process together: forks the worker processes that run each host's collection side (host/collection.py)
and serves what they publish (serving.py), with SIGHUP, SIGTERM and the control API on the serving side.

The fork comes as early as it can: the worker then imports its own stack (the simulator, the SDK pipeline, the
outputs) while this process imports asyncio, the event-loop side (pool.py, published.py) and aiohttp, so on two
cores the two largest imports of the start overlap; nothing the fork needs loads asyncio (spawn.py).
"""

from __future__ import annotations

import logging
import signal
import time
from functools import partial
from typing import TYPE_CHECKING

from otel_fakegpu.config.model import Config
from otel_fakegpu.fields import CollectorSet
from otel_fakegpu.host.spec import HostSpec
from otel_fakegpu.outputs.queue_lock import QueueLockError, lock_queue_dir
from otel_fakegpu.runtime.fleet import FleetPlan, fleet_racks, plan_fleet
from otel_fakegpu.runtime.memory import pin_mmap_threshold, settle_memory
from otel_fakegpu.runtime.spawn import WorkerHandle, first_variant, fork_workers
from otel_fakegpu.runtime.status import render_summary
from otel_fakegpu.runtime.worker import Collection, CollectionFactory, WorkerSettings
from otel_fakegpu.serve import BoundSocket, UdsError, bind_unix_socket

if TYPE_CHECKING:  # asyncio, ssl and aiohttp load after the fork, beside the worker's start (module docstring)
    from otel_fakegpu.serve import WebConfig

log = logging.getLogger(__name__)


def build_in_worker(config: Config, collectors: CollectorSet, host: HostSpec) -> Collection:
    """A worker's collection of ``host``: its modules load in the worker when the serving process did not load
    them before the fork (one worker: the fork then comes before them)."""
    from otel_fakegpu.host.collection import build_any_collection  # noqa: PLC0415 - see the module's docstring

    return build_any_collection(config, collectors, host)


def _fork_workers(plan: FleetPlan, factory: CollectionFactory, settings: WorkerSettings) -> list[WorkerHandle]:
    """Every worker of ``plan``, forked before the event-loop side is imported (spawn.py)."""
    if len(plan.assignments) > 1:  # several workers: import their stack once, before the fork, and share its pages
        import otel_fakegpu.host.collection  # noqa: F401, PLC0415
    settle_memory()  # before the fork, so the workers share the start-up pages instead of copying them
    return fork_workers(plan, factory, settings, frozenset({first_variant(len(plan.hosts))}))


def run(config: Config, collectors: CollectorSet, web_config: WebConfig | None = None) -> int:
    """Fork the workers, serve until told to stop, shut down cleanly. Returns the exit code."""
    started = time.perf_counter()
    pin_mmap_threshold()  # before any large buffer, and inherited by the workers
    # Until serving starts (seconds for a large fleet) there is nothing to reload; SIGHUP must not end the process.
    signal.signal(signal.SIGHUP, lambda signum, frame: log.info("SIGHUP during start-up: nothing to reload yet"))
    pushes = config.otlp is not None or config.push_prometheus_url is not None
    if config.push_queue is not None and pushes:  # before the workers fork: they inherit the lock until they exit
        try:
            lock_queue_dir(config.push_queue.directory)
        except QueueLockError as exc:
            log.error("%s", exc)
            return 2
    unix: BoundSocket | None = None
    try:
        unix = bind_unix_socket(config.uds) if config.uds else None
    except UdsError as exc:
        log.error("%s", exc)
        return 2
    plan = plan_fleet(config.host_identity, config.hosts, config.shard, config.workers, fleet_racks(config))
    settings = WorkerSettings(config.collect_interval_s, config.update_interval_s)
    factory = partial(build_in_worker, config, collectors)
    workers = _fork_workers(plan, factory, settings)
    import asyncio  # noqa: PLC0415 - it, the event-loop side and aiohttp load while the workers start

    from otel_fakegpu.runtime.pool import WorkerPool  # noqa: PLC0415
    from otel_fakegpu.runtime.published import PublishedFleet  # noqa: PLC0415
    from otel_fakegpu.runtime.serving import serve  # noqa: PLC0415
    from otel_fakegpu.serve import Listeners, WebConfig  # noqa: PLC0415

    racks = {host.name: {"rack": host.rack} for host in plan.hosts}
    published = PublishedFleet([host.name for host in plan.hosts], lambda fmt: render_summary(pool, fmt), racks)
    pool = WorkerPool(plan, factory, settings, published, workers)

    tcp = (config.listen.host, config.listen.port) if config.listen else None
    listeners = Listeners(tcp=tcp, unix=unix, web=web_config or WebConfig(), idle_timeout_s=config.idle_timeout_s)
    what = (
        f"{len(plan.hosts)} hosts x {config.num_gpus} GPUs ({config.engine.kind} engine) in {len(plan.assignments)} "
        f"worker processes, {len(collectors.metrics)} metrics from {collectors.source}"
    )
    try:
        return asyncio.run(serve(pool, listeners, config, started, what))
    finally:
        if unix is not None:
            unix.remove()

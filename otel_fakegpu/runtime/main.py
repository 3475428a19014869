"""Wires the process together: forks the worker processes that run each host's collection side (host/collection.py)
and serves what they publish, with SIGHUP, SIGTERM and the control API on the serving side."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from functools import partial

from otel_fakegpu.config.model import Config
from otel_fakegpu.fields import CollectorSet
from otel_fakegpu.host.collection import build_any_collection
from otel_fakegpu.outputs.queue_lock import QueueLockError, lock_queue_dir
from otel_fakegpu.runtime import (
    PublishedFleet,
    WorkerPool,
    WorkerSettings,
    health_report,
    pin_mmap_threshold,
    plan_fleet,
    render_summary,
    settle_memory,
)
from otel_fakegpu.runtime.fleet import fleet_racks
from otel_fakegpu.runtime.remote_control import RemoteControl
from otel_fakegpu.serve import (
    BoundSocket,
    Listeners,
    LiveWebConfig,
    UdsError,
    WebConfig,
    bind_unix_socket,
    build_app,
    reload_on_sighup,
    start,
)

log = logging.getLogger(__name__)


def reload_every_host(pool: WorkerPool) -> Callable[[str | None], Awaitable[dict[str, object]]]:
    """The serving side's ``reload``: every host's collection reloads (the workers at once); one result."""

    async def reload(serving_error: str | None) -> dict[str, object]:
        results = await pool.broadcast("reload", {"serving_error": serving_error})
        errors = sorted({error for result in results.values() for error in result.get("errors", [])})
        for error in errors:
            if error != serving_error:  # the web config's failure is logged where it is read
                log.error("reload failed, keeping the running configuration: %s", error)
        return {"ok": all(result.get("ok") for result in results.values()), "errors": errors}

    return reload


async def serve(pool: WorkerPool, listeners: Listeners, config: Config, started: float, what: str) -> int:
    """Wait for every worker's first cycle, serve until SIGTERM or SIGINT (SIGHUP reloads); returns the exit code."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    # Before the workers report: the scripted events of their first cycle go into the history too.
    control = RemoteControl(pool, config.num_gpus) if config.engine.simulated else None
    try:
        await pool.attach()
        failure = await pool.wait_ready()
        if failure is not None:
            log.error("%s", failure.message)
            return failure.exit_code
        log.info("%s, first cycle ready in %.2f s", what, time.perf_counter() - started)
        live_web = LiveWebConfig(listeners.web)
        reload = reload_on_sighup(reload_every_host(pool), live_web, config.web_config_path)
        loop.add_signal_handler(signal.SIGHUP, reload)
        app = build_app(
            pool.published, lambda: health_report(pool, time.time()), live_web, control, config.control_token
        )
        try:
            runner = await start(app, listeners)
        except OSError as exc:
            log.error("cannot listen on %s: %s", config.listen, exc.strerror or exc)
            return 2
        scheme = "https" if listeners.web.ssl_context else "http"
        if config.listen is not None:
            log.info("serving %s://%s/metrics", scheme, config.listen)
        if listeners.unix is not None:
            mode = config.uds.mode if config.uds else 0
            log.info("serving http over unix socket %s (mode %04o)", listeners.unix.path, mode)
        try:
            await stopping.wait()
            log.info("shutting down")
        finally:
            await runner.cleanup()
        return 0
    finally:
        await pool.close()


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
    racks = {host.name: {"rack": host.rack} for host in plan.hosts}
    published = PublishedFleet([host.name for host in plan.hosts], lambda fmt: render_summary(pool, fmt), racks)
    settings = WorkerSettings(config.collect_interval_s, config.update_interval_s)
    pool = WorkerPool(plan, partial(build_any_collection, config, collectors), settings, published)
    settle_memory()  # before the fork, so the workers share the start-up pages instead of copying them
    pool.spawn_all()
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

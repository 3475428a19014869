"""The serving process after the fork: waits for the workers' first cycle, then serves what they publish until
SIGTERM or SIGINT, with SIGHUP and the control API.

Imported by main.py only after the workers are forked: aiohttp, the largest import of the start, then loads while
the workers build their hosts, instead of before them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from otel_fakegpu.config.model import Config
from otel_fakegpu.runtime.pool import WorkerPool
from otel_fakegpu.runtime.remote_control import RemoteControl
from otel_fakegpu.runtime.status import health_report
from otel_fakegpu.serve import HealthReport, Listeners, LiveWebConfig, build_app, reload_on_sighup, start
from otel_fakegpu.serve.http import HELD_PAGES

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
        live_web = LiveWebConfig(listeners.web)

        def health() -> HealthReport:
            report = health_report(pool, time.time())
            report.body["front"] = app[HELD_PAGES].facts()  # scrapes answered before aiohttp (serve/front.py)
            return report

        # Built while the workers still start (it serves nothing until the listeners start, after their first cycle).
        app = build_app(pool.published, health, live_web, control, config.control_token)

        failure = await pool.wait_ready()
        if failure is not None:
            log.error("%s", failure.message)
            return failure.exit_code
        log.info("%s, first cycle ready in %.2f s", what, time.perf_counter() - started)
        reload = reload_on_sighup(reload_every_host(pool), live_web, config.web_config_path)
        loop.add_signal_handler(signal.SIGHUP, reload)
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

"""HTTP serving with aiohttp: /metrics from the cached bytes of the last cycle, /health, and an index.

A request never reads the engine, runs a collection or renders: N scrapers cost the same as one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from aiohttp import web

from otel_fakegpu.outputs import ExpositionCache
from otel_fakegpu.serve.health import HealthReport

log = logging.getLogger(__name__)

HealthProvider = Callable[[], HealthReport]

_INDEX = b"""<!doctype html>
<html><head><title>otel-fakegpu</title></head>
<body><h1>otel-fakegpu</h1>
<p>dcgm-exporter-compatible GPU metrics through OpenTelemetry.</p>
<ul><li><a href="/metrics">/metrics</a> (Prometheus text)</li>
<li><a href="/health">/health</a> (JSON: engine state, age of the last cycle)</li></ul>
</body></html>
"""


def build_app(cache: ExpositionCache, health: HealthProvider) -> web.Application:
    """The application shared by every listener (TCP now; a Unix socket serves the same app)."""

    async def metrics(request: web.Request) -> web.Response:
        exposition = cache.latest()
        if exposition is None:
            return web.Response(status=503, text="no collection cycle has completed yet\n")
        return web.Response(body=exposition.body, headers={"Content-Type": exposition.content_type})

    async def health_handler(request: web.Request) -> web.Response:
        report = health()
        return web.Response(
            status=report.status_code,
            body=json.dumps(report.body, indent=2).encode() + b"\n",
            content_type="application/json",
        )

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=_INDEX, content_type="text/html")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health_handler)
    app.router.add_get("/", index)
    return app


async def start_tcp(app: web.Application, host: str | None, port: int) -> web.AppRunner:
    """Bind ``host:port`` (every interface when host is None) and start serving."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    return runner

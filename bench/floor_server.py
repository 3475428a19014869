"""The floor: the same server library (aiohttp) answering with a fixed, pre-rendered body of the same size
as the exporter's (and its gzip form): the limit for a scrape. Usage: python -m bench.floor_server PORT GPUS"""

from __future__ import annotations

import gzip
import sys

from aiohttp import web

from bench.fleet import Fleet
from otel_fakegpu.outputs import PrometheusTextRenderer
from otel_fakegpu.telemetry import CycleStats, TelemetryPipeline, default_resource


def main() -> None:
    port, gpus = int(sys.argv[1]), int(sys.argv[2])
    fleet = Fleet(gpus)
    pipeline = TelemetryPipeline(
        fleet.collectors, fleet.labels, default_resource("floor", "bench"), CycleStats(), lambda: 0
    )
    body, _ = PrometheusTextRenderer().render(pipeline.collect(pipeline.read(fleet.engine)))
    zipped = gzip.compress(body, 1, mtime=0)

    async def metrics(request: web.Request) -> web.Response:
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return web.Response(body=zipped, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})
        return web.Response(body=body, headers={"Content-Type": "text/plain"})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    print("ready", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()

"""HTTP serving with aiohttp over TCP (optionally TLS + basic auth) and a Unix socket, one application.

/metrics is served from the last cycle's published bytes: a request never reads the engine, runs a collection
or renders, so N scrapers cost the same as one. Slow, idle or broken clients are aiohttp's to absorb: each
connection is a cheap coroutine, and connections that send no complete request are closed after the idle
timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware

from otel_fakegpu.outputs import Format
from otel_fakegpu.serve.accept import DEFAULT_IDLE_TIMEOUT_S, bind_tcp, quiet_accept_pauses
from otel_fakegpu.serve.control import MAX_BODY_BYTES, ControlPort, add_control_routes, control_guard
from otel_fakegpu.serve.control import PREFIX as CONTROL_PREFIX
from otel_fakegpu.serve.health import HealthReport
from otel_fakegpu.serve.negotiate import accepts_gzip, choose_format
from otel_fakegpu.serve.protocol import http1_only
from otel_fakegpu.serve.reach import drill_answer, truncate
from otel_fakegpu.serve.uds import BoundSocket, closes_after_response, over_unix_socket
from otel_fakegpu.serve.webconfig import LiveWebConfig, WebConfig

log = logging.getLogger(__name__)

HealthProvider = Callable[[], HealthReport]


class MetricsSource(Protocol):
    """Where the bytes come from (the serving process's copy of what the collection side published)."""

    def hosts(self) -> Sequence[str]: ...

    def host_labels(self, host: str) -> Mapping[str, str]:
        """Labels /sd adds to the host's target (its rack)."""
        ...

    def serving(self, host: str | None) -> tuple[str, float]:
        """The drill mode and delay of ``host``'s page (serve/reach.py); ("ok", 0) when not drilled."""
        ...

    async def exposition(self, host: str | None, fmt: Format, gzipped: bool) -> tuple[bytes, float] | None:
        """The body for ``host`` (None: /metrics) and the wall-clock start of its cycle; None before the first cycle;
        KeyError for an unknown host."""
        ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STREAM_ABOVE_BYTES = 1 << 20
STREAM_CHUNK_BYTES = 256 << 10
# aiohttp's default backlog (128) is re-applied to the listening socket when serving starts; a burst of
# connects beyond it is refused outright on a Unix socket (EAGAIN), so ask for what the kernel allows.
LISTEN_BACKLOG = 4096

_INDEX = b"""<!doctype html>
<html><head><title>otel-fakegpu</title></head>
<body><h1>otel-fakegpu</h1>
<p>dcgm-exporter-compatible GPU metrics through OpenTelemetry.</p>
<ul><li><a href="/metrics">/metrics</a> (Prometheus text; OpenMetrics and gzip on request)</li>
<li><a href="/health">/health</a> (JSON: engine state, age of the last cycle)</li>
<li><a href="/sd">/sd</a> (Prometheus HTTP service discovery: one target per simulated host)</li></ul>
</body></html>
"""


@dataclass(frozen=True)
class Listeners:
    """Where to serve: TCP (host None = every interface) and/or a bound Unix socket."""

    tcp: tuple[str | None, int] | None = None
    unix: BoundSocket | None = None
    web: WebConfig = field(default_factory=WebConfig)
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S


class _ClientErrorsToDebug(logging.Filter):
    """aiohttp logs each malformed request at ERROR with a traceback: a client could flood the log.
    Those are the client's mistakes; keep one debug line each."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            log.debug("rejected a malformed request: %s", str(exc).splitlines()[0])
            return False
        return True


def _quiet_client_errors() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _ClientErrorsToDebug) for f in server_log.filters):
        server_log.addFilter(_ClientErrorsToDebug())


def _auth_middleware(live: LiveWebConfig) -> Middleware:
    @web.middleware
    async def require_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        # The socket is guarded by file permissions; TCP by the web config's users; the control API by its token.
        if not live.config.users or over_unix_socket(request) or request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        auth = live.auth  # read once: a reload during the bcrypt check swaps it for the next request
        if await auth.check(request.headers.get("Authorization")):
            return await handler(request)
        return web.Response(
            status=401, text="unauthorized\n", headers={"WWW-Authenticate": 'Basic realm="otel-fakegpu"'}
        )

    return require_auth


@web.middleware
async def _close_for_socket_readers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On the Unix socket, answer hand-written requests with ``Connection: close`` (rule: closes_after_response).
    A streamed body has sent its headers before the handler returns: ``_stream`` asks the same question first."""
    response = await handler(request)
    if _closes_after_response(request):
        response.force_close()
    return response


def _closes_after_response(request: web.Request) -> bool:
    return over_unix_socket(request) and closes_after_response(
        (request.version.major, request.version.minor), request.headers.keys(), request.headers.get("Connection")
    )


def _headers_middleware(live: LiveWebConfig) -> Middleware:
    @web.middleware
    async def add_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers.update(live.config.headers)
        return response

    return add_headers


def build_app(
    source: MetricsSource,
    health: HealthProvider,
    web_config: WebConfig | LiveWebConfig | None = None,
    control: ControlPort | None = None,
    control_token: str | None = None,
) -> web.Application:
    """The application every listener serves; with a LiveWebConfig, users and headers follow its replacements;
    with ``control``, the control API too (see serve.control)."""
    live = web_config if isinstance(web_config, LiveWebConfig) else LiveWebConfig(web_config or WebConfig())

    async def serve_exposition(request: web.Request, host: str | None) -> web.StreamResponse:
        fmt = choose_format(request.headers.get("Accept"))
        gzipped = accepts_gzip(request.headers.get("Accept-Encoding"))
        if host is not None and host not in source.hosts():
            return web.Response(status=404, text=f"no host {host!r} here; see /sd\n")
        drill, delay_s = source.serving(host)
        if drill != "ok" and (answer := await drill_answer(request, drill, delay_s)) is not None:
            return answer
        try:
            published = await source.exposition(host, fmt, gzipped)
        except KeyError:
            return web.Response(status=404, text=f"no host {host!r} here; see /sd\n")
        if published is None:
            return web.Response(status=503, text="no collection cycle has completed yet\n")
        body, collected_at = published
        if drill == "truncated":
            body = truncate(body, gzipped)
        headers = {"Content-Type": fmt.content_type, "Vary": "Accept, Accept-Encoding"}
        # How old the served cycle is: while an engine fails, /metrics keeps the last good cycle, ageing.
        headers["Age"] = str(max(0, int(time.time() - collected_at)))
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        if len(body) <= STREAM_ABOVE_BYTES or request.method == "HEAD":
            return web.Response(body=body, headers=headers)
        return await _stream(request, body, headers)

    async def metrics(request: web.Request) -> web.StreamResponse:
        return await serve_exposition(request, None)

    async def host_metrics(request: web.Request) -> web.StreamResponse:
        return await serve_exposition(request, request.match_info["host"])

    async def service_discovery(request: web.Request) -> web.Response:
        scheme = "https" if live.config.ssl_context else "http"
        groups = [
            {
                "targets": [_sd_target(request)],
                "labels": {
                    "__metrics_path__": f"/hosts/{host}/metrics",
                    "__scheme__": scheme,
                    "instance": host,
                    **source.host_labels(host),
                },
            }
            for host in source.hosts()
        ]
        return web.Response(body=json.dumps(groups).encode(), content_type="application/json")

    async def health_handler(request: web.Request) -> web.Response:
        report = health()
        return web.Response(
            status=report.status_code,
            body=json.dumps(report.body, indent=2).encode() + b"\n",
            content_type="application/json",
        )

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=_INDEX, content_type="text/html")

    middlewares: list[Middleware] = [
        http1_only(),
        _close_for_socket_readers,
        _auth_middleware(live),
        _headers_middleware(live),
    ]
    if control is not None:
        middlewares.insert(1, control_guard(control_token))  # after http1_only: nothing else speaks first
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/hosts/{host}/metrics", host_metrics)
    app.router.add_get("/sd", service_discovery)
    app.router.add_get("/health", health_handler)
    app.router.add_get("/", index)
    if control is not None:
        add_control_routes(app, control, control_token)
    return app


_HOST_HEADER = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::([0-9]{1,5}))?")


def _sd_target(request: web.Request) -> str:
    """The address Prometheus should scrape: the Host header the client used when it is a host name or address with
    a port in range, else the address the connection came in on (a Host header is the client's to write)."""
    match = _HOST_HEADER.fullmatch(request.host or "")
    if match is not None and (match.group(1) is None or 0 < int(match.group(1)) < 65536):
        return request.host
    local = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(local, tuple) and len(local) >= 2:
        host = str(local[0])
        return f"[{host}]:{local[1]}" if ":" in host else f"{host}:{local[1]}"
    return "localhost"  # the Unix socket has no address to give


async def _stream(request: web.Request, body: bytes, headers: dict[str, str]) -> web.StreamResponse:
    """Large bodies go out in slices, waiting for each to drain. Written whole, a body the socket cannot take
    at once is copied into the connection's buffer: 64 slow scrapers of a 23 MB exposition would hold 1.5 GB."""
    response = web.StreamResponse(headers=headers)
    response.content_length = len(body)
    if _closes_after_response(request):
        response.force_close()  # before prepare: the headers then say ``Connection: close``
    await response.prepare(request)
    view = memoryview(body)
    try:
        for offset in range(0, len(body), STREAM_CHUNK_BYTES):
            await response.write(view[offset : offset + STREAM_CHUNK_BYTES])
        await response.write_eof()
    except ConnectionError:  # the client left mid-response: nothing to clean up, nothing to report
        log.debug("client disconnected during a %d-byte response", len(body))
    return response


async def start(app: web.Application, listeners: Listeners) -> web.AppRunner:
    """Start every configured listener on one runner; raises OSError if a TCP port cannot be bound."""
    _quiet_client_errors()
    quiet_accept_pauses(asyncio.get_running_loop())
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=listeners.idle_timeout_s,
        max_line_size=8190,
        max_field_size=8190,
        max_headers=64,
        lingering_time=0,  # a body no handler reads (POST /metrics) closes the connection instead of being drained
    )
    await runner.setup()
    try:
        if listeners.tcp is not None:
            ssl_context = listeners.web.ssl_context
            for sock in bind_tcp(*listeners.tcp):  # PausingListeners: out of descriptors, accepting pauses
                await web.SockSite(runner, sock, ssl_context=ssl_context, backlog=LISTEN_BACKLOG).start()
        if listeners.unix is not None:
            await web.SockSite(runner, listeners.unix.sock, backlog=LISTEN_BACKLOG).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner

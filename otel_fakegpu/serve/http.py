"""HTTP serving with aiohttp over TCP (optionally TLS + basic auth) and a Unix socket, one application.

/metrics is served from the last cycle's published bytes: a request never reads the engine, runs a collection
or renders, so N scrapers cost the same as one. On the Unix socket and TCP without TLS, scrapes of held pages are
answered in front of aiohttp (serve/front.py). Slow, idle or broken clients are aiohttp's to absorb: each
connection is a cheap coroutine, and connections that send no complete request are closed after the idle
timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware

from otel_fakegpu.serve.accept import DEFAULT_IDLE_TIMEOUT_S, bind_tcp, quiet_accept_pauses
from otel_fakegpu.serve.control import MAX_BODY_BYTES, ControlPort, add_control_routes, control_guard
from otel_fakegpu.serve.control import PREFIX as CONTROL_PREFIX
from otel_fakegpu.serve.front import FrontDoor, FrontSite, HeldPages
from otel_fakegpu.serve.health import HealthReport
from otel_fakegpu.serve.negotiate import NegotiationTable
from otel_fakegpu.serve.pages import (
    STREAM_ABOVE_BYTES,
    Handler,
    MetricsSource,
    cached_page_first,
    page_headers,
    stream_page,
)
from otel_fakegpu.serve.protocol import http1_only
from otel_fakegpu.serve.reach import drill_answer, truncate
from otel_fakegpu.serve.scrape_head import ScrapeHeads
from otel_fakegpu.serve.uds import BoundSocket, over_unix_socket, request_closes_after_response
from otel_fakegpu.serve.webconfig import LiveWebConfig, WebConfig

log = logging.getLogger(__name__)

HealthProvider = Callable[[], HealthReport]
HELD_PAGES = web.AppKey("held_pages", HeldPages)  # what a listener's front answers from (serve/front.py)


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
    A streamed body has sent its headers before the handler returns: ``stream_page`` asks the same question first."""
    response = await handler(request)
    if request_closes_after_response(request):
        response.force_close()
    return response


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

    negotiation = NegotiationTable()

    async def serve_exposition(request: web.Request, host: str | None) -> web.StreamResponse:
        variant = negotiation.variant(request.headers.get("Accept"), request.headers.get("Accept-Encoding"))
        if host is not None and host not in source.hosts():
            return web.Response(status=404, text=f"no host {host!r} here; see /sd\n")
        drill, delay_s = source.serving(host)
        if drill != "ok" and (answer := await drill_answer(request, drill, delay_s)) is not None:
            return answer
        try:
            published = await source.exposition(host, *variant)
        except KeyError:
            return web.Response(status=404, text=f"no host {host!r} here; see /sd\n")
        if published is None:
            return web.Response(status=503, text="no collection cycle has completed yet\n")
        body, collected_at = published
        if drill == "truncated":
            body = truncate(body, variant[1])
        if len(body) <= STREAM_ABOVE_BYTES or request.method == "HEAD":
            return web.Response(body=body, headers=page_headers(variant, collected_at))
        return await stream_page(request, body, variant, collected_at)

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

    # http1_only first: nothing else speaks to a client that is not HTTP/1 (the fast path passes those on to it).
    guards = [http1_only(), *([control_guard(control_token)] if control is not None else [])]
    middlewares = [*guards, _close_for_socket_readers, _auth_middleware(live), _headers_middleware(live)]
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    page = app.router.add_get("/metrics", metrics).resource
    host_page = app.router.add_get("/hosts/{host}/metrics", host_metrics).resource
    assert page is not None and host_page is not None
    app.middlewares.insert(0, cached_page_first(source, live, negotiation, page, host_page))
    app[HELD_PAGES] = HeldPages(source, live, ScrapeHeads(negotiation))
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


def _site(
    runner: web.AppRunner,
    app: web.Application,
    sock: socket.socket,
    listeners: Listeners,
    ssl_context: ssl.SSLContext | None = None,
    unix: bool = False,
) -> web.BaseSite:
    if ssl_context is None and HELD_PAGES in app:  # scrapes answered in front of aiohttp (serve/front.py)
        door = FrontDoor(app[HELD_PAGES], runner, listeners.idle_timeout_s, unix)
        return FrontSite(runner, sock, door, LISTEN_BACKLOG)
    return web.SockSite(runner, sock, ssl_context=ssl_context, backlog=LISTEN_BACKLOG)


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
            for sock in bind_tcp(*listeners.tcp):  # PausingListeners: out of descriptors, accepting pauses
                await _site(runner, app, sock, listeners, listeners.web.ssl_context).start()
        if listeners.unix is not None:
            await _site(runner, app, listeners.unix.sock, listeners, unix=True).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner

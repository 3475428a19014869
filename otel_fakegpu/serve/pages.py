"""How an exposition is answered: where its bytes come from, its headers from a table per variant, large bodies
streamed, and the fast path that answers a scrape of a held page before the rest of the middleware chain runs.

On a TCP listener without TLS most scrapes never reach aiohttp: serve/front.py answers them. What reaches this
module's fast path is a scrape on a connection the front handed to aiohttp, or over TLS. A scrape of /metrics (or
/hosts/<host>/metrics) over TCP, without basic auth configured, of a host in no drill, for a variant already held,
needs none of what the other middlewares decide: the control API's guard and the Unix socket's close rule do not
apply to it, and auth is off. ``cached_page_first`` answers exactly those, with the same response the handler would
give, and passes everything else down the chain unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from otel_fakegpu.outputs import Format, Variant
from otel_fakegpu.serve.negotiate import NegotiationTable
from otel_fakegpu.serve.protocol import SPOKEN_VERSIONS
from otel_fakegpu.serve.uds import request_closes_after_response
from otel_fakegpu.serve.webconfig import LiveWebConfig

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STREAM_ABOVE_BYTES = 1 << 20
Body = bytes | bytearray  # a page as the source holds it (the serving process keeps a received buffer as it is)
STREAM_CHUNK_BYTES = 256 << 10


class MetricsSource(Protocol):
    """Where the bytes come from (the serving process's copy of what the collection side published)."""

    def hosts(self) -> Sequence[str]: ...

    def host_labels(self, host: str) -> Mapping[str, str]:
        """Labels /sd adds to the host's target (its rack)."""
        ...

    def serving(self, host: str | None) -> tuple[str, float]:
        """The drill mode and delay of ``host``'s page (serve/reach.py); ("ok", 0) when not drilled."""
        ...

    async def exposition(self, host: str | None, fmt: Format, gzipped: bool) -> tuple[Body, float] | None:
        """The body for ``host`` (None: /metrics) and the wall-clock start of its cycle; None before the first cycle;
        KeyError for an unknown host."""
        ...

    def cached(self, host: str | None, fmt: Format, gzipped: bool) -> tuple[Body, float] | None:
        """What ``exposition`` would answer, when it is held now and served as it is (no drill on ``host``, nothing to
        build or wait for); None: ask ``exposition``."""
        ...


def _variant_headers(fmt: Format, gzipped: bool) -> dict[str, str]:
    headers = {"Content-Type": fmt.content_type, "Vary": "Accept, Accept-Encoding", "Age": "0"}
    return headers | {"Content-Encoding": "gzip"} if gzipped else headers


# Each variant's headers, in the order they are sent; a response copies its variant's and sets its Age.
VARIANT_HEADERS: dict[Variant, dict[str, str]] = {(f, z): _variant_headers(f, z) for f in Format for z in (False, True)}


def page_headers(variant: Variant, collected_at: float) -> dict[str, str]:
    headers = VARIANT_HEADERS[variant].copy()
    # How old the served cycle is: while an engine fails, /metrics keeps the last good cycle, ageing.
    headers["Age"] = str(max(0, int(time.time() - collected_at)))
    return headers


async def stream_page(request: web.Request, body: Body, variant: Variant, collected_at: float) -> web.StreamResponse:
    """Large bodies go out in slices, waiting for each to drain. Written whole, a body the socket cannot take
    at once is copied into the connection's buffer: 64 slow scrapers of a 23 MB exposition would hold 1.5 GB."""
    response = web.StreamResponse(headers=page_headers(variant, collected_at))
    response.content_length = len(body)
    if request_closes_after_response(request):
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


def cached_page_first(
    source: MetricsSource,
    live: LiveWebConfig,
    negotiation: NegotiationTable,
    page: web.AbstractResource,
    host_page: web.AbstractResource,
) -> Middleware:
    """The first middleware: a scrape of a held page (``page``: /metrics, ``host_page``: /hosts/<host>/metrics) is
    answered here when nothing else in the chain applies to it (see the module's docstring); anything else goes on."""

    @web.middleware
    async def answer_held_page(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource  # the router's own decision (None: 404, 405)
        if resource is page:
            host = None
        elif resource is host_page:
            host = request.match_info["host"]
        else:
            return await handler(request)
        config = live.config
        # The other middlewares' conditions: HTTP/1 (protocol.http1_only), no auth to check (require_auth), and a
        # TCP connection (an address tuple; the Unix socket's is a path), where neither the socket's close rule
        # (_close_for_socket_readers) nor its exemptions apply.
        transport = request.transport
        if (
            config.users
            or request.version not in SPOKEN_VERSIONS
            or transport is None
            or type(transport.get_extra_info("sockname")) is not tuple
        ):
            return await handler(request)
        variant = negotiation.variant(request.headers.get("Accept"), request.headers.get("Accept-Encoding"))
        held = source.cached(host, *variant)
        if held is None or (len(held[0]) > STREAM_ABOVE_BYTES and request.method != "HEAD"):
            return await handler(request)
        response = web.Response(body=held[0], headers=page_headers(variant, held[1]))
        if config.headers:  # what the headers middleware adds to every response
            response.headers.update(config.headers)
        return response

    return answer_held_page

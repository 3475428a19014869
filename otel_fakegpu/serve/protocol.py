"""Only HTTP/1.0 and 1.1 are spoken here. aiohttp answers an HTTP/0.9 request line (``GET /metrics``, no
version) and made-up versions (``HTTP/2.0`` in plain text); those are refused with 400 and the connection
closed, so nothing that is not an HTTP/1 client gets an exposition."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import HttpVersion10, HttpVersion11, web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SPOKEN_VERSIONS = (HttpVersion10, HttpVersion11)


def http1_only() -> Middleware:
    @web.middleware
    async def require_http1(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.version not in SPOKEN_VERSIONS:
            response = web.Response(status=400, text="HTTP/1.0 or HTTP/1.1 only\n")
            response.force_close()
            return response
        return await handler(request)

    return require_http1

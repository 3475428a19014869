"""What a scraper of a drilled host meets: the answer a real node in that state would give (sim/host_events.py).

Every host shares one listening port, so "refused" cannot refuse the TCP connect itself: the connection is
accepted, the request read, and then reset (RST, SO_LINGER 0) without a byte of answer. A scraper sees
"connection reset by peer", as from a node whose exporter died under it; Prometheus records ``up == 0`` either
way. "timeout" holds the request until the client gives up; "http_500" answers 500; "slow" waits its delay and
serves the page; "empty_page" is a 200 with nothing in it (dcgm-exporter's failed reload); "stale" is the source's
to freeze; "truncated" cuts the page mid-line.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import struct
import time

from aiohttp import web

from otel_fakegpu.outputs.exposition import GZIP_LEVEL
from otel_fakegpu.serve.pages import Body

log = logging.getLogger(__name__)

TIMEOUT_HOLD_MAX_S = 3600.0  # "timeout" waits at most this long for a client that never gives up
_POLL_S = 0.1


def reset(request: web.Request) -> None:
    """Close the request's connection with a TCP reset (no answer, no FIN); a Unix socket just closes."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _hold(request: web.Request) -> None:
    """Answer nothing until the client hangs up (or an hour has passed)."""
    transport = request.transport
    deadline = time.monotonic() + TIMEOUT_HOLD_MAX_S
    while transport is not None and not transport.is_closing() and time.monotonic() < deadline:
        await asyncio.sleep(_POLL_S)


async def drill_answer(request: web.Request, mode: str, delay_s: float) -> web.StreamResponse | None:
    """The answer for a host in drill ``mode``; None: serve the page (after the delay of a slow host)."""
    if mode in ("ok", "stale", "truncated"):
        return None
    if mode == "slow":
        await asyncio.sleep(delay_s)
        return None
    if mode == "http_500":
        return web.Response(status=500, text="An error has occurred while serving metrics:\n\ndrill: http_500\n")
    if mode == "empty_page":
        return web.Response(body=b"", content_type="text/plain")
    if mode == "timeout":
        await _hold(request)
    reset(request)  # refused, and a timeout's client that finally left
    return web.Response(status=499)  # never sent: the connection is gone


def truncate(body: Body, gzipped: bool) -> bytes:
    """The page cut in the middle of a sample line half-way down, inside its first label value (re-compressed
    when it was): whatever the page, what is left cannot parse."""
    plain = gzip.decompress(body) if gzipped else bytes(body)
    lines = plain.split(b"\n")
    middle = len(lines) // 2
    samples = [i for i, line in enumerate(lines) if line and not line.startswith(b"#")]
    at = next((i for i in samples if i >= middle), samples[-1] if samples else None)
    if at is None:
        cut = plain[: len(plain) // 2]
    else:
        line = lines[at]
        quote = line.find(b'"')
        cut = b"\n".join([*lines[:at], line[: quote + 1] if quote >= 0 else line.split(b" ")[0]])
    return gzip.compress(cut, GZIP_LEVEL, mtime=0) if gzipped else cut

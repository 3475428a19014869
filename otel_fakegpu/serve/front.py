"""Scrapes of held pages answered in front of aiohttp, on the Unix socket and TCP listeners without TLS.

A scraper sends the same request every few seconds on a kept-alive connection, and its answer is a page already
held. aiohttp's way to that answer (request object, router, middlewares, response object, header serialisation)
cost 63-80 us of serving CPU per 8-GPU scrape here against 55 for aiohttp answering a fixed body with no middleware
at all, and the difference showed at p99. So each connection starts with a FrontConnection: it recognises a
request head that is plainly a scrape (serve/scrape_head.py), answers it from the held page with the head aiohttp
would have sent, byte for byte, and at the first request that is anything else (another path, a body, auth turned
on, a drilled host, a page to stream, a malformed line) hands the connection, with every byte it has not answered,
to aiohttp's own protocol for the rest of its life. Only public interfaces are used: asyncio's Protocol and
``Transport.set_protocol``, and aiohttp's ``Server`` as the protocol factory it is documented to be.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass, field

from aiohttp import web

from otel_fakegpu.serve.pages import STREAM_ABOVE_BYTES, Body, MetricsSource
from otel_fakegpu.serve.scrape_head import MAX_LINE, ResponseHeads, Scrape, ScrapeHeads
from otel_fakegpu.serve.webconfig import LiveWebConfig

log = logging.getLogger(__name__)

AIOHTTP_ANSWERS = b""  # in place of a response: the request is aiohttp's to answer


@dataclass
class HeldPages:
    """What the front answers from: the app's source and live web config, and the tables of known heads."""

    source: MetricsSource
    live: LiveWebConfig
    scrapes: ScrapeHeads
    heads: ResponseHeads = field(default_factory=ResponseHeads)
    answered_total: int = 0
    handed_over_total: int = 0

    def facts(self) -> dict[str, int]:
        """What /health reports: scrapes the front answered, connections it handed to aiohttp."""
        return {"answered_total": self.answered_total, "handed_over_total": self.handed_over_total}

    def scrape(self, head: bytes, over_unix_socket: bool) -> Scrape | None:
        """The request ``head`` as a scrape the front may answer; None: aiohttp answers it."""
        scrape = self.scrapes.scrape(head)
        if scrape is None:
            return None
        if over_unix_socket:  # no auth on the socket (its file mode guards it); a hand-written request closes
            return None if scrape.closes_on_socket else scrape
        return None if self.live.config.users else scrape  # basic auth on: aiohttp checks it

    def held(self, scrape: Scrape) -> bytes | None:
        """The whole response from the page held now; None when it is not held as it would be served (``built``
        may get it), ``AIOHTTP_ANSWERS`` when it is but the front does not answer it."""
        return self._response(scrape, self.source.cached(scrape.host, *scrape.variant))

    async def built(self, scrape: Scrape) -> bytes:
        """The whole response once the page is built (a variant asked for the first time, a fleet's text unzipped),
        as the handler's long way gets it; ``AIOHTTP_ANSWERS`` for what the long way answers otherwise (a drill,
        404, 503)."""
        if self.source.serving(scrape.host)[0] != "ok":
            return AIOHTTP_ANSWERS
        try:
            page = await self.source.exposition(scrape.host, *scrape.variant)
        except KeyError:
            return AIOHTTP_ANSWERS
        return self._response(scrape, page) or AIOHTTP_ANSWERS

    def _response(self, scrape: Scrape, page: tuple[Body, float] | None) -> bytes | None:
        if page is None:
            return None
        if len(page[0]) > STREAM_ABOVE_BYTES:  # larger pages are streamed by aiohttp
            return AIOHTTP_ANSWERS
        response = self.heads.response(scrape.variant, page[0], page[1], self.live.config.headers)
        if response is None:
            return AIOHTTP_ANSWERS
        self.answered_total += 1
        return response


class FrontDoor:
    """The front's connections on one listener: made, swept when idle as aiohttp sweeps its own, closed at stop."""

    def __init__(self, pages: HeldPages, runner: web.BaseRunner, idle_timeout_s: float, unix: bool = False) -> None:
        self.pages = pages
        self.unix = unix  # the listener is the Unix socket: its rules, not TCP's (serve/uds.py)
        self._runner = runner
        self._idle_timeout_s = idle_timeout_s
        self._open: dict[FrontConnection, None] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def connection(self) -> FrontConnection:
        if self._sweeper is None:
            self._sweep()
        return FrontConnection(self)

    def opened(self, connection: FrontConnection) -> None:
        self._open[connection] = None

    def left(self, connection: FrontConnection) -> None:
        self._open.pop(connection, None)

    def aiohttp_protocol(self) -> asyncio.Protocol:
        server = self._runner.server
        assert server is not None, "the runner is set up before its sites start"
        self.pages.handed_over_total += 1
        return server()

    def _sweep(self) -> None:
        """Close connections with no request answered for the idle timeout: silent or slow clients, kept-alive ones
        gone quiet, and ones that stopped reading their answers (whose unsent bytes are dropped)."""
        now = time.monotonic()
        for connection in list(self._open):
            if now - connection.idle_since > self._idle_timeout_s:
                connection.close(drop_unsent=True)
        interval = min(1.0, max(0.05, self._idle_timeout_s / 10))
        self._sweeper = asyncio.get_running_loop().call_later(interval, self._sweep)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self._open):
            connection.close()


class FrontConnection(asyncio.Protocol):
    """One TCP connection while its requests are scrapes of held pages (see the module's docstring)."""

    def __init__(self, door: FrontDoor) -> None:
        self._door = door
        self._transport: asyncio.Transport | None = None
        self._unanswered = b""  # received, not yet answered: a partial head, or requests held back by flow control
        self._writing_paused = False
        self._building: asyncio.Future[None] | None = None  # a scrape waiting for its page to be built
        self.idle_since = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._door.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._door.left(self)
        if self._building is not None:
            self._building.cancel()

    def data_received(self, data: bytes) -> None:
        unanswered, self._unanswered = self._unanswered + data if self._unanswered else data, b""
        if self._building is not None:  # arrived before reading paused: kept, in order, for after the build
            return self._keep(unanswered)
        try:
            self._answer(unanswered)
        except Exception:  # a fault of the front must not cost the client its answer: aiohttp gives it
            log.exception("answering a scrape in front of aiohttp failed; aiohttp answers this connection")
            if self._transport is not None and self._transport.get_protocol() is self:
                self._hand_over(self._unanswered)  # what was not answered yet, not the answered requests again

    def _answer(self, unanswered: bytes) -> None:
        transport, pages = self._transport, self._door.pages
        assert transport is not None
        while unanswered and self._building is None:
            self._unanswered = unanswered
            end = unanswered.find(b"\r\n\r\n")
            if end < 0:  # not a whole head yet; one longer than any scrape's, or with bare LFs, is aiohttp's
                plain = len(unanswered) <= MAX_LINE and unanswered.count(b"\n") == unanswered.count(b"\r\n")
                return self._keep(unanswered) if plain else self._hand_over(unanswered)
            scrape = pages.scrape(unanswered[:end], self._door.unix)
            if scrape is None:
                return self._hand_over(unanswered)
            response = pages.held(scrape)
            if response == AIOHTTP_ANSWERS:
                return self._hand_over(unanswered)
            if response is None:  # answered once built; what comes meanwhile waits, unread, behind it
                transport.pause_reading()
                self._unanswered = b""  # from now on: what arrives during the build
                self._building = asyncio.ensure_future(self._answer_built(scrape, unanswered, end + 4))
                return None
            transport.write(response)
            self.idle_since = time.monotonic()
            unanswered = unanswered[end + 4 :]
            if self._writing_paused:
                return self._keep(unanswered)
        return self._keep(unanswered)

    async def _answer_built(self, scrape: Scrape, unanswered: bytes, after: int) -> None:
        try:
            response = await self._door.pages.built(scrape)
        except Exception:
            log.exception("building a page for a scrape in front of aiohttp failed; aiohttp answers it")
            response = AIOHTTP_ANSWERS
        self._building = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        unanswered += self._unanswered
        self._unanswered = b""
        if response == AIOHTTP_ANSWERS:
            return self._hand_over(unanswered)  # aiohttp asks again and answers as it would have
        transport.write(response)
        self.idle_since = time.monotonic()
        if not self._writing_paused:
            transport.resume_reading()
        if len(unanswered) > after:
            self.data_received(unanswered[after:])

    def _keep(self, unanswered: bytes) -> None:
        self._unanswered = unanswered

    def _hand_over(self, unanswered: bytes) -> None:
        """aiohttp's protocol takes the connection as if it had just been made, then the bytes not answered here."""
        transport = self._transport
        assert transport is not None
        self._door.left(self)
        protocol = self._door.aiohttp_protocol()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._writing_paused:  # the transport owes a resume_writing to whoever is its protocol when it drains
            protocol.pause_writing()
        if not transport.is_reading():  # paused here (flow control, a build): aiohttp reads as it sees fit
            transport.resume_reading()
        if unanswered:
            protocol.data_received(unanswered)

    def pause_writing(self) -> None:
        """The client reads slower than it asks: stop reading its requests until it has taken the answers."""
        self._writing_paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._transport is not None and self._building is None:
            self._transport.resume_reading()
            if self._unanswered:
                self.data_received(b"")

    def close(self, drop_unsent: bool = False) -> None:
        """Close the connection; its answers still being sent go first, unless ``drop_unsent``."""
        if self._transport is None:
            return
        if drop_unsent and self._transport.get_write_buffer_size():
            self._transport.abort()  # a client that stopped reading would hold them (and the socket) for ever
        else:
            self._transport.close()


class FrontSite(web.BaseSite):
    """A listening TCP socket whose connections start with the front (see the module's docstring)."""

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, door: FrontDoor, backlog: int) -> None:
        super().__init__(runner, backlog=backlog)
        self._sock, self._door = sock, door

    @property
    def name(self) -> str:
        address = self._sock.getsockname()
        if isinstance(address, str):
            return f"http://unix:{address}:"
        host, port = address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._door.connection, sock=self._sock, backlog=self._backlog)

    async def stop(self) -> None:
        await super().stop()
        self._door.close()

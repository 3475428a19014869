"""Listening sockets that pause accepting when the process runs out of file descriptors.

asyncio's accept loop (3.11) meets EMFILE by logging a traceback, removing the listener and retrying in a second,
but it goes on calling ``accept`` up to ``backlog`` times in the same round, logging and scheduling a retry each
time: with 4096 as the backlog a full descriptor table cost 99 % CPU and 6,000 tracebacks a second, and open
connections waited seconds for their answers. A PausingListener lets the first failing ``accept`` of a round
through (so asyncio pauses the listener for its retry delay), answers the rest of that round as "nothing to
accept", logs one warning per episode and counts the pauses; connections already open are served throughout.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: the option table reads this module's defaults before the worker forks
    import asyncio

log = logging.getLogger(__name__)

OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
ROUND_S = 0.5  # failures closer together than this are one accept round (asyncio retries after 1 s)
ASYNCIO_MESSAGE = "socket.accept() out of system resource"
DEFAULT_IDLE_TIMEOUT_S = 60.0  # a connection that sends no complete request is closed after this (--idle-timeout)


@dataclass
class AcceptPauses:
    """What /health reports: episodes (from the first failed accept until no connection waits) and pauses."""

    episodes_total: int = 0
    pauses_total: int = 0
    paused_since: float | None = None  # monotonic start of the episode in progress

    def facts(self) -> dict[str, Any]:
        return {"episodes_total": self.episodes_total, "pauses_total": self.pauses_total,
                "paused": self.paused_since is not None}  # fmt: skip


PAUSES = AcceptPauses()  # the serving process's listeners share one account


class PausingListener(socket.socket):
    """A listening socket whose ``accept`` turns a round of out-of-descriptor failures into one pause."""

    _last_pause = float("-inf")

    def accept(self) -> tuple[socket.socket, Any]:
        try:
            return super().accept()
        except BlockingIOError:  # nothing waiting: the pressure is over and so is the episode
            if PAUSES.paused_since is not None:
                log.warning("accepting connections again after %.1f s", time.monotonic() - PAUSES.paused_since)
                PAUSES.paused_since = None
            raise
        except OSError as exc:
            if exc.errno not in OUT_OF_RESOURCES:
                raise
            now = time.monotonic()
            if now - self._last_pause < ROUND_S:  # the rest of this round: "nothing to accept" ends it
                raise BlockingIOError(errno.EAGAIN, "accepting is paused") from None
            self._last_pause = now
            PAUSES.pauses_total += 1
            if PAUSES.paused_since is None:
                PAUSES.paused_since, PAUSES.episodes_total = now, PAUSES.episodes_total + 1
                log.warning("cannot accept connections: %s; pausing new connections and serving the open ones "
                            "(logged once until the waiting connections are accepted)", exc.strerror)  # fmt: skip
            raise  # asyncio removes the listener and tries again after its retry delay


def quiet_accept_pauses(loop: asyncio.AbstractEventLoop) -> None:
    """Drop asyncio's traceback for each pause (the listener logged the episode); pass everything else on."""
    previous = loop.get_exception_handler()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if context.get("message") == ASYNCIO_MESSAGE and isinstance(exc, OSError) and exc.errno in OUT_OF_RESOURCES:
            log.debug("accept paused: %s", exc.strerror)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    if getattr(previous, "__qualname__", "") != handle.__qualname__:  # once per loop
        loop.set_exception_handler(handle)


def bind_tcp(host: str | None, port: int) -> list[socket.socket]:
    """Listening sockets on every address ``host`` resolves to (None: every interface), as asyncio's create_server
    binds them (SO_REUSEADDR, IPv6 sockets IPv6 only); raises OSError naming the address."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            try:
                sock = PausingListener(family, kind, proto)
            except OSError:  # a family this kernel lacks (IPv6 switched off): skipped, as asyncio does
                continue
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                reason = (exc.strerror or str(exc)).lower()
                raise OSError(exc.errno, f"error while attempting to bind on address {address!r}: {reason}") from None
            sock.setblocking(False)
    except OSError:
        for opened in sockets:
            opened.close()
        raise
    return sockets

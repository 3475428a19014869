"""The wire between the serving process and a worker: length-prefixed frames over a Unix socketpair.

A frame is ``>II`` (header length, payload length), a JSON header, then the payload: zero or more byte blobs
whose lengths the header lists under ``"blobs"``. Nothing else crosses the boundary: no pickles, no shared
objects. The messages (``"kind"`` in the header):

worker -> server
    ``publish``  {host, cycle, collected_at, variants: [[FORMAT, gzipped], ...], blobs} + one blob per
                 variant: a host's rendered exposition (FORMAT is ``PROMETHEUS`` or ``OPENMETRICS``).
    ``status``   {hosts: {host: facts}, recent_cycle_seconds}: health facts after each cycle.
    ``ready``    {}: every host of the worker has published its first cycle.
    ``fatal``    {error, exit_code}: the worker could not start (e.g. its engine is unavailable) and stops.
    ``reply``    {id, ok, result | error}: the answer to a ``request``.
server -> worker
    ``go``       {}: the serving side reads this worker's frames now; the worker, which built its hosts (and
                 started their simulators) meanwhile, runs their first cycle only then.
    ``demand``   {variants: [[FORMAT, gzipped], ...]}: variants scrapers asked for; built eagerly every cycle.
    ``request``  {id, method, host, args}: call ``method`` with the JSON-able ``args`` dict on ``host``'s
                 collection (``host`` null: the worker's only host, or every host for ``broadcast``), answered
                 by a ``reply`` whose ``result`` is JSON-able. Methods: ``variant`` {format, gzipped} (publish
                 that variant of the current cycle now), ``ping``, and whatever the collection's ``handlers()``
                 offer (control events, reload hooks): a serve-side port becomes a proxy calling
                 ``WorkerPool.call(method, args, host)``, with no change to the code that uses it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Sequence
from typing import Any

PREFIX = struct.Struct(">II")
MAX_HEADER_BYTES = 16 << 20
Header = dict[str, Any]
Blob = bytes | bytearray  # a received blob is its receive buffer (FrameReader): bytes-like, never written again


class RemoteError(RuntimeError):
    """A request that the worker answered with an error, or could not answer (it died or stopped)."""


def encode_frame(header: Header, blobs: Sequence[bytes] = ()) -> list[bytes]:
    """The frame as buffers to write in order (blobs are not copied)."""
    head = json.dumps({**header, "blobs": [len(b) for b in blobs]}, separators=(",", ":")).encode()
    return [PREFIX.pack(len(head), sum(len(b) for b in blobs)), head, *blobs]


def write_frame(sock: socket.socket, header: Header, blobs: Sequence[bytes] = ()) -> None:
    """Blocking write of one frame (the worker's side); the caller serialises writers."""
    for buffer in encode_frame(header, blobs):
        sock.sendall(buffer)


def offer_frame(sock: socket.socket, header: Header) -> bool:
    """``write_frame`` to a peer that may have gone (then False): what it sent before going stays to be read."""
    try:
        write_frame(sock, header)
    except OSError:
        return False
    return True


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("peer closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _parse(head: Blob, payload_len: int) -> tuple[Header, list[int]]:
    header: Header = json.loads(head)
    sizes = [int(size) for size in header.pop("blobs", [])]
    if sum(sizes) != payload_len:
        raise ValueError(f"frame payload of {payload_len} bytes, blobs of {sum(sizes)}")
    return header, sizes


def read_frame(sock: socket.socket) -> tuple[Header, list[bytes]]:
    """Blocking read of one frame; EOFError when the peer has gone."""
    head_len, payload_len = PREFIX.unpack(_recv_exactly(sock, PREFIX.size))
    if head_len > MAX_HEADER_BYTES:
        raise ValueError(f"frame header of {head_len} bytes")
    header, sizes = _parse(_recv_exactly(sock, head_len), payload_len)
    return header, [_recv_exactly(sock, size) for size in sizes]


class FrameReader(asyncio.BufferedProtocol):
    """Reads frames on the event loop (the serving side): the protocol of a worker's connection, each part received
    straight into a buffer of its size. A stream reader appended a 23 MB page to its buffer 256 KB at a time and
    copied it out (~40 ms); here it lands in place (~20 ms), and the buffer is the blob: a copy into ``bytes`` cost
    a 4096-GPU start another 13 ms, most of it page faults on 23 MB of fresh memory (bytearray is bytes-like, never
    written again). ``read`` gives the frames in order, then asyncio.IncompleteReadError once the worker is gone, or
    ValueError for a frame that breaks the format."""

    def __init__(self) -> None:
        self._frames: asyncio.Queue[tuple[Header, list[Blob]] | Exception] = asyncio.Queue()
        self._transport: asyncio.BaseTransport | None = None
        self._stage = "prefix"  # the part being received: "prefix", "header" or "blob"
        self._header: Header = {}
        self._sizes: list[int] = []  # the frame's blobs still to come, after the one being received
        self._blobs: list[Blob] = []
        self._payload_len = 0
        self._expect(PREFIX.size)

    def _expect(self, size: int) -> None:
        self._part, self._filled = bytearray(size), 0
        self._view = memoryview(self._part)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view[self._filled :] if self._stage != "broken" else memoryview(bytearray(1 << 16))

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        try:
            while self._stage != "broken" and self._filled == len(self._part):  # an empty blob is complete at once
                self._take(self._part)  # _expect gives the next part a buffer of its own
        except ValueError as exc:
            self._stage = "broken"
            self._frames.put_nowait(exc)
            if self._transport is not None:
                self._transport.close()

    def _take(self, part: bytearray) -> None:
        """A complete part: the prefix, the header or a blob; then the next part is expected."""
        if self._stage == "prefix":
            head_len, self._payload_len = PREFIX.unpack(part)
            if head_len > MAX_HEADER_BYTES:
                raise ValueError(f"frame header of {head_len} bytes")
            self._stage = "header"
            self._expect(head_len)
            return
        if self._stage == "header":
            self._header, self._sizes = _parse(part, self._payload_len)
            self._stage = "blob"
        else:
            self._blobs.append(part)
        if self._sizes:
            self._expect(self._sizes.pop(0))
            return
        self._frames.put_nowait((self._header, self._blobs))
        self._stage, self._header, self._blobs = "prefix", {}, []
        self._expect(PREFIX.size)

    def connection_lost(self, exc: Exception | None) -> None:
        self._frames.put_nowait(asyncio.IncompleteReadError(bytes(self._part[: self._filled]), len(self._part)))

    async def read(self) -> tuple[Header, list[Blob]]:
        frame = await self._frames.get()
        if isinstance(frame, Exception):
            self._frames.put_nowait(frame)  # every later read ends the same way
            raise frame
        return frame

"""The serving side's reader of a worker's frames (the format is in frames.py), on the event loop."""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable

from otel_fakegpu.runtime.frames import MAX_HEADER_BYTES, PREFIX, Blob, Header, parse_header

UNCLEARED_FROM_BYTES = 64 << 10  # parts this large get a buffer that is not cleared first (see _uncleared)


def _c_allocator() -> Callable[[None, int], bytearray] | None:
    """CPython's ``PyByteArray_FromStringAndSize``, which with no source leaves the contents as allocated; None
    elsewhere."""
    try:
        make = ctypes.pythonapi.PyByteArray_FromStringAndSize
    except AttributeError:
        return None
    make.restype, make.argtypes = ctypes.py_object, (ctypes.c_char_p, ctypes.c_ssize_t)
    return make


_ALLOCATE = _c_allocator()


def _uncleared(size: int) -> bytearray:
    """A buffer of ``size`` bytes not cleared first: every byte of a part is received before anything reads it.
    ``bytearray(size)`` cleared a 23 MB page's buffer between the frame's header and its first bytes (14-16 ms of
    page faults, while the worker's send waited); here the pages are touched as the socket fills them."""
    return _ALLOCATE(None, size) if _ALLOCATE is not None and size >= UNCLEARED_FROM_BYTES else bytearray(size)


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
        self._part, self._filled = _uncleared(size), 0
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
            self._header, self._sizes = parse_header(part, self._payload_len)
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

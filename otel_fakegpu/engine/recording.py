"""The capture file of ``otel-fakegpu record`` and ``--engine replay``: scraped pages, compact and checkable.

Layout (all integers big-endian)::

    b"OTFGREC1\\n"                      magic and format version
    u32 length, JSON header             {"source": URL, "every_s": 15.0, "started_at": unix time}
    record*                             one per scrape, in order:
        u32 length, u32 CRC-32 of the body, body = zlib(u64 milliseconds since started_at + page bytes)

Each body is compressed with the previous page as zlib's preset dictionary, so a page that changed in a few
values costs a few hundred bytes. A record cut short or failing its CRC or zlib check ends the usable part:
the reader keeps every whole record before it and says where it stopped.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from otel_fakegpu.config.errors import ConfigError
from otel_fakegpu.config.files import read_bounded

MAGIC = b"OTFGREC1\n"
_U32 = struct.Struct(">I")
_RECORD_HEAD = struct.Struct(">II")
_OFFSET = struct.Struct(">Q")
MAX_HEADER_BYTES = 64 << 10
MAX_PAGE_BYTES = 256 << 20
MAX_CAPTURE_BYTES = 1 << 30  # read whole into memory; record's --max-bytes default is 256 MiB


class RecordingError(ValueError):
    """A file that is not a capture at all (no magic, no header): nothing can be replayed from it."""


@dataclass
class Recording:
    """The whole records of a capture: (seconds since the start, page); ``stopped`` says why reading ended early."""

    header: dict[str, Any]
    pages: list[tuple[float, bytes]] = field(default_factory=list)
    stopped: str | None = None


def _compress(payload: bytes, previous: bytes) -> bytes:
    packer = zlib.compressobj(9, zdict=previous) if previous else zlib.compressobj(9)
    return packer.compress(payload) + packer.flush()


class RecordingWriter:
    """Appends pages to a capture file, never past ``max_bytes`` in all."""

    def __init__(self, out: IO[bytes], header: dict[str, Any], max_bytes: int) -> None:
        encoded = json.dumps(header, sort_keys=True).encode()
        self._out, self._max, self._previous = out, max_bytes, b""
        self._started_at = float(header["started_at"])
        self.written = len(MAGIC) + _U32.size + len(encoded)
        if self.written > max_bytes:
            raise ValueError(f"--max-bytes {max_bytes}: smaller than the file's header ({self.written} bytes)")
        out.write(MAGIC + _U32.pack(len(encoded)) + encoded)
        self.records = 0

    def append(self, at: float, page: bytes) -> bool:
        """Write one page scraped at wall time ``at``; False (nothing written) when it would pass ``max_bytes``."""
        offset_ms = max(0, round((at - self._started_at) * 1000))
        body = _compress(_OFFSET.pack(offset_ms) + page, self._previous)
        if self.written + _RECORD_HEAD.size + len(body) > self._max:
            return False
        self._out.write(_RECORD_HEAD.pack(len(body), zlib.crc32(body)) + body)
        self._out.flush()
        self.written += _RECORD_HEAD.size + len(body)
        self._previous, self.records = page, self.records + 1
        return True


def read_recording(path: Path) -> Recording:
    """Every whole record of the capture at ``path``; RecordingError when it is not a capture; OSError."""
    try:
        data = read_bounded(path, MAX_CAPTURE_BYTES, "capture")  # a FIFO or /dev/zero is refused at once
    except ConfigError as exc:
        raise RecordingError(str(exc)) from None
    if not data.startswith(MAGIC):
        raise RecordingError(f"{path}: not an otel-fakegpu capture (no {MAGIC[:-1].decode()} magic)")
    at = len(MAGIC)
    if len(data) < at + _U32.size:
        raise RecordingError(f"{path}: the header is cut short")
    (size,) = _U32.unpack_from(data, at)
    at += _U32.size
    try:
        if size > MAX_HEADER_BYTES or at + size > len(data):
            raise ValueError("cut short or too long")
        header = json.loads(data[at : at + size])
        if not isinstance(header, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise RecordingError(f"{path}: bad header at byte {len(MAGIC)}: {exc}") from None
    at += size
    recording = Recording(header)
    previous = b""
    while at < len(data):
        where = f"{path}: record {len(recording.pages) + 1} at byte {at}"
        if at + _RECORD_HEAD.size > len(data):
            recording.stopped = f"{where}: cut short"
            break
        length, crc = _RECORD_HEAD.unpack_from(data, at)
        body = data[at + _RECORD_HEAD.size : at + _RECORD_HEAD.size + length]
        if len(body) < length:
            recording.stopped = f"{where}: cut short ({len(body)} of {length} bytes)"
            break
        if zlib.crc32(body) != crc:
            recording.stopped = f"{where}: corrupt (CRC mismatch)"
            break
        try:
            unpacker = zlib.decompressobj(zdict=previous) if previous else zlib.decompressobj()
            payload = unpacker.decompress(body, MAX_PAGE_BYTES + _OFFSET.size)
        except zlib.error as exc:
            recording.stopped = f"{where}: corrupt ({exc})"
            break
        if len(payload) < _OFFSET.size:
            recording.stopped = f"{where}: corrupt (no time stamp)"
            break
        (offset_ms,) = _OFFSET.unpack_from(payload)
        previous = payload[_OFFSET.size :]
        recording.pages.append((offset_ms / 1000.0, previous))
        at += _RECORD_HEAD.size + length
    return recording

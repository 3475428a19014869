"""One record of the on-disk push queue, and the two file operations it needs: an atomic write (temporary
name, fsync, rename, fsync of the directory) and a bounded read that follows no link and opens nothing but a
regular file (a FIFO or device planted in the queue directory must not hang or flood start-up).

A record is a fixed header (magic, format version, target, points, creation time, payload length, CRC-32 of
header and payload) and the payload: a request exactly as it will be sent, gzip-compressed."""

from __future__ import annotations

import contextlib
import os
import stat
import struct
import zlib
from dataclasses import dataclass

MAGIC = b"OFGQ"
VERSION = 1
# magic, version, reserved, target (ASCII, NUL-padded), points, created (Unix seconds), payload bytes, CRC-32
_HEADER = struct.Struct("<4sHH16sQdQI")
HEADER_BYTES = _HEADER.size
MAX_RECORD_BYTES = 1 << 30  # far above one request (a 4096-GPU cycle's text is about 2 MiB compressed)
SUFFIX = ".rec"
TEMP_PREFIX = "."  # a temporary name is hidden, and never ends in SUFFIX


class RecordError(Exception):
    """Why a file is not a record this queue can deliver (truncated, corrupt, another version or target), and
    the points it held when its header still says (else 0)."""

    def __init__(self, message: str, points: int = 0) -> None:
        super().__init__(message)
        self.points = points


@dataclass(frozen=True)
class Record:
    target: str  # the push target it belongs to: otlp or prometheus
    points: int  # what it costs in the retry buffer (points or series)
    created_at: float  # Unix seconds when the request was queued: its age survives restarts
    payload: bytes


def encode(record: Record) -> bytes:
    target = record.target.encode("ascii")
    if len(target) > 16:
        raise ValueError(f"target name too long: {record.target!r}")
    head = _HEADER.pack(MAGIC, VERSION, 0, target, record.points, record.created_at, len(record.payload), 0)
    crc = zlib.crc32(record.payload, zlib.crc32(head[:-4]))
    return head[:-4] + struct.pack("<I", crc) + record.payload


def decode(data: bytes, target: str) -> Record:
    """The record in ``data``; raises RecordError saying what is wrong with it."""
    if len(data) < HEADER_BYTES:
        raise RecordError(f"truncated: {len(data)} bytes, shorter than the {HEADER_BYTES}-byte header")
    magic, version, _, raw_target, points, created, length, crc = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise RecordError("not a push queue record (no OFGQ header)")
    if version != VERSION:
        raise RecordError(f"record format version {version}, this exporter reads version {VERSION}")
    name = raw_target.rstrip(b"\0").decode("ascii", errors="replace")
    if name != target:
        raise RecordError(f"a record of target {name!r}, not {target!r}")
    if len(data) != HEADER_BYTES + length:
        raise RecordError(f"truncated: {len(data) - HEADER_BYTES} of {length} payload bytes", points)
    payload = data[HEADER_BYTES:]
    if zlib.crc32(payload, zlib.crc32(data[: HEADER_BYTES - 4])) != crc:
        raise RecordError("corrupt: CRC-32 mismatch", points)
    return Record(name, points, created, payload)


def read_regular(dir_fd: int, name: str, limit: int = MAX_RECORD_BYTES) -> bytes:
    """The whole content of the regular file ``name`` in ``dir_fd``, at most ``limit`` bytes; raises RecordError
    for a link, FIFO, device, directory or a file that cannot be read (the reason in its message)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:  # ELOOP: a symbolic link
        raise RecordError(f"cannot open: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RecordError("not a regular file")
        if info.st_size > limit:
            raise RecordError(f"larger than {limit} bytes")
        chunks, left = [], info.st_size + 1  # one byte more: a file that grew is read as it is now
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise RecordError(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def write_atomic(dir_fd: int, name: str, data: bytes) -> None:
    """``name`` in ``dir_fd`` holds ``data`` whole, or does not exist, whenever the process or the machine
    stops: written under a temporary name, flushed to disk, renamed, and the rename flushed too."""
    temp = TEMP_PREFIX + name + ".tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temp, flags, 0o600, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(dir_fd, temp)
        raise
    os.close(fd)
    os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    os.fsync(dir_fd)


def _unlink_quietly(dir_fd: int, name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)

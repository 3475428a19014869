"""A push target's on-disk queue: one record file per request, in the target's own directory, named by a
sequence number that goes on across restarts (so a name's order is the requests' order). A file that is
not a readable record of this target is moved aside into ``corrupt/``, counted and logged once; it never
stops start-up or delivery. The queue holds at most ``max_bytes`` and keeps ``min_free_bytes`` of the disk
free: the caller drops the oldest records to make room (``room``), as the memory buffer does."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from otel_fakegpu.outputs.queue_record import (
    HEADER_BYTES,
    SUFFIX,
    TEMP_PREFIX,
    Record,
    RecordError,
    decode,
    encode,
    read_regular,
    write_atomic,
)

log = logging.getLogger(__name__)

SET_ASIDE = "corrupt"  # where unreadable records go, inside the target's directory
MAX_SET_ASIDE = 64  # the oldest set-aside files beyond this many are deleted: corruption must not fill the disk
# A queued point on disk, measured at about 40 bytes for OTLP and Prometheus text alike: the default bound
# follows the retry buffer's points, with room to spare, so the memory bound is the one met first.
BYTES_PER_POINT = 48
DEFAULT_MIN_FREE_BYTES = 100 * 1000 * 1000
FULL, LOW_DISK = "full", "low_disk"


@dataclass(frozen=True)
class PushQueueSettings:
    """``--push-queue-dir`` and its bounds. ``max_bytes`` bounds the whole directory (None: sized from the retry
    buffer); each queue in it (one per host and push target) gets an equal share."""

    directory: Path
    max_bytes: int | None = None
    min_free_bytes: int = DEFAULT_MIN_FREE_BYTES

    def queue_bytes(self, buffer_points: int, queues: int) -> int:
        if self.max_bytes is None:
            return buffer_points * BYTES_PER_POINT
        return max(1, self.max_bytes // max(1, queues))


@dataclass(frozen=True)
class QueueState:
    """What /health and the self-metrics say about one queue."""

    records: int
    bytes: int
    oldest_created_at: float | None  # Unix seconds; None when empty
    corrupt: int  # records set aside since start
    degraded: str | None  # why the newest requests are not on disk (None: all are)


def _sequence(name: str) -> int | None:
    stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else ""
    return int(stem) if stem.isdigit() and stem.isascii() else None


class DiskQueue:
    """Records of one target in ``directory``; thread-safe (the cycle appends, the sender removes)."""

    def __init__(self, directory: Path, target: str, max_bytes: int, min_free_bytes: int) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory, self.target = directory, target
        self.max_bytes, self.min_free_bytes = max_bytes, min_free_bytes
        self._fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._records: dict[str, tuple[int, float]] = {}  # name -> (bytes, created_at), oldest first
        self._bytes = 0
        self._next = 1
        self._corrupt = 0
        self._degraded: str | None = None

    def load(self, on_corrupt: Callable[[int], None]) -> Iterator[tuple[str, Record]]:
        """Every readable record, oldest first; each bad one is set aside and ``on_corrupt(points)`` told (0 when
        its header cannot say). Temporary files (a write the process did not finish) are removed."""
        names = sorted(os.listdir(self._fd))
        self._next = max([self._next] + [seq + 1 for seq in map(_sequence, names) if seq is not None])
        for name in names:
            if name == SET_ASIDE:
                continue
            if name.startswith(TEMP_PREFIX) and name.endswith(".tmp"):
                log.info("%s/%s: a write cut short (the process stopped); removed", self.directory, name)
                self._unlink(name)
                continue
            try:
                if _sequence(name) is None:
                    raise RecordError("not a push queue record name")
                record = decode(read_regular(self._fd, name), self.target)
            except RecordError as exc:
                self.set_aside(name, str(exc))
                on_corrupt(exc.points)
                continue
            with self._lock:
                self._records[name] = (HEADER_BYTES + len(record.payload), record.created_at)
                self._bytes += HEADER_BYTES + len(record.payload)
            yield name, record

    def set_aside(self, name: str, reason: str) -> None:
        """Move ``name`` into ``corrupt/`` (deleted if that fails), count it and say so in one line."""
        self._corrupt += 1
        self._forget(name)
        with contextlib.suppress(OSError):  # it exists, or the rename below fails and says why
            os.mkdir(SET_ASIDE, 0o700, dir_fd=self._fd)
        try:
            os.rename(name, f"{SET_ASIDE}/{name}", src_dir_fd=self._fd, dst_dir_fd=self._fd)
            where = f"moved to {SET_ASIDE}/"
            self._prune_set_aside()
        except OSError as exc:
            where = "deleted" if self._unlink(name) else f"left in place ({exc.strerror or exc})"
        log.warning(
            '%s/%s: %s; %s, counted in otel_fakegpu_push_points_dropped_total{reason="corrupt"}',
            self.directory, name, reason, where,
        )  # fmt: skip

    def _prune_set_aside(self) -> None:
        try:
            fd = os.open(SET_ASIDE, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self._fd)
        except OSError:
            return
        try:
            for old in sorted(os.listdir(fd))[:-MAX_SET_ASIDE]:
                with contextlib.suppress(OSError):  # a directory planted there stays: it costs only its name
                    os.unlink(old, dir_fd=fd)
        finally:
            os.close(fd)

    def room(self, size: int) -> str | None:
        """Why a record of ``size`` bytes does not fit now: FULL (the byte bound) or LOW_DISK (the free-space
        floor); None when it fits. An empty queue is never FULL: the newest request is kept whole."""
        with self._lock:
            if self._records and self._bytes + size > self.max_bytes:
                return FULL
        try:
            stats = os.statvfs(self._fd)
        except OSError:
            return None  # the write itself will tell
        return LOW_DISK if stats.f_bavail * stats.f_frsize - size < self.min_free_bytes else None

    def append(self, record: Record) -> str | None:
        """Write ``record`` as the newest; its name, or None when it could not be written (then degraded)."""
        data = encode(record)
        with self._lock:
            name = f"{self._next:016d}{SUFFIX}"
            self._next += 1
        try:
            write_atomic(self._fd, name, data)
        except OSError as exc:
            self.degrade(f"cannot write to {self.directory}: {exc.strerror or exc}")
            return None
        with self._lock:
            self._records[name] = (len(data), record.created_at)
            self._bytes += len(data)
        if self._degraded is not None:
            log.info("%s push queue: writing to %s again", self.target, self.directory)
            self._degraded = None
        return name

    def degrade(self, why: str) -> None:
        """The newest request stays in memory only: one line when this starts or its reason changes."""
        if self._degraded != why:
            log.warning("%s push queue degraded, kept in memory only until this clears: %s", self.target, why)
        self._degraded = why

    def remove(self, name: str) -> None:
        """A record delivered or dropped: gone from disk, and the removal made durable (else a power loss
        could bring back more than the one request in flight)."""
        self._forget(name)
        if self._unlink(name):
            with contextlib.suppress(OSError):
                os.fsync(self._fd)

    def _forget(self, name: str) -> None:
        with self._lock:
            size, _ = self._records.pop(name, (0, 0.0))
            self._bytes -= size

    def _unlink(self, name: str) -> bool:
        try:
            os.unlink(name, dir_fd=self._fd)
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.warning("%s/%s: cannot remove: %s", self.directory, name, exc.strerror or exc)
            return False
        return True

    def state(self) -> QueueState:
        with self._lock:
            oldest = next(iter(self._records.values()), None)
            return QueueState(
                len(self._records), self._bytes, None if oldest is None else oldest[1], self._corrupt, self._degraded
            )

    def close(self) -> None:
        os.close(self._fd)

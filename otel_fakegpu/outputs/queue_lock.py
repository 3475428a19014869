"""One exporter per queue directory: an exclusive lock on ``DIR/.lock`` for the life of the process (and of its
worker processes, which inherit it), with the holder written inside so a second exporter can name it."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
# Workers outlive a killed serving process by a few seconds (their last request, then exit): a new exporter on
# the same machine waits this long for them when the holder it finds is no longer running.
WAIT_FOR_DEAD_HOLDER_S = 60.0


class QueueLockError(Exception):
    """The directory cannot be used: another exporter holds it, or it cannot be created or written."""


def lock_queue_dir(directory: Path, wait_s: float = WAIT_FOR_DEAD_HOLDER_S) -> int:
    """Create ``directory`` if needed and lock it; returns the lock's file descriptor (keep it open)."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise QueueLockError(f"{directory}: cannot use as the push queue directory: {exc.strerror or exc}") from None
    deadline, waited = time.monotonic() + wait_s, False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = _holder(fd)
            if not _gone(holder) or time.monotonic() > deadline:
                os.close(fd)
                raise QueueLockError(
                    f"{directory}: push queue directory in use by another exporter ({holder or 'holder unknown'}); "
                    "give each exporter its own --push-queue-dir"
                ) from None
            if not waited:
                log.info("%s: waiting for the stopped exporter's workers (%s) to let go of it", directory, holder)
                waited = True
            time.sleep(0.2)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with contextlib.suppress(OSError):  # the lock holds whether or not the note is written
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {started}\n".encode(), 0)
    return fd


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


def _gone(holder: str) -> bool:
    """Whether the holder named is a process of this machine that no longer runs (its workers still hold the
    lock, briefly). A holder elsewhere, or unreadable, is taken as running."""
    words = holder.split()
    if len(words) < 4 or words[0] != "pid" or not words[1].isdigit() or words[3] != socket.gethostname():
        return False
    try:
        os.kill(int(words[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    try:  # a killed process its parent has not reaped yet still answers: a zombie is gone too
        with open(f"/proc/{words[1]}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False

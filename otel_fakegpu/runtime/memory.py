"""How the exporter's processes hold memory: the garbage collector's settings after start-up, and glibc's mmap
threshold for the large buffers every cycle makes (a 23 MB exposition at 4096 GPUs, its gzip form, each frame)."""

from __future__ import annotations

import ctypes
import functools
import gc
import logging
import os

log = logging.getLogger(__name__)

# A cycle allocates about ten objects per series, nearly all freed by reference counting; the default gen-0
# threshold (700) still ran ~470 collections per 4096-GPU cycle, and full collections walked every long-lived
# object (identities, label and encoder caches), stalling for up to 0.2 s.
GC_THRESHOLDS = (100_000, 20, 20)

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc malloc.h)
MMAP_THRESHOLD_BYTES = 1 << 20


def collect_less_often() -> None:
    """The raised thresholds after start-up. Building 4096 GPUs' stack and their first cycle makes ~10^6 long-lived
    objects, and the default thresholds ran full collections over them again and again (a 4096-GPU simulator start
    and first cycle: 1.41 -> 1.05 s in process)."""
    gc.set_threshold(*GC_THRESHOLDS)


def hold_collection() -> None:
    """No collection from a worker's start until ``settle_memory``, soon after its first cycles are published. A start
    makes long-lived objects and next to no garbage in cycles (measured: 1280 such objects after one host of 4096
    GPUs, the same after 200 hosts of 8), and even at the raised thresholds each collection walked every young
    object: five of them, 60-90 ms of a 4096-GPU start's CPU."""
    gc.disable()


def settle_memory() -> None:
    """After start-up: move what lives for the whole run out of the collector's sight, collect less often (again,
    after ``hold_collection``). Before a fork it also keeps the shared pages shared (the collector would otherwise
    touch them)."""
    gc.collect()
    gc.freeze()
    collect_less_often()
    gc.enable()


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library's symbols, as the interpreter linked them (no ``ldconfig`` run, unlike find_library)."""
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def trim_heap() -> bool:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``); after each pass of a worker.

    A cycle frees what it built (a page's text, its gzip form, the SDK's points); glibc keeps those freed pages and
    the long-lived objects allocated between them keep them apart. Measured on 1024 fleet hosts of 8 GPUs in one
    process: 229 KB PSS per host before a trim, 188 KB after; a trim took 2-8 ms. Not glibc: no-op.
    """
    trim = getattr(_libc(), "malloc_trim", None)
    return bool(trim(0)) if trim is not None else False


def pin_mmap_threshold() -> bool:
    """Have glibc serve every allocation of 1 MiB or more from its own mapping, returned to the system when freed.

    By default glibc raises its mmap threshold (up to 32 MiB) the first time such a buffer is freed, after which
    the next ones come from the heap, whose freed fragments it keeps. Measured at 4096 GPUs after 8 plain
    scrapers for 15 s: the two processes held 493 MB PSS 12 s later with the default and 310 MB with the threshold
    pinned (236 vs 272 MB before the scrapers). The price, a fresh mapping (page faults) for each such buffer, is
    about 4 % of a cycle (in process at 4096 GPUs: 983 -> 1028 ms). A ``MALLOC_MMAP_THRESHOLD_`` the user set wins;
    not glibc: no-op.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    libc = _libc()
    try:
        return libc is not None and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    except AttributeError:  # a libc without mallopt: its own policy stays
        log.debug("mallopt not available; the C library's mmap threshold stays as it is")
        return False

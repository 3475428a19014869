"""dcgm-exporter 4.8.4's opt-in exporter metrics (``--enable-exporter-metrics``) where they overlap ours: the
standard ``process_*`` family of Prometheus client libraries, for the process that collects (the worker).

Known from 4.8.4's release notes (NVIDIA/dcgm-exporter #745: "Go runtime, process, and HTTP handler metrics"), which
are client_golang's stock collectors; the names and units below are those collectors'. ``go_*`` has no meaning in a
Python process and is not served; the HTTP handler's ``promhttp_metric_handler_*`` is not served either (scrapes
are answered by the serving process, whose counts do not reach the page). Read from /proc (Linux); elsewhere no point.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from pathlib import Path

from otel_fakegpu.telemetry.selfmetrics import SelfMetric, single

_PROC = Path("/proc/self")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _statm(index: int) -> int | None:
    try:
        return int((_PROC / "statm").read_text().split()[index]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def _start_time() -> float | None:
    """Seconds since the epoch the process started: its start tick after boot, plus the boot time."""
    try:
        ticks = int((_PROC / "stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line[:6] == "btime "
        )
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / _TICKS


def _open_fds() -> int | None:
    try:
        return len(os.listdir(_PROC / "fd"))
    except OSError:
        return None


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def process_metrics() -> list[SelfMetric]:
    """The ``process_*`` family, observed once per cycle like every other self-metric."""
    max_fds: Callable[[], float | int | None] = lambda: resource.getrlimit(resource.RLIMIT_NOFILE)[0]  # noqa: E731
    return [
        SelfMetric("process_cpu_seconds_total", True, "s", "Total user and system CPU time spent in seconds.",
                   single(_cpu_seconds)),
        SelfMetric("process_resident_memory_bytes", False, "By", "Resident memory size in bytes.",
                   single(lambda: _statm(1))),
        SelfMetric("process_virtual_memory_bytes", False, "By", "Virtual memory size in bytes.",
                   single(lambda: _statm(0))),
        SelfMetric("process_start_time_seconds", False, "s",
                   "Start time of the process since unix epoch in seconds.", single(_start_time)),
        SelfMetric("process_open_fds", False, "1", "Number of open file descriptors.", single(_open_fds)),
        SelfMetric("process_max_fds", False, "1", "Maximum number of open file descriptors.", single(max_fds)),
    ]  # fmt: skip

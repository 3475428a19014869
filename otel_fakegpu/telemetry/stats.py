"""Counters about the exporter's own cycles: what /health reports and the self-metrics expose."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

RECENT_CYCLES = 32


@dataclass(frozen=True)
class CycleStatsView:
    cycles_total: int
    errors_total: int
    last_ok_at: float | None  # wall-clock seconds of the last cycle that published
    last_duration_s: float | None
    last_error: str | None
    series: int
    gpus: int = 0  # GPU entities in the last successful cycle
    recent_durations_s: tuple[float, ...] = ()  # the last RECENT_CYCLES successful cycles, oldest first


class CycleStats:
    """Thread-safe tally written by the cycle thread, read by HTTP handlers and SDK callbacks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cycles = 0
        self._errors = 0
        self._last_ok_at: float | None = None
        self._last_duration: float | None = None
        self._last_error: str | None = None
        self._series = 0
        self._gpus = 0
        self._recent: deque[float] = deque(maxlen=RECENT_CYCLES)

    def record_ok(self, finished_at: float, duration_s: float, series: int, gpus: int = 0) -> None:
        with self._lock:
            self._cycles += 1
            self._last_ok_at = finished_at
            self._last_duration = duration_s
            self._recent.append(duration_s)
            self._last_error = None
            self._series = series
            self._gpus = gpus

    def record_error(self, message: str) -> None:
        with self._lock:
            self._cycles += 1
            self._errors += 1
            self._last_error = message

    def view(self) -> CycleStatsView:
        with self._lock:
            return CycleStatsView(
                self._cycles,
                self._errors,
                self._last_ok_at,
                self._last_duration,
                self._last_error,
                self._series,
                self._gpus,
                tuple(self._recent),
            )

"""A bounded retry buffer: what a push target could not take is kept, in order and with its original
timestamps, and replayed with backoff when the target is back. Beyond the bound the oldest is dropped and
counted. The stock OpenTelemetry exporters drop a failed export; this is what makes push lossless."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class DeliveryError(Exception):
    """A target that could not take an item for a known reason (down, refused, answered an error):
    logged as one line and retried, never as a traceback."""


@dataclass(frozen=True)
class PushStatsView:
    exports_ok: int
    exports_failed: int
    points_sent: int
    points_buffered: int
    points_dropped: int
    last_export_seconds: float | None
    last_delivery_seconds: float | None  # from being queued to delivered, for the last item delivered


class RetryQueue(Generic[T]):
    """Items carry a cost (points, or bytes); ``put`` never blocks, a sender thread drains in order."""

    def __init__(
        self,
        name: str,
        send: Callable[[T], bool],
        cost: Callable[[T], int],
        max_cost: int,
        backoff_s: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self.name = name
        self._send = send
        self._cost = cost
        self._max_cost = max_cost
        self._backoff = backoff_s
        self._items: deque[tuple[T, int, float]] = deque()  # (item, cost, monotonic time queued)
        self._queued_cost = 0
        self._in_flight_cost = 0
        self._cond = threading.Condition()
        self._ok = self._failed = self._sent = self._dropped = 0
        self._last_export: float | None = None
        self._last_delivery: float | None = None

    def put(self, item: T) -> None:
        cost = self._cost(item)
        with self._cond:
            self._items.append((item, cost, time.monotonic()))
            self._queued_cost += cost
            self._enforce_bound()
            self._cond.notify()

    def _enforce_bound(self) -> None:
        while self._items and self._queued_cost + self._in_flight_cost > self._max_cost and len(self._items) > 1:
            _, cost, _ = self._items.popleft()
            self._queued_cost -= cost
            self._dropped += cost
            log.warning("%s: buffer full, dropped the oldest %d points", self.name, cost)

    def view(self) -> PushStatsView:
        with self._cond:
            return PushStatsView(
                self._ok,
                self._failed,
                self._sent,
                self._queued_cost + self._in_flight_cost,
                self._dropped,
                self._last_export,
                self._last_delivery,
            )

    def run(self, stop: threading.Event) -> None:
        """Send until ``stop``; on failure wait (doubling up to the cap) and retry the same item first."""
        delay = self._backoff[0]
        while not stop.is_set():
            taken = self._take(stop)
            if taken is None:
                continue
            if self._attempt(*taken):
                delay = self._backoff[0]
            else:
                stop.wait(delay)
                delay = min(delay * 2, self._backoff[1])

    def _take(self, stop: threading.Event) -> tuple[T, int, float] | None:
        with self._cond:
            while not self._items:
                if stop.is_set():
                    return None
                self._cond.wait(0.2)
            taken = self._items.popleft()
            self._queued_cost -= taken[1]
            self._in_flight_cost = taken[1]
            return taken

    def _attempt(self, item: T, cost: int, queued_at: float) -> bool:
        started = time.perf_counter()
        try:
            ok = self._send(item)
        except DeliveryError as exc:
            log.warning("%s: %s", self.name, exc)
            ok = False
        except Exception:  # a bug in an exporter, not the peer: worth its traceback
            log.exception("%s: export raised", self.name)
            ok = False
        elapsed = time.perf_counter() - started
        with self._cond:
            self._in_flight_cost = 0
            self._last_export = elapsed
            if ok:
                self._ok += 1
                self._sent += cost
                self._last_delivery = time.monotonic() - queued_at
            else:
                self._failed += 1
                self._items.appendleft((item, cost, queued_at))  # first in line again: order is kept
                self._queued_cost += cost
                self._enforce_bound()
        if not ok:
            log.warning("%s: export failed; %d points buffered for retry", self.name, self.view().points_buffered)
        return ok

    def drain(self, deadline_s: float) -> None:
        """At shutdown: one last attempt at everything queued, within ``deadline_s``."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            with self._cond:
                if not self._items:
                    return
                taken = self._items.popleft()
                self._queued_cost -= taken[1]
                self._in_flight_cost = taken[1]
            if not self._attempt(*taken):
                return

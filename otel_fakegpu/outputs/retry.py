"""A bounded retry buffer: what a push target could not take is kept, in order and with its original
timestamps, and replayed with backoff when the target is back. Beyond the bound the oldest is dropped and
counted. The stock OpenTelemetry exporters drop a failed export; this is what makes push lossless."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


MAX_RETRY_AFTER_S = 300.0  # a receiver asking for longer is asked again after this long
# A drained backlog this large leaves hundreds of MB freed but kept by the allocators (see release_memory).
RELEASE_AFTER_POINTS = 100_000
COMPACT_EVERY_S = 1.0  # while waiting to retry, look for newly queued items to compact this often


def release_memory() -> None:
    """After a large backlog drained: collect the cyclic garbage it left (the raised GC thresholds would let
    it wait for a rare full collection) and hand glibc's free heap pages back to the system. Measured on a
    2 M-point backlog: RSS 427 -> 342 MB; what stays is pymalloc arenas kept by a few live objects each."""
    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        if name:
            ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


class DeliveryError(Exception):
    """A target that could not take an item for a transient reason (down, overloaded, timed out): logged as
    one line and retried, never as a traceback. ``retry_after_s`` is the receiver's Retry-After, if any."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RejectedError(DeliveryError):
    """The receiver refused the item for good (a 4xx other than 408/429, or a gRPC status that no retry can
    change): retrying would block everything queued behind it, so the item is dropped and counted."""


@dataclass(frozen=True)
class PushStatsView:
    exports_ok: int
    exports_failed: int
    points_sent: int
    points_buffered: int
    points_dropped: int  # every reason together
    last_export_seconds: float | None
    last_delivery_seconds: float | None  # from being queued to delivered, for the last item delivered
    dropped_by_reason: tuple[tuple[str, int], ...] = ()  # ("overflow", n), ("rejected", n)


Send = Callable[[T], int]
"""Delivers one item and returns how many of its points the receiver refused inside an accepted request
(OTLP partial success; 0 normally); raises DeliveryError (retry) or RejectedError (drop)."""
DROP_REASONS = ("overflow", "rejected")
Done = Callable[[T, str], None]
"""Told once of each item the queue is done with, and how: "ok" (delivered), "rejected" (refused for good) or
"overflow" (dropped for room). Called outside the queue's lock."""


class RetryQueue(Generic[T]):
    """Items carry a cost (points); ``put`` never blocks, a sender thread drains in order. A permanent
    refusal drops that one item and delivery goes on with the next."""

    def __init__(
        self,
        name: str,
        send: Send[T],
        cost: Callable[[T], int],
        max_cost: int,
        backoff_s: tuple[float, float] = (0.5, 30.0),
        compact: Callable[[T], T | None] | None = None,
        on_done: Done[T] | None = None,
    ) -> None:
        """``compact`` turns a waiting item into a smaller equivalent (None: nothing to gain); it runs in the
        sender's backoff waits, so an outage's backlog is held compact. ``on_done``: see ``Done``."""
        self.name = name
        self._send = send
        self._cost = cost
        self._max_cost = max_cost
        self._backoff = backoff_s
        self._compact = compact
        self._on_done = on_done
        self._items: deque[tuple[T, int, float]] = deque()  # (item, cost, monotonic time queued)
        self._queued_cost = 0
        self._in_flight_cost = 0
        self._cond = threading.Condition()
        self._ok = self._failed = self._sent = self._refused_in_a_row = 0
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self._last_export: float | None = None
        self._last_delivery: float | None = None
        self._peak_cost = 0  # the largest backlog since memory was last released

    def put(self, item: T, queued_at: float | None = None) -> None:
        """Queue ``item`` as the newest; ``queued_at`` (monotonic) when it waited elsewhere first (on disk)."""
        cost = self._cost(item)
        with self._cond:
            self._items.append((item, cost, time.monotonic() if queued_at is None else queued_at))
            self._queued_cost += cost
            dropped = self._enforce_bound()
            self._peak_cost = max(self._peak_cost, self._queued_cost)
            self._cond.notify()
        self._done(dropped)

    def _enforce_bound(self) -> list[tuple[T, str]]:
        """Drop the oldest waiting items until the buffer fits; returns them for ``_done`` (after the lock)."""
        dropped: list[tuple[T, str]] = []
        while self._items and self._queued_cost + self._in_flight_cost > self._max_cost and len(self._items) > 1:
            item, cost, _ = self._items.popleft()
            self._queued_cost -= cost
            self._dropped["overflow"] += cost
            dropped.append((item, "overflow"))
            log.warning("%s: buffer full, dropped the oldest %d points", self.name, cost)
        return dropped

    def drop_oldest(self, why: str, which: Callable[[T], bool]) -> bool:
        """Drop the oldest waiting item that ``which`` picks, for room elsewhere (the queue directory), counted
        as overflow; False when none waits (the one in flight stays)."""
        with self._cond:
            index = next((i for i, entry in enumerate(self._items) if which(entry[0])), None)
            if index is None:
                return False
            item, cost, _ = self._items[index]
            del self._items[index]
            self._queued_cost -= cost
            self._dropped["overflow"] += cost
        log.warning("%s: %s, dropped the oldest %d points", self.name, why, cost)
        self._done([(item, "overflow")])
        return True

    def count_dropped(self, reason: str, points: int) -> None:
        """Points lost before they reached the buffer (a corrupt queue record): counted with the others."""
        with self._cond:
            self._dropped[reason] = self._dropped.get(reason, 0) + points

    def _done(self, finished: list[tuple[T, str]]) -> None:
        if self._on_done is not None:
            for item, outcome in finished:
                self._on_done(item, outcome)

    def view(self) -> PushStatsView:
        with self._cond:
            return PushStatsView(
                self._ok,
                self._failed,
                self._sent,
                self._queued_cost + self._in_flight_cost,
                sum(self._dropped.values()),
                self._last_export,
                self._last_delivery,
                tuple(self._dropped.items()),
            )

    def run(self, stop: threading.Event) -> None:
        """Send until ``stop``; on a transient failure wait (doubling up to the cap, or as long as the receiver
        asked with Retry-After, capped) and retry the same item first."""
        delay = self._backoff[0]
        while not stop.is_set():
            taken = self._take(stop)
            if taken is None:
                continue
            outcome = self._attempt(*taken)
            if outcome is None:
                delay = self._backoff[0]
                self._release_after_backlog()
                continue
            self._wait_compacting(stop, delay if outcome < 0 else min(outcome, MAX_RETRY_AFTER_S))
            delay = min(delay * 2, self._backoff[1])

    def _wait_compacting(self, stop: threading.Event, wait_s: float) -> None:
        """Wait ``wait_s`` before the retry, compacting what waits (and each cycle that arrives) meanwhile."""
        deadline = time.monotonic() + wait_s
        while not stop.is_set():
            self._compact_waiting(stop, deadline - time.monotonic())
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            stop.wait(min(remaining, COMPACT_EVERY_S))

    def _compact_waiting(self, stop: threading.Event, budget_s: float) -> None:
        """Oldest first, within ``budget_s``: replace waiting items by their compact form."""
        if self._compact is None:
            return
        end = time.monotonic() + budget_s
        with self._cond:
            entries = list(self._items)
        for entry in entries:
            if stop.is_set() or time.monotonic() >= end:
                return
            compacted = self._compact(entry[0])
            if compacted is None:
                continue
            with self._cond:  # the entry may have been dropped for room meanwhile: find it by identity
                for index, current in enumerate(self._items):
                    if current is entry:
                        self._items[index] = (compacted, entry[1], entry[2])
                        break

    def _release_after_backlog(self) -> None:
        with self._cond:
            drained = not self._items and self._peak_cost >= RELEASE_AFTER_POINTS
            if drained:
                self._peak_cost = 0
        if drained:
            log.info("%s: backlog delivered; releasing the memory it held", self.name)
            release_memory()

    def _take(self, stop: threading.Event) -> tuple[T, int, float] | None:
        with self._cond:
            while not self._items:
                if stop.is_set():
                    return None
                self._cond.wait(0.2)
            return self._pop_locked()

    def _pop_locked(self) -> tuple[T, int, float]:
        """The first waiting item, now in flight; the caller holds the lock and knows there is one."""
        taken = self._items.popleft()
        self._queued_cost -= taken[1]
        self._in_flight_cost = taken[1]
        return taken

    def _attempt(self, item: T, cost: int, queued_at: float) -> float | None:
        """One try; None when the item is done with (delivered or dropped), else how long to wait before
        retrying it: the receiver's Retry-After, or -1 for the queue's own backoff."""
        started = time.perf_counter()
        rejected, retry_after = 0, None
        try:
            rejected = self._send(item)
            outcome = "ok"
        except RejectedError as exc:
            self._refused_in_a_row, outcome = self._refused_in_a_row + 1, "rejected"  # logged once, then counted
            log.log(logging.ERROR if self._refused_in_a_row == 1 else logging.DEBUG, "%s: receiver refused %d points "
                    "for good, dropped: %s (logged once until it accepts)", self.name, cost, exc)  # fmt: skip
        except DeliveryError as exc:
            log.warning("%s: %s", self.name, exc)
            outcome, retry_after = "retry", exc.retry_after_s
        except Exception:  # a bug in an exporter, not the peer: worth its traceback
            log.exception("%s: export raised", self.name)
            outcome = "retry"
        if outcome == "ok" and self._refused_in_a_row:
            log.warning("%s: receiver accepts again after refusing %d pushes", self.name, self._refused_in_a_row)
        self._refused_in_a_row *= outcome == "rejected"  # a run of refusals ends with any other outcome
        finished = self._account(
            item, cost, queued_at, outcome, min(max(rejected, 0), cost), time.perf_counter() - started
        )
        self._done(finished)
        if outcome != "retry":
            return None
        log.warning("%s: export failed; %d points buffered for retry", self.name, self.view().points_buffered)
        return -1.0 if retry_after is None else max(0.0, retry_after)

    def _account(
        self, item: T, cost: int, queued_at: float, outcome: str, rejected: int, elapsed: float
    ) -> list[tuple[T, str]]:
        """Count one try; returns the items it finished (this one, or those a retry's return pushed out)."""
        with self._cond:
            self._in_flight_cost = 0
            self._last_export = elapsed
            if outcome == "ok":
                self._ok += 1
                self._sent += cost - rejected
                self._dropped["rejected"] += rejected
                self._last_delivery = time.monotonic() - queued_at
            elif outcome == "rejected":
                self._failed += 1
                self._dropped["rejected"] += cost
            else:
                self._failed += 1
                self._items.appendleft((item, cost, queued_at))  # first in line again: order is kept
                self._queued_cost += cost
                return self._enforce_bound()
        return [(item, outcome)]

    def drain(self, deadline_s: float) -> None:
        """At shutdown: one last attempt at everything queued, within ``deadline_s``."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            with self._cond:
                if not self._items:
                    return
                taken = self._pop_locked()
            if self._attempt(*taken) is not None:
                return

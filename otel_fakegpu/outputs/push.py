"""What every push target shares: a cycle consumer that queues, a retry buffer, a sender thread draining
it in order, and the same self-metrics labelled by target."""

from __future__ import annotations

import logging
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from otel_fakegpu.outputs.disk_queue import FULL, DiskQueue, QueueState
from otel_fakegpu.outputs.queue_record import HEADER_BYTES, Record
from otel_fakegpu.outputs.retry import PushStatsView, RetryQueue
from otel_fakegpu.telemetry import CycleResult, Liveness, SelfMetric
from otel_fakegpu.telemetry.tracing import CycleTracing, TracedItem

log = logging.getLogger(__name__)

T = TypeVar("T")


class PushOutput(ABC, Generic[T]):
    """Subclasses turn a cycle into queued items (``__call__``) and deliver one item (``_send``)."""

    def __init__(self, target: str, cost: Callable[[T], int], buffer_points: int, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._item_cost = cost
        self.span_name = f"queue {target} push"
        self.tracing = CycleTracing()  # the app sets the real one before the first cycle
        self.queue: RetryQueue[TracedItem[T]] = RetryQueue(
            f"{target} push",
            self._send_traced,
            lambda traced: cost(traced.item),
            buffer_points,
            compact=self._compact_traced,
            on_done=self._finish_traced,
        )
        self._thread: threading.Thread | None = None
        self.disk: DiskQueue | None = None  # the queue directory, when push must survive a restart
        self._on_disk: dict[int, tuple[TracedItem[T], str]] = {}  # id(traced) -> (traced, its record's name)

    @abstractmethod
    def __call__(self, result: CycleResult) -> int:
        """Queue what this cycle sends; returns 0 (series are counted by the Prometheus output)."""

    @abstractmethod
    def _send(self, item: T) -> int:
        """Deliver one item; returns the points the receiver refused inside an accepted request (usually 0).
        Raises DeliveryError to retry, RejectedError to drop it."""

    def _compact(self, item: T) -> T | None:
        """A smaller equivalent of a waiting item, or None (already compact, or nothing to gain)."""
        return None

    def can_keep_on_disk(self) -> bool:
        """Whether this target's requests can be written to a queue directory."""
        return False

    def _stored(self, item: T) -> tuple[T, bytes]:
        """The form an item waits in when it is also on disk, and its record's payload (gzip bytes)."""
        raise NotImplementedError

    def _restored(self, payload: bytes, points: int) -> T:
        """The item a record's payload holds (raises ValueError, OSError, EOFError or zlib.error if none)."""
        raise NotImplementedError

    def put(self, item: T) -> None:
        """Queue one request for the sender, remembering the cycle it came from (its trace parent); with a
        queue directory, the request is on disk before it is queued (so before its first attempt)."""
        if self.disk is None:
            self.queue.put(self.tracing.wrap(item))
            return
        stored, payload = self._stored(item)
        traced = self.tracing.wrap(stored)
        self._persist(traced, Record(self.target, self._item_cost(stored), time.time(), payload))
        self.queue.put(traced)

    def _persist(self, traced: TracedItem[T], record: Record) -> None:
        """Write the record, dropping the oldest waiting requests while the directory is full or the disk is
        below its free-space floor; with nothing left to drop below the floor, it stays in memory only."""
        disk = self.disk
        assert disk is not None
        size = HEADER_BYTES + len(record.payload)
        while (why := disk.room(size)) is not None:
            reason = "queue directory full" if why == FULL else "free disk space below the floor"
            if not self.queue.drop_oldest(reason, lambda waiting: id(waiting) in self._on_disk):
                break  # what waits in memory only frees no disk space: it stays
        if why is not None and why != FULL:
            disk.degrade(f"free disk space in {disk.directory} below {disk.min_free_bytes} bytes")
            return
        name = disk.append(record)
        if name is not None:
            self._on_disk[id(traced)] = (traced, name)

    def restore(self) -> int:
        """Queue what the directory holds, oldest first, before any new cycle; returns the records queued."""
        disk = self.disk
        if disk is None:
            return 0
        restored, now, clock = 0, time.time(), time.monotonic()
        for name, record in disk.load(lambda points: self.queue.count_dropped("corrupt", points)):
            try:
                item = self._restored(record.payload, record.points)
            except (ValueError, OSError, EOFError, zlib.error) as exc:
                disk.set_aside(name, f"unreadable payload: {exc}")
                self.queue.count_dropped("corrupt", record.points)
                continue
            traced = self.tracing.wrap(item)
            self._on_disk[id(traced)] = (traced, name)
            self.queue.put(traced, queued_at=clock - max(0.0, now - record.created_at))
            restored += 1
        if restored:
            state = disk.state()
            log.info("%s push: %d requests (%d bytes) kept in %s from before the restart are sent first",
                     self.target, restored, state.bytes, disk.directory)  # fmt: skip
        return restored

    def _send_traced(self, traced: TracedItem[T]) -> int:
        return self.tracing.send(traced, self._send, self.target)

    def _finish_traced(self, traced: TracedItem[T], outcome: str) -> None:
        self.tracing.finish(traced, outcome)
        stored = self._on_disk.pop(id(traced), None)
        if stored is not None and self.disk is not None:
            self.disk.remove(stored[1])  # delivered, refused for good or dropped: done with, on disk too

    def _compact_traced(self, traced: TracedItem[T]) -> TracedItem[T] | None:
        compact = self._compact(traced.item)
        if compact is None:
            return None
        traced.item = compact  # same request, same span: only its waiting form changes
        return traced

    def _release(self) -> None:
        """Close the target's client."""

    def start(self, stop: threading.Event, liveness: Liveness | None = None) -> None:
        self.restore()
        run = self.queue.run if liveness is None else liveness.guard(f"{self.target} push", _run_queue)
        args = (stop,) if liveness is None else (stop, self.queue)
        self._thread = threading.Thread(target=run, args=args, name=f"{self.target}-push", daemon=True)
        self._thread.start()

    def close(self, drain_s: float = 5.0) -> None:
        """After ``stop`` is set: let the sender finish its request, give the queue one last try, close."""
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 5)
        self.queue.drain(drain_s)
        self._release()
        if self.disk is not None:
            self.disk.close()  # what is left stays on disk for the next start

    def use_disk(self, disk: DiskQueue) -> None:
        """Keep every request in ``disk`` too until it is done with (call before ``start``)."""
        self.disk = disk
        self.queue.count_dropped("corrupt", 0)  # the series exists from the start

    def self_metrics(self) -> list[SelfMetric]:
        metrics = push_self_metrics(self.target, self.queue)
        return metrics if self.disk is None else metrics + queue_self_metrics(self.target, self.disk)


def _run_queue(stop: threading.Event, queue: RetryQueue[Any]) -> None:
    queue.run(stop)


class _OneView:
    """The queue's counters read once per collection: the first family read (exports) takes the view and
    the others reuse it, so sent, buffered and dropped on one page describe the same moment."""

    def __init__(self, queue: RetryQueue[Any]) -> None:
        self._queue = queue
        self.view = queue.view()

    def refresh(self) -> PushStatsView:
        self.view = self._queue.view()
        return self.view


def push_self_metrics(target: str, queue: RetryQueue[Any]) -> list[SelfMetric]:
    """Self-metrics of one push target, labelled ``target``; the pipeline merges targets into one family."""
    labels = {"target": target}
    one = _OneView(queue)

    def read(attr: str) -> list[tuple[float | int, dict[str, str]]]:
        value = getattr(one.view, attr)
        return [] if value is None else [(value, labels)]

    def exports() -> list[tuple[float | int, dict[str, str]]]:
        view = one.refresh()
        return [(view.exports_ok, {**labels, "result": "ok"}), (view.exports_failed, {**labels, "result": "failed"})]

    def dropped() -> list[tuple[float | int, dict[str, str]]]:
        return [(count, {**labels, "reason": reason}) for reason, count in one.view.dropped_by_reason]

    return [
        SelfMetric("otel_fakegpu_push_exports_total", True, "{request}", "Push requests by result.", exports),
        SelfMetric("otel_fakegpu_push_points_sent_total", True, "{point}", "Points delivered.",
                   lambda: read("points_sent")),
        SelfMetric("otel_fakegpu_push_points_buffered", False, "{point}", "Points waiting for (re)delivery.",
                   lambda: read("points_buffered")),
        SelfMetric("otel_fakegpu_push_points_dropped_total", True, "{point}",
                   "Points dropped: reason=overflow (the retry buffer or queue directory was full), rejected (the "
                   "receiver refused them for good) or corrupt (a queue directory record could not be read).",
                   dropped),
        SelfMetric("otel_fakegpu_push_last_export_seconds", False, "s", "Duration of the last push request.",
                   lambda: read("last_export_seconds")),
        SelfMetric("otel_fakegpu_push_last_delivery_seconds", False, "s",
                   "From queueing to delivery of the last request delivered (a cycle's last piece: its push time).",
                   lambda: read("last_delivery_seconds")),
    ]  # fmt: skip


def queue_self_metrics(target: str, disk: DiskQueue) -> list[SelfMetric]:
    """The queue directory of one push target: depth in records and bytes, oldest record's age, corrupt records."""
    labels = {"target": target}

    def read(value: Callable[[QueueState], float | int]) -> Callable[[], list[tuple[float | int, dict[str, str]]]]:
        return lambda: [(value(disk.state()), labels)]

    def oldest_age(state: QueueState) -> float:
        return 0.0 if state.oldest_created_at is None else max(0.0, time.time() - state.oldest_created_at)

    return [
        SelfMetric("otel_fakegpu_push_queue_records", False, "{request}", "Requests kept in the queue directory.",
                   read(lambda state: state.records)),
        SelfMetric("otel_fakegpu_push_queue_bytes", False, "By", "Bytes of the requests kept in the queue directory.",
                   read(lambda state: state.bytes)),
        SelfMetric("otel_fakegpu_push_queue_oldest_age_seconds", False, "s",
                   "Age of the oldest request in the queue directory (0 when empty).", read(oldest_age)),
        SelfMetric("otel_fakegpu_push_queue_corrupt_records_total", True, "{record}",
                   "Queue directory files set aside unread since start (truncated, corrupt, foreign).",
                   read(lambda state: state.corrupt)),
    ]  # fmt: skip

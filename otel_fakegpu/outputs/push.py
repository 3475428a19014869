"""What every push target shares: a cycle consumer that queues, a retry buffer, a sender thread draining
it in order, and the same self-metrics labelled by target."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from otel_fakegpu.outputs.retry import PushStatsView, RetryQueue
from otel_fakegpu.telemetry import CycleResult, Liveness, SelfMetric
from otel_fakegpu.telemetry.tracing import CycleTracing, TracedItem

T = TypeVar("T")


class PushOutput(ABC, Generic[T]):
    """Subclasses turn a cycle into queued items (``__call__``) and deliver one item (``_send``)."""

    def __init__(self, target: str, cost: Callable[[T], int], buffer_points: int, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
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

    def put(self, item: T) -> None:
        """Queue one request for the sender, remembering the cycle it came from (its trace parent)."""
        self.queue.put(self.tracing.wrap(item))

    def _send_traced(self, traced: TracedItem[T]) -> int:
        return self.tracing.send(traced, self._send, self.target)

    def _finish_traced(self, traced: TracedItem[T], outcome: str) -> None:
        self.tracing.finish(traced, outcome)

    def _compact_traced(self, traced: TracedItem[T]) -> TracedItem[T] | None:
        compact = self._compact(traced.item)
        if compact is None:
            return None
        traced.item = compact  # same request, same span: only its waiting form changes
        return traced

    def _release(self) -> None:
        """Close the target's client."""

    def start(self, stop: threading.Event, liveness: Liveness | None = None) -> None:
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

    def self_metrics(self) -> list[SelfMetric]:
        return push_self_metrics(self.target, self.queue)


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
                   "Points dropped: reason=overflow (the retry buffer was full) or rejected (the receiver refused "
                   "them for good).", dropped),
        SelfMetric("otel_fakegpu_push_last_export_seconds", False, "s", "Duration of the last push request.",
                   lambda: read("last_export_seconds")),
        SelfMetric("otel_fakegpu_push_last_delivery_seconds", False, "s",
                   "From queueing to delivery of the last request delivered (a cycle's last piece: its push time).",
                   lambda: read("last_delivery_seconds")),
    ]  # fmt: skip

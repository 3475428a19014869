"""Runs a source's fetches on a thread of their own, started on request or at a scheduled time, so the
cycle only collects an answer that is (usually) already there and never waits past the timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from otel_fakegpu.attribution.source import Claims, Source, SourceError


@dataclass(frozen=True)
class Answer:
    claims: Claims
    at: float  # wall-clock seconds the source answered


Outcome = Answer | SourceError


class Fetcher:
    """At most one fetch in flight; each finished fetch is taken exactly once."""

    def __init__(self, source: Source, timeout_s: float, clock: Callable[[], float] = time.time) -> None:
        self._source, self._timeout_s, self._clock = source, timeout_s, clock
        self._cond = threading.Condition()
        self._due: float | None = None  # monotonic start time of the next fetch; None: none requested
        self._started: float | None = None  # monotonic start of the fetch in flight
        self._abandoned = False  # the fetch in flight was given up on: its outcome is dropped
        self._done: Outcome | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        # An in-process source (the simulator's) answers at once: it is fetched on the taker's thread, so a fleet
        # of thousands of hosts in one process does not run a thread per host.
        self._inline = not source.can_fail

    def request(self, at: float | None = None) -> None:
        """Ask for a fetch at monotonic time ``at`` (now when None); a no-op while one is pending."""
        with self._cond:
            if self._done is not None or (self._started is not None and not self._abandoned):
                return
            due = time.monotonic() if at is None else at
            self._due = due if self._due is None else min(self._due, due)
            if self._inline:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="attribution", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def take(self) -> Outcome | None:
        """The requested fetch's outcome, waiting at most the timeout after it started; None if none requested."""
        with self._cond:
            if self._done is None and self._started is None and self._due is None:
                return None
            if self._inline:
                self._due = None
                return self._fetch()
            if self._started is not None and not self._abandoned:
                deadline = self._started + self._timeout_s
            else:  # not started yet, or behind a fetch given up on: the requested one has the whole timeout
                deadline = max(time.monotonic(), self._due or 0.0) + self._timeout_s
            while self._done is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if self._started is not None:
                        self._abandoned = True
                    return SourceError(f"{self._source.name}: no answer in {self._timeout_s:g} s")
                self._cond.wait(remaining)
            outcome, self._done = self._done, None
            return outcome

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (self._due is None or self._due > time.monotonic()):
                    self._cond.wait(None if self._due is None else self._due - time.monotonic())
                if self._closed:
                    return
                self._due, self._started, self._abandoned = None, time.monotonic(), False
            outcome = self._fetch()
            with self._cond:
                if not self._abandoned:
                    self._done = outcome
                self._started = None
                self._cond.notify_all()

    def _fetch(self) -> Outcome:
        try:
            return Answer(self._source.fetch(self._timeout_s), self._clock())
        except SourceError as exc:
            return exc
        except Exception as exc:  # a broken source must not kill the thread: it is one failed fetch
            return SourceError(f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout_s + 1)

"""Engines backed by a library connection that can fail (DCGM, NVML): a failed call fails that read, the
engine reports FAILED, and later reads reconnect with exponential backoff until the library answers again."""

from __future__ import annotations

import logging
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import TypeVar

from otel_fakegpu.engine.base import Engine, EngineError, EngineState, EngineStatus
from otel_fakegpu.engine.snapshot import Snapshot

log = logging.getLogger(__name__)

T = TypeVar("T")

BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0


class EngineUnavailable(Exception):  # noqa: N818 - reads as the condition it reports
    """The engine cannot run at all here (library missing or too old): one line for the user, exit 2."""


class ConnectedEngine(Engine):
    """Connection bookkeeping shared by the DCGM and NVML engines.

    Subclasses say how to connect, disconnect, describe and read; every library call goes through
    ``_call``, which turns the library's errors into a FAILED state, an error count and a backoff.
    """

    def __init__(
        self, error_types: tuple[type[BaseException], ...], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._error_types: tuple[type[BaseException], ...] = (*error_types, OSError)
        self._clock = clock
        self._lock = threading.RLock()  # one library handle, shared by the cycle and the simulator threads
        self._connected = False
        self._state = EngineState.STARTING
        self._detail = "not connected yet"
        self._reads = 0
        self._errors = 0
        self._failures_in_row = 0
        self._retry_at = 0.0

    @abstractmethod
    def _connect(self) -> None:
        """Open the connection and discover entities; raises one of the library's errors."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Release the connection; called after a failure too, so it must tolerate a dead peer."""

    @abstractmethod
    def _describe(self) -> str:
        """What a healthy connection reads, for /health (e.g. ``4 GPUs on localhost:5555``)."""

    @abstractmethod
    def _read(self, field_ids: Sequence[int], samples_after: int | None) -> Snapshot:
        """One batch read over an open connection."""

    def read_latest(self, field_ids: Sequence[int], samples_after: int | None = None) -> Snapshot:
        snapshot = self._call("read", lambda: self._read(field_ids, samples_after))
        self._reads += 1
        return snapshot

    def _call(self, what: str, action: Callable[[], T]) -> T:
        """Run ``action`` connected; a library error fails it with EngineError and schedules a reconnect."""
        with self._lock:
            self._ensure_connected()
            try:
                return action()
            except self._error_types as exc:
                self._fail(what, exc)
                raise EngineError(f"{self.kind} {what} failed: {exc}") from None

    def _ensure_connected(self) -> None:
        if self._connected:
            return
        wait = self._retry_at - self._clock()
        if wait > 0:
            raise EngineError(f"{self._detail}; next reconnect in {wait:.1f} s")
        try:
            self._connect()
        except self._error_types as exc:
            self._fail("connect", exc)
            raise EngineError(f"{self.kind} connect failed: {exc}") from None
        self._connected = True
        self._failures_in_row = 0
        self._detail = self._describe()
        self._state = EngineState.OK
        log.info("%s engine connected: %s", self.kind, self._detail)

    def _fail(self, what: str, exc: BaseException) -> None:
        self._errors += 1
        self._failures_in_row += 1
        delay = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** (self._failures_in_row - 1))
        self._retry_at = self._clock() + delay
        self._state = EngineState.FAILED
        self._detail = f"{what} failed: {type(exc).__name__}: {exc}"
        log.warning("%s engine: %s; reconnecting in %.1f s", self.kind, self._detail, delay)
        if self._connected:
            self._connected = False
            try:
                self._disconnect()
            except self._error_types as cleanup_exc:
                log.debug("%s engine: disconnect after failure: %s", self.kind, cleanup_exc)

    def connect(self) -> bool:
        """Connect now if not connected (at start-up); False, with the state FAILED, when it cannot."""
        try:
            with self._lock:
                self._ensure_connected()
        except EngineError:
            return False
        return True

    # Read without the lock by /health on the event loop (attribute reads are atomic under the GIL).
    def status(self) -> EngineStatus:
        return EngineStatus(self.kind, self._state, self._detail)

    @property
    def reads_total(self) -> int:
        return self._reads

    @property
    def errors_total(self) -> int:
        return self._errors

    def close(self) -> None:
        with self._lock:
            if self._connected:
                self._connected = False
                try:
                    self._disconnect()
                except self._error_types as exc:
                    log.debug("%s engine: disconnect at shutdown: %s", self.kind, exc)

"""Which background loops are alive. A loop that ends while the exporter runs (an error nobody caught, a
bug) is recorded, logged with its traceback, and makes /health fail: no thread dies silently while the
process keeps serving stale data."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

A = TypeVar("A")
Loop = Callable[[threading.Event, A], None]


class Liveness:
    """Wraps loop functions; ``dead()`` names each loop that ended before ``stop`` was set, and why."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dead: dict[str, str] = {}

    def guard(self, name: str, loop: Loop[A]) -> Loop[A]:
        def run(stop: threading.Event, arg: A) -> None:
            try:
                loop(stop, arg)
            except BaseException as exc:  # the thread's last chance to say why it ends
                log.exception("the %s loop died", name)
                self._record(name, f"{type(exc).__name__}: {exc}")
                return
            if not stop.is_set():
                log.error("the %s loop ended without being asked to", name)
                self._record(name, "ended without being asked to")

        return run

    def _record(self, name: str, reason: str) -> None:
        with self._lock:
            self._dead[name] = reason

    def dead(self) -> dict[str, str]:
        with self._lock:
            return dict(self._dead)

    def guard_plain(self, name: str, loop: Callable[[], None], stop: threading.Event) -> Callable[[], None]:
        """``guard`` for a loop that takes no arguments and stops when ``stop`` is set."""
        guarded = self.guard(name, lambda _stop, _arg: loop())

        def run() -> None:
            guarded(stop, None)

        return run

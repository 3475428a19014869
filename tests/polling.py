"""The one way tests wait: poll a condition until it holds or a deadline passes, never sleep a fixed time and hope.

A fixed sleep is either too short on a loaded machine (a flaky failure) or too long everywhere else (a slow suite);
polling returns as soon as the condition holds and fails with what it was waiting for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None],
    timeout: float = 30.0,
    what: str = "the condition",
    interval: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``condition()`` every ``interval`` seconds until it returns something truthy, and return that.

    Raises AssertionError naming ``what`` once ``timeout`` seconds have passed. Exceptions of the ``ignore`` types
    (a server not listening yet: ``OSError``) count as "not yet"; any other propagates at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except ignore:
            pass  # not yet
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(interval)


class HasHealth(Protocol):
    def health(self) -> tuple[int, dict[str, Any]]: ...


def cycles_total(exporter: HasHealth) -> int:
    """The cycles a running exporter has published (its /health's ``cycles_total``)."""
    return int(exporter.health()[1]["cycles_total"])


def wait_cycles(exporter: HasHealth, count: int, timeout: float = 60.0) -> int:
    """Wait until ``count`` more cycles than now have been published, instead of sleeping their length; returns
    the new total."""
    target = cycles_total(exporter) + count
    return wait_until(lambda: (total := cycles_total(exporter)) >= target and total, timeout, f"{count} more cycles")

"""The once-per-process check every SDK hook runs before it is used (docs/sdk-hooks.md).

A hook compares a small collection through itself with the same collection through the SDK's own path; any
difference, or any exception from the SDK's internals, turns the hook off for the process with one warning, and the
SDK's own path runs. ``SelfCheck`` holds that outcome: ``status`` is None before the check, then "yes" or why not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.view import View


class SelfCheck:
    """Runs ``check`` (None when the hook fits this SDK, else why not) once; ``fallback`` is the warning, with
    ``%s`` for the reason, logged by the hook's own ``log``."""

    def __init__(self, check: Callable[[], str | None], fallback: str, log: logging.Logger) -> None:
        self._check = check
        self._fallback = fallback
        self._log = log
        self.status: str | None = None

    def passed(self) -> bool:
        if self.status is None:
            try:
                why = self._check()
            except Exception as exc:  # any surprise in the SDK's internals: the SDK's own path
                why = f"{type(exc).__name__}: {exc}"
            self.status = why or "yes"
            if why:
                self._log.warning(self._fallback, why)
        return self.status == "yes"


def selfcheck_meter(reader: Any, views: Sequence[View] = ()) -> tuple[MeterProvider, Meter]:
    """A self-check's own provider (``reader``, ``views``) and its meter. It takes the empty resource: the SDK's
    default runs the resource detectors, six times a start (~6 ms) for nothing a check compares."""
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415 - the SDK loads with the hook checked
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415

    provider = MeterProvider(resource=Resource.get_empty(), metric_readers=[reader], views=list(views))
    return provider, provider.get_meter("otel_fakegpu.selfcheck")

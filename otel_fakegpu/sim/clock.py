"""Scenario time: seconds since the simulation started, as the simulated GPUs live them.

Without a scenario each update advances scenario time by the wall-clock time since the last one. With a
fixed step (scenarios, backfill) every update advances it by the same amount, so the same seed and scenario
give the same values update for update, whatever the wall clock's jitter.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Clock = Callable[[], float]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """``90s``, ``2m``, ``1h30m``, ``2h``, ``7d`` or plain seconds (``45``) -> seconds; ValueError otherwise."""
    cleaned = text.strip().lower()
    try:
        seconds = float(cleaned)
    except ValueError:
        parts = _DURATION.findall(cleaned)
        if not parts or "".join(n + u for n, u in parts) != cleaned:
            raise ValueError(f"not a duration: {text!r} (expected e.g. 90s, 2m, 1h30m, 2h, 7d)") from None
        seconds = sum(float(number) * _UNIT_S[unit] for number, unit in parts)
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"not a duration: {text!r} (must be finite and not negative)")
    return seconds


class ScenarioClock:
    """Wall time for stamping values, and scenario time for the physics and the scripted events."""

    def __init__(self, wall: Clock, time_scale: float = 1.0, step_s: float | None = None) -> None:
        """``time_scale``: scenario seconds per wall-clock second; ``step_s``: wall seconds one update stands
        for (None: the measured time since the previous update)."""
        if not time_scale > 0:
            raise ValueError(f"time scale must be positive, got {time_scale}")
        self._wall = wall
        self.time_scale = time_scale
        self.step_s = step_s
        self._last_wall = 0.0
        self.t = 0.0  # scenario seconds since start()

    def start(self) -> float:
        """Begin at scenario time 0; returns the wall time."""
        self._last_wall = now = self._wall()
        self.t = 0.0
        return now

    def advance(self) -> tuple[float, float]:
        """One update: (wall time now, scenario seconds it advanced)."""
        now = self._wall()
        wall_dt = self.step_s if self.step_s is not None else max(0.0, now - self._last_wall)
        self._last_wall = now
        dt = wall_dt * self.time_scale
        self.t += dt
        return now, dt

    def now(self) -> float:
        return self._wall()

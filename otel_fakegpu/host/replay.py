"""``--engine replay``: a captured page sequence (engine/recording.py) served back as one host's cycles.

Each cycle publishes the page that was current at that point of the capture (its recorded pace, times
``--replay-speed``), looping or holding the last page at the end. The page is served as it was captured, byte
for byte: the recorded GPUs' identities, labels, values and fields this catalog does not know. Its families are
split from the text, so the OpenMetrics variant is built the way the renderer builds it (a counter without
``_total`` is declared ``unknown``). Nothing is read from an engine and nothing is pushed: the capture is a page.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from otel_fakegpu.engine.recording import Recording, read_recording
from otel_fakegpu.host.spec import Handler
from otel_fakegpu.outputs import Exposition
from otel_fakegpu.outputs.prometheus_text import FamilyText

log = logging.getLogger(__name__)
_TYPE = re.compile(r"# TYPE (\S+) (\S+)")
_GPU = re.compile(r'[{,]gpu="([^"]*)"')


def page_families(page: str) -> list[FamilyText]:
    """The page as families: each one's comment lines and the sample lines that follow, joined back exactly."""
    families: list[FamilyText] = []
    header: list[str] = []
    samples: list[str] = []

    def close() -> None:
        if header or samples:
            text = "".join(header)
            match = _TYPE.search(text)
            if match and match.group(2) == "counter" and not match.group(1).endswith("_total"):
                om = text.replace(match.group(0), f"# TYPE {match.group(1)} unknown")
            else:
                om = text
            families.append(FamilyText(text, om, "".join(samples), len(samples)))

    for line in page.splitlines(keepends=True):
        if line.startswith("#") and samples:  # a comment after samples starts the next family
            close()
            header, samples = [], []
        (header if line.startswith("#") else samples).append(line)
    close()
    return families


class ReplayCollection:
    """One host's collection that serves a capture: the worker drives it like any other."""

    def __init__(self, path: Path, speed: float, loop: bool, clock: Any = time.monotonic) -> None:
        self._recording: Recording = read_recording(path)
        if not self._recording.pages:
            raise ValueError(f"{path}: no whole page to replay ({self._recording.stopped or 'empty'})")
        if self._recording.stopped:
            log.warning("replaying the whole part only: %s", self._recording.stopped)
        self._speed, self._loop, self._clock = speed, loop, clock
        self._started = 0.0
        self._index = -1
        self._cycles = 0
        self._latest: Exposition | None = None
        self._ended = False
        self._gpus = 0  # the GPUs the current page has series of

    def start(self) -> None:
        self._started = self._clock()
        self.run_cycle()

    def step(self) -> None:
        """Nothing to simulate: the capture's pace is the cycle's to follow."""

    def _due(self) -> int:
        """The index of the page current at this point of the capture (looping or held at the end)."""
        pages = self._recording.pages
        elapsed = (self._clock() - self._started) * self._speed
        length = pages[-1][0] + float(self._recording.header.get("every_s", 0.0) or 0.0)
        if self._loop and length > 0:
            elapsed %= length
        due = 0
        for i, (offset, _) in enumerate(pages):
            if offset <= elapsed:
                due = i
        self._ended = not self._loop and due == len(pages) - 1
        return due

    def run_cycle(self) -> bool:
        due = self._due()
        if due == self._index:
            return False
        self._index = due
        self._cycles += 1
        page = self._recording.pages[due][1].decode("utf-8", errors="surrogateescape")
        self._latest = Exposition(self._cycles, time.time(), page_families(page))
        self._gpus = len(set(_GPU.findall(page)))
        return True

    def latest(self) -> Exposition | None:
        return self._latest

    def facts(self) -> dict[str, Any]:
        pages = self._recording.pages
        detail = f"page {self._index + 1} of {len(pages)}" + (" (ended, holding the last)" if self._ended else "")
        if self._recording.stopped:
            detail += f"; the capture stops early: {self._recording.stopped}"
        series = self._latest.series if self._latest else 0
        return {
            "engine": {"kind": "replay", "state": "ok", "detail": detail},
            "reads_total": self._cycles,
            "sdk_collections_total": 0,
            "cycles_total": self._cycles,
            "errors_total": 0,
            "last_ok_at": time.time(),  # holding a page is the replay working, not a stale exporter
            "last_error": None,
            "series": series,
            "gpus": self._gpus,
            "gpus_missing": [],
            "attribution": None,
            "dead_loops": {},
        }

    def handlers(self) -> Mapping[str, Handler]:
        return {"reload": lambda args: {"ok": True, "errors": []}}

    def serving(self) -> tuple[str, float]:
        return ("ok", 0.0)

    def take_fired(self) -> list[dict[str, Any]]:
        return []

    def stop(self) -> None:
        """Nothing to close."""

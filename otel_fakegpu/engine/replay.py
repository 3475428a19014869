"""The replay engine (``--engine replay``): a capture of ``otel-fakegpu record`` (engine/recording.py) as an engine.

Each read answers with the page current at that point of the capture (its recorded pace times ``--replay-speed``;
looping, or holding the last page at the end): the recorded GPUs and MIG instances as entities, their identity
fields (50 name, 54 UUID, 55 minor number, 57 PCI bus id) as recorded, and every mapped field's value
(engine/replay_page.py). The rest of the page, which the pipeline cannot reproduce, the engine keeps as captured
text (``current``) for the renderer to put back in its place. Nothing can be injected: the capture is the truth.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from otel_fakegpu.engine.base import Engine, EngineError, EngineState, EngineStatus
from otel_fakegpu.engine.recording import Recording, read_recording
from otel_fakegpu.engine.replay_page import ParsedPage, parse_page
from otel_fakegpu.engine.snapshot import Column, Snapshot
from otel_fakegpu.fields import Value

log = logging.getLogger(__name__)
_NAME, _UUID, _MINOR, _BUSID = 50, 54, 55, 57


class ReplayEngine(Engine):
    """Serves a capture's pages as entity reads, stepped by ``clock`` from the first read on."""

    kind = "replay"

    def __init__(
        self, path: Path, speed: float = 1.0, loop: bool = False, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.recording: Recording = read_recording(path)
        if not self.recording.pages:
            raise ValueError(f"{path}: no whole page to replay ({self.recording.stopped or 'empty'})")
        if self.recording.stopped:
            log.warning("replaying the whole part only: %s", self.recording.stopped)
        self._speed, self._loop, self._clock = speed, loop, clock
        self._lock = threading.Lock()
        self._started: float | None = None
        self._index = -1
        self._ended = False
        self._reads = 0
        self._parsed = 0  # the index of the page in ``current``
        self.current: ParsedPage = parse_page(self._text(0))  # the page of the last read (the first before any)

    def _text(self, index: int) -> str:
        return self.recording.pages[index][1].decode("utf-8", errors="surrogateescape")

    def _due(self) -> int:
        """The index of the page current at this point of the capture (looping or held at the end)."""
        pages = self.recording.pages
        if self._started is None:
            self._started = self._clock()
        elapsed = (self._clock() - self._started) * self._speed
        length = pages[-1][0] + float(self.recording.header.get("every_s", 0.0) or 0.0)
        if self._loop and length > 0:
            elapsed %= length
        due = 0
        for i, (offset, _) in enumerate(pages):
            if offset <= elapsed:
                due = i
        self._ended = not self._loop and due == len(pages) - 1
        return due

    def page_number(self) -> int:
        """1-based number of the page the last read served (0 before the first read)."""
        return self._index + 1

    def entity_ids(self) -> tuple[int, ...]:
        return tuple(self.current.entities)

    def watch_samples(self, field_ids: Sequence[int], max_keep_age_s: float) -> None:
        """A page holds latest values only: there are no samples to keep."""

    def read_latest(self, field_ids: Sequence[int], samples_after: int | None = None) -> Snapshot:
        with self._lock:
            self._reads += 1
            due = self._due()
            self._index = due
            if due != self._parsed:
                self.current, self._parsed = parse_page(self._text(due)), due
            page = self.current
        ids = tuple(page.entities)
        identities = list(page.entities.values())
        columns: dict[int, Column] = {
            _UUID: tuple(i[0] for i in identities),
            _BUSID: tuple(i[1] for i in identities),
            _MINOR: tuple(i[2] for i in identities),
            _NAME: tuple(i[3] for i in identities),
        }
        for field_id in field_ids:
            if field_id in columns:
                continue
            values = page.values.get(field_id)
            columns[field_id] = (None,) * len(ids) if values is None else tuple(values.get(eid) for eid in ids)
        cursor = None if samples_after is None else 0
        return Snapshot.build(ids, columns, time.time(), {}, cursor, page.instances)

    def create_gpus(self, count: int) -> tuple[int, ...]:
        raise EngineError("the replay engine serves the GPUs of its capture; it creates none")

    def inject(self, updates: Iterable[tuple[int, int, Value | None]], timestamp: float) -> None:
        raise EngineError("the replay engine serves its capture; nothing can be injected")

    def status(self) -> EngineStatus:
        pages = self.recording.pages
        detail = f"page {self._index + 1} of {len(pages)}" + (" (ended, holding the last)" if self._ended else "")
        if self.recording.stopped:
            detail += f"; the capture stops early: {self.recording.stopped}"
        return EngineStatus(self.kind, EngineState.OK, detail)

    @property
    def reads_total(self) -> int:
        return self._reads

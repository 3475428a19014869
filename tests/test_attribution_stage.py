"""The stage's timing rules with sources that misbehave: a cycle never waits past the timeout, one fetch per
cycle, and with a cadence the next fetch is already done when the cycle comes."""

from __future__ import annotations

import threading
import time

from otel_fakegpu.attribution import AttributionStage, Claim, DeviceRef, LabelStyle, Source, WorkloadIdentity
from otel_fakegpu.attribution.source import Claims, SourceError
from otel_fakegpu.engine import Snapshot

SNAPSHOT = Snapshot.build((0,), {54: ("GPU-0",), 55: (0,)}, 0.0)
CLAIM = (Claim(DeviceRef(index=0), WorkloadIdentity("p", "default", "c")),)


class Scripted(Source):
    """Answers CLAIM; ``hang`` blocks a fetch (ignoring its timeout, like a hung file system) until released;
    ``fail`` raises."""

    name = "scripted"

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.hang = threading.Event()
        self.release = threading.Event()
        self.fail = False

    def fetch(self, timeout_s: float) -> Claims:
        self.calls.append(time.monotonic())
        if self.hang.is_set():
            self.release.wait(30)
        if self.fail:
            raise SourceError("scripted failure")
        return CLAIM


def test_a_source_that_ignores_its_timeout_holds_no_cycle_longer_than_the_timeout() -> None:
    source = Scripted()
    stage = AttributionStage(source, LabelStyle(), 0.2)
    assert stage.assign(SNAPSHOT)[0]
    source.hang.set()
    for _ in range(3):
        started = time.monotonic()
        assert stage.assign(SNAPSHOT)[0]  # the last good map
        assert time.monotonic() - started < 1.5
    assert stage.status.errors_total == 3 and len(source.calls) == 2  # the hung call blocks the next ones
    source.hang.clear()
    source.release.set()
    deadline = time.monotonic() + 10
    while stage.status.errors_total == stage.status.fetches_total - 1 and time.monotonic() < deadline:
        stage.assign(SNAPSHOT)
    assert stage.status.last_error is None
    stage.close()


def test_exceptions_in_a_source_are_failed_fetches() -> None:
    class Broken(Source):
        name = "broken"

        def fetch(self, timeout_s: float) -> Claims:
            raise KeyError("boom")

    stage = AttributionStage(Broken(), LabelStyle(), 0.5)
    assert stage.assign(SNAPSHOT) == ((),)
    assert "KeyError" in (stage.status.last_error or "")
    stage.close()


def test_with_a_cadence_the_answer_is_fetched_before_the_cycle() -> None:
    source = Scripted()
    stage = AttributionStage(source, LabelStyle(), 0.3, interval_s=0.6)
    stage.begin()
    stage.assign(SNAPSHOT)  # the first cycle fetches with its engine read
    for cycle in range(3):
        time.sleep(0.6)  # deliberate: the next cycle comes one cadence (interval_s) later
        before = len(source.calls)
        started = time.monotonic()
        assert stage.assign(SNAPSHOT)[0]
        assert before == cycle + 2  # already fetched, 0.3 s ahead of the cycle
        assert time.monotonic() - started < 0.2
        assert source.calls[-1] < started
    assert stage.status.fetches_total == len(source.calls) == 4  # one fetch per cycle
    stage.close()

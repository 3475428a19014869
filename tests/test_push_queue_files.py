"""The push queue directory's files without a receiver process: the record format and what a bad one is
called, atomic writes, the sequence that goes on across restarts, the bounds, the set-aside folder, and a
Prometheus-text target that keeps, restores and removes its records (against a scripted HTTP receiver)."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from otel_fakegpu.config.errors import ConfigError
from otel_fakegpu.config.values import parse_bytes
from otel_fakegpu.outputs import PrometheusPushOutput
from otel_fakegpu.outputs.disk_queue import FULL, LOW_DISK, MAX_SET_ASIDE, DiskQueue, PushQueueSettings
from otel_fakegpu.outputs.queue_record import HEADER_BYTES, Record, RecordError, decode, encode, write_atomic
from tests.receivers import wait_for
from tests.test_push_refusals import _ScriptedServer

RECORD = Record("otlp", 42, 1_700_000_000.25, b"\x1f\x8b payload bytes")


def test_a_record_reads_back_as_written() -> None:
    assert decode(encode(RECORD), "otlp") == RECORD


@pytest.mark.parametrize(
    ("data", "message", "points"),
    [
        (encode(RECORD)[:20], "truncated: 20 bytes, shorter than the", 0),
        (encode(RECORD)[:-3], r"truncated: \d+ of \d+ payload bytes", 42),
        (b"XXXX" + encode(RECORD)[4:], "not a push queue record", 0),
        (encode(RECORD)[:4] + b"\x07\x00" + encode(RECORD)[6:], "record format version 7", 0),
        (encode(Record("prometheus", 1, 0.0, b"x")), "a record of target 'prometheus', not 'otlp'", 0),
        (encode(RECORD)[:-1] + b"!", "corrupt: CRC-32 mismatch", 42),
        (encode(RECORD)[:30] + b"\xff" + encode(RECORD)[31:], "corrupt: CRC-32 mismatch", 42),  # points' bytes
    ],
)
def test_a_bad_record_says_what_is_wrong(data: bytes, message: str, points: int) -> None:
    with pytest.raises(RecordError, match=message) as caught:
        decode(data, "otlp")
    assert caught.value.points in (points, int.from_bytes(data[24:32], "little"))


def test_an_atomic_write_leaves_the_record_and_no_temporary(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        write_atomic(fd, "0000000000000001.rec", encode(RECORD))
    finally:
        os.close(fd)
    assert [p.name for p in tmp_path.iterdir()] == ["0000000000000001.rec"]


def _queue(folder: Path, max_bytes: int = 1 << 20, min_free: int = 0) -> DiskQueue:
    return DiskQueue(folder, "otlp", max_bytes, min_free)


def test_order_and_numbering_go_on_across_restarts_and_cut_writes_are_removed(tmp_path: Path) -> None:
    first = _queue(tmp_path)
    names = [first.append(Record("otlp", n, 1.0 + n, bytes([n]) * 10)) for n in range(1, 4)]
    assert names == ["0000000000000001.rec", "0000000000000002.rec", "0000000000000003.rec"]
    first.remove("0000000000000002.rec")
    first.close()
    (tmp_path / ".0000000000000004.rec.tmp").write_bytes(b"half a write")  # the process died writing it
    second = _queue(tmp_path)
    corrupt: list[int] = []
    loaded = list(second.load(corrupt.append))
    assert [(name, record.points) for name, record in loaded] == [(names[0], 1), (names[2], 3)]
    assert corrupt == [] and not (tmp_path / ".0000000000000004.rec.tmp").exists()
    assert second.append(RECORD) == "0000000000000004.rec"
    state = second.state()
    assert (state.records, state.oldest_created_at, state.corrupt) == (3, 2.0, 0)
    assert state.bytes == sum(p.stat().st_size for p in tmp_path.glob("*.rec"))


def test_bad_files_are_set_aside_and_counted_with_at_most_a_bounded_few_kept(tmp_path: Path) -> None:
    queue = _queue(tmp_path)
    queue.append(RECORD)
    for n in range(MAX_SET_ASIDE + 5):
        (tmp_path / f"junk-{n:03d}").write_bytes(b"junk")
    os.mkfifo(tmp_path / "0000000000000007.rec")
    (tmp_path / "0000000000000008.rec").mkdir()
    queue.close()
    reopened = _queue(tmp_path)
    corrupt: list[int] = []
    assert [name for name, _ in reopened.load(corrupt.append)] == ["0000000000000001.rec"]
    assert len(corrupt) == MAX_SET_ASIDE + 7 and reopened.state().corrupt == MAX_SET_ASIDE + 7
    assert len(list((tmp_path / "corrupt").iterdir())) <= MAX_SET_ASIDE + 1  # a planted folder is not deleted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0000000000000001.rec", "corrupt"]


def test_room_says_full_or_low_disk(tmp_path: Path) -> None:
    size = HEADER_BYTES + len(RECORD.payload)
    queue = _queue(tmp_path, max_bytes=2 * size)
    assert queue.room(10 * size) is None  # an empty queue takes the newest whole
    queue.append(RECORD)
    queue.append(RECORD)
    assert queue.room(size) == FULL
    assert _queue(tmp_path / "other", min_free=1 << 62).room(1) == LOW_DISK


def test_sizes_take_kubernetes_suffixes() -> None:
    assert [parse_bytes(t, "X", low=1) for t in ("100", "5k", "500M", "64Mi", "2Gi", "1T")] == [
        100, 5000, 500_000_000, 64 << 20, 2 << 30, 10**12,
    ]  # fmt: skip
    for bad in ("", "M", "5 M", "5MB", "-1", "1.5G", "5mi"):
        with pytest.raises(ConfigError, match="expected a size in bytes"):
            parse_bytes(bad, "--push-queue-max-bytes", low=1)
    with pytest.raises(ConfigError, match="at least 1 bytes"):
        parse_bytes("0", "--push-queue-max-bytes", low=1)
    assert PushQueueSettings(Path("q")).queue_bytes(1000, 2) == 48_000  # per queue: 48 bytes a point
    assert PushQueueSettings(Path("q"), 1000).queue_bytes(1000, 4) == 250  # the directory's bound, shared


def _push(url: str, folder: Path) -> PrometheusPushOutput:
    output = PrometheusPushOutput(url, buffer_points=1000, timeout_s=2.0)
    output.use_disk(DiskQueue(folder, "prometheus", 1 << 20, 0))
    output.queue._backoff = (0.01, 0.01)
    return output


def test_prometheus_bodies_are_kept_restored_in_order_and_removed_when_done(tmp_path: Path) -> None:
    down = _push("http://127.0.0.1:1/api/v1/import/prometheus", tmp_path)  # never started: all wait
    bodies = [(f"up {n} 1700000000000\n".encode(), 1) for n in range(3)]
    for body in bodies:
        down.put(body)
    down.close(drain_s=0.1)
    assert len(list(tmp_path.glob("*.rec"))) == 3
    server = _ScriptedServer([(400, {}, b"bad sample"), (503, {"Retry-After": "0"}, b"")])  # then 200s
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        up = _push(server.url, tmp_path)
        stop = threading.Event()
        up.start(stop)
        wait_for(lambda: server.ok_count() == 2 and not list(tmp_path.glob("*.rec")), timeout=20)
        stop.set()
        up.close(drain_s=0.1)
    finally:
        server.shutdown()
        server.server_close()
    b0, b1, b2 = (body for body, _ in bodies)
    assert server.bodies == [b0, b1, b1, b2]  # oldest first; the one answered 503 again
    view = up.queue.view()
    assert dict(view.dropped_by_reason) == {"overflow": 0, "rejected": 1, "corrupt": 0}
    assert view.points_sent == 2 and up.disk is not None and up.disk.state().records == 0


def test_a_failing_write_keeps_the_request_in_memory_and_says_why(tmp_path: Path) -> None:
    queue = _queue(tmp_path / "gone")
    shutil.rmtree(tmp_path / "gone")  # the directory removed under the running exporter
    assert queue.append(RECORD) is None
    degraded = queue.state().degraded
    assert degraded is not None and degraded.startswith(f"cannot write to {tmp_path / 'gone'}")

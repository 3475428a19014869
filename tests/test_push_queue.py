"""The push queue directory with real receivers (the OTLP/gRPC MetricsService of tests/receivers.py and
VictoriaMetrics over OTLP/HTTP): a receiver outage, ``kill -9``, a restart, the receiver back, and every cycle
from before the kill delivered with its original timestamp, at most one twice; bad records set aside and counted;
the byte bound and the free-space floor; the directory lock."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ExporterProcess, free_port, run_cli
from tests.pages import push_metrics
from tests.polling import cycles_total, wait_cycles, wait_until
from tests.receivers import OtlpGrpcReceiver, Point, VictoriaMetrics, wait_for
from tests.test_bench import _run_quick

Factory = Callable[..., ExporterProcess]
CYCLE_MS = 400


@pytest.fixture
def queue_dir(tmp_path: Path) -> Path:
    return tmp_path / "queue"


def _grpc_args(port: int, queue: Path, *extra: str) -> tuple[str, ...]:
    return (
        "--num-gpus", "2", "-c", str(CYCLE_MS), "--update-interval", "0.2", "--otlp-protocol", "grpc",
        "--otlp-endpoint", f"127.0.0.1:{port}", "--otlp-insecure", "--otlp-timeout", "500",
        "--push-queue-dir", str(queue), *extra,
    )  # fmt: skip


def _records(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.rec")) if folder.is_dir() else []


def _cycles(points: list[Point]) -> list[tuple[int, int]]:
    """(cycle number, collection time) of every ``otel_fakegpu_cycles_total`` point, in arrival order."""
    return [(int(p.value), p.time_unix_nano) for p in points if p.metric == "otel_fakegpu_cycles_total"]


def _kill(exporter: ExporterProcess) -> float:
    """SIGKILL the serving process (its workers see the socket close and go); returns the time of the kill."""
    killed_at = time.time()
    exporter.proc.send_signal(signal.SIGKILL)
    exporter.proc.wait()
    return killed_at


def test_kill_9_during_an_outage_loses_no_cycle_grpc(exporter_factory: Factory, queue_dir: Path) -> None:
    receiver = OtlpGrpcReceiver().start()
    first = exporter_factory(*_grpc_args(receiver.port, queue_dir))
    wait_for(lambda: len(_cycles(receiver.snapshot())) >= 2)
    receiver.stop()  # the outage
    wait_for(lambda: len(_records(queue_dir / "otlp")) >= 3, timeout=30)
    published = first.health()[1]["cycles_total"]
    assert isinstance(published, int)
    _kill(first)
    restarted_at = time.time()
    second = exporter_factory(*_grpc_args(receiver.port, queue_dir))
    wait_cycles(second, 2)  # the new process queues cycles of its own behind the backlog
    back = OtlpGrpcReceiver(receiver.port).start()
    try:
        wait_for(lambda: any(t > restarted_at * 1e9 for _, t in _cycles(back.snapshot())), timeout=40)
        wait_for(lambda: not _records(queue_dir / "otlp") or len(_records(queue_dir / "otlp")) <= 1, timeout=30)
    finally:
        second.stop()
        back.stop()
    before = _cycles(receiver.snapshot())
    after = _cycles(back.snapshot())
    old = [(n, t) for n, t in before + after if t < restarted_at * 1e9]  # the first process's cycles
    numbers = Counter(n for n, _ in old)
    assert sorted(numbers) == list(range(1, max(numbers) + 1)), "a cycle from before the kill was lost"
    assert max(numbers) >= published  # every cycle it had published was on disk
    assert sum(count - 1 for count in numbers.values()) <= 1, "more than one cycle delivered twice"
    # Original collection times (0.4 s apart), although delivered after the restart, seconds later.
    stamps = sorted({t for _, t in old})
    assert max(b - a for a, b in itertools.pairwise(stamps)) < 1.5e9
    # The backlog went first, oldest first: the new process's cycles arrive after every old one.
    arrival = [t < restarted_at * 1e9 for _, t in after]
    assert arrival == sorted(arrival, reverse=True)
    replayed = [n for n, t in after if t < restarted_at * 1e9]
    assert replayed == sorted(replayed)


@pytest.mark.slow
def test_kill_9_during_an_outage_loses_no_cycle_victoriametrics_otlp_http(
    exporter_factory: Factory, queue_dir: Path, tmp_path: Path
) -> None:
    port = free_port()  # VictoriaMetrics starts on it only after the restart: the whole run is its outage
    args = (
        "--num-gpus", "2", "-c", str(CYCLE_MS), "--update-interval", "0.2", "--otlp-timeout", "500",
        "--otlp-endpoint", f"http://127.0.0.1:{port}/opentelemetry/v1/metrics", "--push-queue-dir", str(queue_dir),
    )  # fmt: skip
    first = exporter_factory(*args)
    wait_for(lambda: len(_records(queue_dir / "otlp")) >= 4, timeout=30)
    health = first.health()[1]
    last_ok_at = time.time() - float(health["last_cycle"]["age_seconds"])
    _kill(first)
    restarted_at = time.time()
    second = exporter_factory(*args)
    victoria = VictoriaMetrics(tmp_path, port)
    try:
        wait_for(lambda: not _records(queue_dir / "otlp"), timeout=60)
        wait_for(lambda: bool(victoria.export('DCGM_FI_DEV_GPU_TEMP{gpu="0"}')), timeout=30)
        second.stop()
        series = victoria.export('DCGM_FI_DEV_GPU_TEMP{gpu="0"}')
    finally:
        victoria.stop()
    assert len(series) == 1
    stamps = [ms for ms in series[0]["timestamps"] if ms < restarted_at * 1000]
    assert len(stamps) >= 4
    assert max(stamps) >= (last_ok_at - CYCLE_MS / 1000) * 1000  # the last cycle published before the kill
    distinct = sorted(set(stamps))
    assert max(b - a for a, b in itertools.pairwise(distinct)) < 1.5 * CYCLE_MS  # none lost in between
    assert len(stamps) - len(distinct) <= 1  # at most one delivered twice


def test_bad_records_are_set_aside_counted_and_the_rest_delivered(
    exporter_factory: Factory, queue_dir: Path, tmp_path: Path
) -> None:
    receiver = OtlpGrpcReceiver()  # down while the queue fills
    first = exporter_factory(*_grpc_args(receiver.port, queue_dir, "--push-prometheus-url", "http://127.0.0.1:1/x"))
    wait_for(lambda: len(_records(queue_dir / "otlp")) >= 5 and len(_records(queue_dir / "prometheus")) >= 1)
    first.stop()  # SIGTERM: what is not delivered stays on disk
    otlp = queue_dir / "otlp"
    kept = _records(otlp)
    truncated = kept[1]
    truncated.write_bytes(truncated.read_bytes()[:-100])
    (otlp / "garbage.bin").write_bytes(os.urandom(300))
    (otlp / "0000000000000000.rec").write_bytes(b"OFGQ" + os.urandom(200))
    os.mkfifo(otlp / "0000000000000001.rec.fifo")
    os.mkfifo(otlp / "0000000000009990.rec")  # unreadable as a file: it would hang a plain open()
    (otlp / "0000000000009991.rec").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_bytes(kept[0].read_bytes())
    shutil.copy(_records(queue_dir / "prometheus")[0], otlp / "0000000000009992.rec")  # another target's record
    bad = 7
    receiver.start()
    restarted_at = time.time()
    try:
        second = exporter_factory(*_grpc_args(receiver.port, queue_dir))
        assert second.get("/metrics")[0] == 200
        wait_for(lambda: len(_cycles(receiver.snapshot())) >= len(kept) + 1, timeout=30)
        metrics = push_metrics(second.get("/metrics")[1])
    finally:
        receiver.stop()
    delivered = Counter(n for n, t in _cycles(receiver.snapshot()) if t < restarted_at * 1e9)
    assert len(delivered) == len(kept) - 1  # every record but the truncated one
    assert metrics[("otel_fakegpu_push_queue_corrupt_records_total", (("target", "otlp"),))] == bad
    assert metrics[("otel_fakegpu_push_points_dropped_total", (("reason", "corrupt"), ("target", "otlp")))] > 0
    log = second.stderr_text()
    assert log.count('counted in otel_fakegpu_push_points_dropped_total{reason="corrupt"}') == bad
    assert "Traceback" not in log
    assert len(list((otlp / "corrupt").iterdir())) == bad
    assert (tmp_path / "elsewhere").exists()  # a link is moved aside, never followed


def test_byte_bound_holds_through_a_long_outage(exporter_factory: Factory, queue_dir: Path) -> None:
    bound = 24_000  # about eight 2-GPU requests: the outage below is many times longer than that
    receiver = OtlpGrpcReceiver()
    exporter = exporter_factory(
        *_grpc_args(receiver.port, queue_dir, "--push-queue-max-bytes", str(bound), "-c", "150")
    )
    peak = 0
    deadline = time.monotonic() + 6.0  # 40 cycles
    while time.monotonic() < deadline:
        peak = max(peak, sum(p.stat().st_size for p in _records(queue_dir / "otlp") if p.exists()))
        time.sleep(0.05)  # deliberate: sampling the folder's size through the whole outage
    metrics = push_metrics(exporter.get("/metrics")[1])
    assert 0 < peak <= bound
    assert metrics[("otel_fakegpu_push_queue_bytes", (("target", "otlp"),))] <= bound
    assert metrics[("otel_fakegpu_push_points_dropped_total", (("reason", "overflow"), ("target", "otlp")))] > 0
    receiver.start()
    try:
        wait_for(lambda: len(_cycles(receiver.snapshot())) >= 3, timeout=30)
        assert min(n for n, _ in _cycles(receiver.snapshot())) > 10  # the oldest were the ones dropped
    finally:
        receiver.stop()


def test_disk_below_the_floor_degrades_health_and_push_goes_on_from_memory(
    exporter_factory: Factory, queue_dir: Path
) -> None:
    receiver = OtlpGrpcReceiver()  # down at first: what waits, waits in memory, none of it dropped
    exporter = exporter_factory(*_grpc_args(receiver.port, queue_dir, "--push-queue-min-free-bytes", "1000T"))
    wait_for(lambda: exporter.health()[1].get("push_queue", {}).get("state") == "degraded", timeout=20)
    wait_until(lambda: cycles_total(exporter) >= 4, 30, "4 cycles made while degraded")
    status, health = exporter.health()
    assert status == 200 and health["status"] == "degraded"
    assert "free disk space" in health["push_queue"]["targets"]["otlp"]["degraded"]
    assert not _records(queue_dir / "otlp")
    waiting = health["cycles_total"]
    assert isinstance(waiting, int) and waiting >= 4
    receiver.start()
    try:
        wait_for(lambda: len(_cycles(receiver.snapshot())) >= waiting + 2, timeout=30)
    finally:
        receiver.stop()
    numbers = sorted(n for n, _ in _cycles(receiver.snapshot()))
    assert numbers == list(range(1, len(numbers) + 1))  # kept in memory, delivered all the same


def test_a_fleet_keeps_one_folder_per_host_and_health_names_them(exporter_factory: Factory, queue_dir: Path) -> None:
    receiver = OtlpGrpcReceiver()  # down: every host's requests wait on disk
    exporter = exporter_factory(
        *_grpc_args(receiver.port, queue_dir, "--hosts", "2", "--workers", "2"), env={"NODE_NAME": "node"}
    )
    wait_for(lambda: all(len(_records(queue_dir / f"host-{i}" / "otlp")) >= 2 for i in (0, 1)), timeout=30)
    wait_for(
        lambda: set(exporter.health()[1].get("push_queue", {}).get("targets", {})) == {"node-0/otlp", "node-1/otlp"}
    )
    targets = exporter.health()[1]["push_queue"]["targets"]
    assert all(t["records"] >= 2 and t["degraded"] is None for t in targets.values())


def test_a_second_exporter_on_the_same_directory_refuses_to_start(exporter_factory: Factory, queue_dir: Path) -> None:
    push = ("--push-prometheus-url", "http://127.0.0.1:1/api/v1/import/prometheus", "--push-queue-dir", str(queue_dir))
    first = exporter_factory("--num-gpus", "1", *push)
    result = run_cli("-a", f"127.0.0.1:{free_port()}", "--num-gpus", "1", *push)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"pid {first.proc.pid} on " in lines[0] and str(queue_dir) in lines[0]
    # Without a push target there is nothing to keep: the image's default directory is not even created.
    exporter_factory("--num-gpus", "1", "--push-queue-dir", str(queue_dir / "unused"))
    assert not (queue_dir / "unused").exists()


@pytest.fixture
def grpc_receiver() -> Iterator[OtlpGrpcReceiver]:
    receiver = OtlpGrpcReceiver().start()
    yield receiver
    receiver.stop()


@pytest.mark.slow
def test_quick_soak_with_three_kills_accounts_for_every_cycle(tmp_path: Path) -> None:
    """``make soak-restarts`` in small: three SIGKILLs during an outage, every published cycle delivered whole."""
    result, soak = _run_quick("bench.soak_restarts", tmp_path / "soak.json", timeout_s=240)
    assert len(soak["runs"]) == 4 and soak["lost"] == 0, result.stdout
    assert soak["twice"] <= soak["kills"]  # at most the one in flight at each kill
    for run in soak["runs"][:-1]:
        assert run["published"] >= 1 and run["received"] >= run["published"]
    assert soak["peak_disk_bytes"] > 0 and soak["peak_rss_mb"] > 0

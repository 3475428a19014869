"""``make soak-restarts``: 512 GPUs, 1 s cycles, OTLP/gRPC push with a queue directory; the receiver is down for
5 minutes and the exporter is killed with SIGKILL three times during it (and started again at once). Then the
receiver is back: every cycle of every process run must arrive whole, once (or twice: the one in flight at a
kill), with its original timestamp. Reports that accounting, the drain time and the memory (all the exporter's
processes) and disk high-water marks. ``--quick`` is a small version for the tests.

The receiver runs in its own process and writes one JSON line per request: the points of each collection time
in it, and the ``otel_fakegpu_cycles_total`` numbers (which start at 1 in each process run)."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import Proc, compiled_sources, rss_mb
from tests.conftest import free_port, http_get


def serve_receiver(port: int, log_path: Path) -> None:
    """An OTLP/gRPC receiver that accepts every export and logs what it held (``--receiver PORT --log FILE``)."""
    import grpc  # noqa: PLC0415
    from opentelemetry.proto.collector.metrics.v1 import (  # noqa: PLC0415
        metrics_service_pb2,
        metrics_service_pb2_grpc,
    )

    log = log_path.open("a")
    lock = threading.Lock()

    class Recording(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method name
            points: Counter[int] = Counter()
            cycles = []
            for metric in (m for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics):
                data_points = getattr(metric, metric.WhichOneof("data")).data_points
                if metric.name.startswith("DCGM_"):  # a cycle's GPU points: the same number every cycle
                    for point in data_points:
                        points[point.time_unix_nano] += 1
                if metric.name == "otel_fakegpu_cycles_total":
                    cycles += [[int(p.as_int or p.as_double), p.time_unix_nano] for p in data_points]
            with lock:
                log.write(json.dumps({"points": dict(points), "cycles": cycles}) + "\n")
                log.flush()
            return metrics_service_pb2.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Recording(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    # A request recorded but not answered would come again: let the ones under way finish before leaving.
    signal.signal(signal.SIGTERM, lambda signum, frame: server.stop(grace=10))
    server.wait_for_termination()
    log.close()


def start_receiver(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.soak_restarts", "--receiver", str(port), "--log", str(log_path)]
    )


def start_exporter(args: list[str], port: int) -> Proc:
    compiled_sources()
    popen = subprocess.Popen(
        [sys.executable, "-m", "otel_fakegpu", "-a", f"127.0.0.1:{port}", *args], stderr=subprocess.DEVNULL
    )
    started = time.monotonic()
    while time.monotonic() - started < 300:
        try:
            if http_get(f"http://127.0.0.1:{port}/metrics", timeout=2)[0] == 200:
                return Proc(popen, started)
        except OSError:
            pass
        if popen.poll() is not None:
            raise RuntimeError(f"exporter exited with {popen.returncode}")
        time.sleep(0.2)
    raise RuntimeError("exporter did not start")


def _health(port: int) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(http_get(f"http://127.0.0.1:{port}/health", timeout=10)[1])
    return result


class Watcher:
    """Every ``every_s``: the RSS of the exporter's process tree and the bytes in the queue directory."""

    def __init__(self, queue: Path, every_s: float) -> None:
        self.proc: Proc | None = None
        self.peak_rss_mb = 0.0
        self.peak_disk_bytes = 0
        self._queue, self._every = queue, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            proc = self.proc
            try:
                rss = sum(rss_mb(pid) for pid in proc.tree_pids()) if proc is not None else 0.0
            except (OSError, ValueError):  # a process of the tree went away between listing and reading
                rss = 0.0
            self.peak_rss_mb = max(self.peak_rss_mb, rss)
            self.peak_disk_bytes = max(self.peak_disk_bytes, disk_bytes(self._queue))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def disk_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*.rec"):
        with contextlib.suppress(OSError):  # delivered and removed meanwhile
            total += path.stat().st_size
    return total


@dataclass
class Soak:
    """One soak's processes and what it learns of each run of the exporter (one run per start)."""

    args: list[str]
    grpc_port: int
    http_port: int
    queue: Path
    log_path: Path
    watcher: Watcher
    receiver: subprocess.Popen[bytes] | None = None
    exporter: Proc | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)

    def start_exporter(self) -> Proc:
        self.runs.append({"started_at": time.time()})  # before the start: its first cycle is collected during it
        started = time.monotonic()
        self.exporter = self.watcher.proc = start_exporter(self.args, self.http_port)
        self.runs[-1]["start_s"] = round(time.monotonic() - started, 1)
        return self.exporter

    def kill_exporter(self) -> None:
        assert self.exporter is not None
        self.runs[-1]["published"] = _health(self.http_port)["cycles_total"]
        self.exporter.popen.send_signal(signal.SIGKILL)
        self.exporter.popen.wait()

    def receiver_up(self, up: bool) -> None:
        if up:
            self.receiver = start_receiver(self.grpc_port, self.log_path)
        elif self.receiver is not None:
            self.receiver.terminate()
            self.receiver.wait()
            self.receiver = None

    def close(self) -> None:
        if self.exporter is not None and self.exporter.popen.poll() is None:
            self.exporter.popen.send_signal(signal.SIGTERM)
            self.exporter.popen.wait()
        time.sleep(2.0)  # the receiver answers what it was sent last
        self.receiver_up(False)
        self.watcher.stop()


def soak(
    gpus: int, interval_ms: int, outage_s: float, kills: int, warm_s: float, buffer_points: int, max_bytes: int | None
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="soak-restarts-"))
    grpc_port, http_port = free_port(), free_port()
    args = ["--num-gpus", str(gpus), "-c", str(interval_ms), "--update-interval", str(interval_ms / 1000)]
    args += ["--otlp-protocol", "grpc", "--otlp-endpoint", f"127.0.0.1:{grpc_port}", "--otlp-insecure"]
    args += ["--otlp-timeout", "2000", "--seed", "1", "--push-buffer-points", str(buffer_points)]
    args += ["--push-queue-dir", str(work / "queue"), "--workers", "1"]
    args += [] if max_bytes is None else ["--push-queue-max-bytes", str(max_bytes)]
    run = Soak(args, grpc_port, http_port, work / "queue", work / "received.jsonl", Watcher(work / "queue", 1.0))
    try:
        run.receiver_up(True)
        run.start_exporter()
        time.sleep(warm_s)
        run.receiver_up(False)
        outage_started = time.monotonic()
        for kill in range(kills):
            time.sleep(max(0.0, outage_started + outage_s * (kill + 1) / (kills + 1) - time.monotonic()))
            run.kill_exporter()
            run.start_exporter()
        time.sleep(max(0.0, outage_started + outage_s - time.monotonic()))
        queued_at_return = disk_bytes(run.queue)
        run.receiver_up(True)
        back = time.monotonic()
        while disk_bytes(run.queue) > queued_at_return // 50 and time.monotonic() - back < 1800:
            time.sleep(1.0)  # until what is left is the last cycle or so
        drain_s = time.monotonic() - back
        time.sleep(5 * interval_ms / 1000)
        run.runs[-1]["published"] = _health(http_port)["cycles_total"]
        time.sleep(3 * interval_ms / 1000)  # the cycles published last are delivered too
    finally:
        run.close()
    result = account(run.log_path, run.runs)
    shutil.rmtree(work, ignore_errors=True)
    result.update(
        gpus=gpus, interval_ms=interval_ms, outage_s=outage_s, kills=kills, max_bytes=max_bytes,
        drain_s=round(drain_s, 1),
        queued_bytes_at_receiver_return=queued_at_return, peak_rss_mb=round(run.watcher.peak_rss_mb, 1),
        peak_disk_bytes=run.watcher.peak_disk_bytes, start_s=[r["start_s"] for r in run.runs],
    )  # fmt: skip
    return result


def account(log_path: Path, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per process run: the cycles it published, how many arrived whole, twice, or not at all."""
    points: Counter[int] = Counter()
    numbers: dict[int, int] = {}
    for line in log_path.read_text().splitlines():
        request = json.loads(line)
        points.update({int(stamp): count for stamp, count in request["points"].items()})
        for number, stamp in request["cycles"]:
            numbers[stamp] = number
    whole = Counter(points.values()).most_common(1)[0][0]  # the GPU points of one cycle
    per_run: list[dict[str, Any]] = []
    bounds = [r["started_at"] * 1e9 for r in runs[1:]] + [float("inf")]
    by_run: dict[int, dict[int, int]] = defaultdict(dict)  # run -> cycle number -> points received
    for stamp, number in numbers.items():
        owner = next(i for i, bound in enumerate(bounds) if stamp < bound)
        by_run[owner][number] = by_run[owner].get(number, 0) + points[stamp]
    for index, run in enumerate(runs):
        received = by_run[index]
        published = int(run["published"])
        missing = [n for n in range(1, published + 1) if received.get(n, 0) < whole]
        per_run.append({
            "published": published, "received": len(received), "missing": missing,
            "twice": sorted(n for n, count in received.items() if count > whole),
        })  # fmt: skip
    lost, twice = sum(len(r["missing"]) for r in per_run), sum(len(r["twice"]) for r in per_run)
    # In the order they were made, every run after the other: a bound drops the oldest waiting, so what is missing
    # comes in blocks of consecutive cycles; a request in flight when the bound is met is not waiting and stays
    # (it is the oldest: it splits a block), so there are at most as many blocks as runs.
    arrived = [n not in r["missing"] for r in per_run for n in range(1, r["published"] + 1)]
    blocks = sum(1 for a, b in itertools.pairwise(arrived) if a and not b) + (not arrived[0] if arrived else 0)
    return {"points_per_cycle": whole, "runs": per_run, "lost": lost, "twice": twice, "missing_blocks": blocks}


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.soak_restarts")
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="8 GPUs, 0.5 s cycles, 12 s outage (smoke test)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "soak-restarts.json")
    parser.add_argument("--gpus", type=int, default=512)
    parser.add_argument("--outage-s", type=float, default=300.0, help="how long the receiver is down")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs during the outage")
    parser.add_argument("--max-bytes", type=int, help="--push-queue-max-bytes (default: none, nothing is dropped)")
    args = parser.parse_args()
    if args.receiver:
        serve_receiver(args.receiver, args.log)
        return
    if args.quick:
        result = soak(8, 500, outage_s=12, kills=3, warm_s=2, buffer_points=2_000_000, max_bytes=args.max_bytes)
    else:
        result = soak(args.gpus, 1000, args.outage_s, args.kills, 30, buffer_points=6_000_000, max_bytes=args.max_bytes)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for run in result["runs"]:
        print(f"run: published {run['published']}, received {run['received']}, missing {len(run['missing'])}, "
              f"twice {run['twice']}")  # fmt: skip
    print(f"missing {result['lost']} in {result['missing_blocks']} block(s), twice {result['twice']}; "
          f"drain {result['drain_s']} s; starts {result['start_s']} s")  # fmt: skip
    if result["max_bytes"] is not None:
        held = result["peak_disk_bytes"] <= result["max_bytes"] and result["missing_blocks"] <= len(result["runs"])
        print(f"queue directory bound {result['max_bytes']} bytes, oldest dropped first: {'held' if held else 'NO'}")
    print(
        f"peak RSS {result['peak_rss_mb']} MB (every process); peak queue directory {result['peak_disk_bytes']} bytes"
    )


if __name__ == "__main__":
    main()

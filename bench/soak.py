"""``make soak``: 512 GPUs, 1 s cycles, OTLP/gRPC push to a receiver that is down for 5 minutes, then up.

Reports the RSS before the outage, its plateau while the retry buffer is full, the drain time, the RSS after
the drain and later. The exporter runs in this process (the receiver in its own), so live Python blocks
(``sys.getallocatedblocks``) can be read beside the RSS: RSS that stays high while live blocks are back at
their baseline is memory the allocator keeps, not a leak. ``--quick`` is a small version for the tests.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

from bench.procs import rss_mb
from otel_fakegpu.cli import config_from_args
from otel_fakegpu.fields import default_collectors_path, load_collectors
from otel_fakegpu.host.collection import HostCollection
from otel_fakegpu.runtime.memory import settle_memory
from tests.conftest import free_port


def serve_receiver(port: int) -> None:
    """An OTLP/gRPC receiver that accepts and drops every export (``python -m bench.soak --receiver PORT``)."""
    import grpc  # noqa: PLC0415
    from opentelemetry.proto.collector.metrics.v1 import (  # noqa: PLC0415
        metrics_service_pb2,
        metrics_service_pb2_grpc,
    )

    class Accepting(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method name
            return metrics_service_pb2.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Accepting(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def start_receiver(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bench.soak", "--receiver", str(port)])


class Sampler:
    """RSS, live blocks and buffered points every ``every_s`` seconds, with the phase they belong to."""

    def __init__(self, exporter: HostCollection, every_s: float) -> None:
        self.rows: list[dict[str, Any]] = []
        self.phase = "baseline"
        self._exporter, self._every = exporter, every_s
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def buffered(self) -> int:
        return self._exporter.pushers[0].queue.view().points_buffered

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.rows.append(self.sample())

    def sample(self) -> dict[str, Any]:
        return {
            "t_s": round(time.monotonic() - self._started, 1),
            "phase": self.phase,
            "rss_mb": round(rss_mb(), 1),
            "blocks": sys.getallocatedblocks(),
            "buffered": self.buffered(),
        }

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def soak(gpus: int, interval_ms: int, outage_s: float, after_s: float, warm_s: float) -> dict[str, Any]:
    port = free_port()
    receiver = start_receiver(port)
    time.sleep(2.0)
    args = ["--num-gpus", str(gpus), "-c", str(interval_ms), "--update-interval", str(interval_ms / 1000)]
    args += ["--otlp-protocol", "grpc", "--otlp-endpoint", f"127.0.0.1:{port}", "--otlp-insecure"]
    args += ["--otlp-timeout", "2000", "--seed", "1", "-a", ""]
    config = config_from_args([*args, "--uds", str(Path("/tmp") / f"soak-{port}.sock")], {})
    exporter = HostCollection(config, load_collectors(default_collectors_path()))
    exporter.start()
    settle_memory()
    driving = threading.Event()
    driver = threading.Thread(target=drive, args=(exporter, interval_ms / 1000, driving), daemon=True)
    driver.start()
    sampler = Sampler(exporter, 5.0)
    try:
        time.sleep(warm_s)
        before = sampler.sample()
        receiver.terminate()
        receiver.wait()
        sampler.phase, outage_started = "outage", time.monotonic()
        time.sleep(outage_s)
        at_restart = sampler.sample()
        receiver = start_receiver(port)
        sampler.phase, restarted = "drain", time.monotonic()
        per_cycle = gpus * 40  # at most the cycle in flight is left: the backlog is gone
        while sampler.buffered() > per_cycle and time.monotonic() - restarted < 1800:
            time.sleep(0.5)
        drain_s = time.monotonic() - restarted
        drained = sampler.sample()
        sampler.phase = "after"
        time.sleep(after_s)
        later = sampler.sample()
        gc.collect()
        collected = sampler.sample()
        trimmed = {**sampler.sample(), "trimmed": malloc_trim()}
        trimmed["rss_mb"] = round(rss_mb(), 1)
    finally:
        sampler.stop()
        driving.set()
        driver.join()
        exporter.stop()
        receiver.terminate()
        receiver.wait()
    plateau = [r for r in sampler.rows if r["phase"] == "outage" and r["buffered"] >= 0.98 * config.push_buffer_points]
    return {
        "gpus": gpus,
        "interval_ms": interval_ms,
        "outage_s": outage_s,
        "buffer_points": config.push_buffer_points,
        "before": before,
        "buffer_full_after_s": round(plateau[0]["t_s"] - (outage_started - sampler._started), 1) if plateau else None,
        "plateau_first": plateau[0] if plateau else None,
        "at_restart": at_restart,
        "drain_s": round(drain_s, 1),
        "drained": drained,
        "later": later,
        "after_gc_collect": collected,
        "after_malloc_trim": trimmed,
        "samples": sampler.rows,
    }


def drive(exporter: HostCollection, interval_s: float, stop: threading.Event) -> None:
    """What a worker process does for its hosts: step the simulator and run a cycle, at a fixed rate."""
    next_at = time.monotonic() + interval_s
    while not stop.wait(max(0.0, next_at - time.monotonic())):
        exporter.step()
        exporter.run_cycle()
        next_at += interval_s


def malloc_trim() -> bool:
    """glibc's malloc_trim(0): hand free heap pages back to the system. False where there is no glibc."""
    name = ctypes.util.find_library("c")
    try:
        return bool(ctypes.CDLL(name).malloc_trim(0)) if name else False
    except (OSError, AttributeError):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.soak")
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="8 GPUs, 10 s outage (smoke test)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "soak.json")
    parser.add_argument("--gpus", type=int, default=512)
    parser.add_argument("--outage-s", type=float, default=300.0, help="how long the receiver is down")
    parser.add_argument("--after-s", type=float, default=120.0, help="how long to watch after the drain")
    args = parser.parse_args()
    if args.receiver:
        serve_receiver(args.receiver)
        return
    if args.quick:
        result = soak(gpus=8, interval_ms=500, outage_s=10, after_s=2, warm_s=3)
    else:
        result = soak(gpus=args.gpus, interval_ms=1000, outage_s=args.outage_s, after_s=args.after_s, warm_s=30)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key in ("before", "plateau_first", "at_restart", "drained", "later", "after_gc_collect", "after_malloc_trim"):
        print(f"{key:18} {result[key]}")
    print(f"buffer full after {result['buffer_full_after_s']} s; drain {result['drain_s']} s")
    print(f"PYTHONMALLOC={os.environ.get('PYTHONMALLOC', '(pymalloc)')}")


if __name__ == "__main__":
    main()

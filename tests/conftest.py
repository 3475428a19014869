"""Shared fixtures: free ports, a real exporter process, and an in-process stack driven by a fake clock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from otel_fakegpu.engine import EmbeddedEngine
from otel_fakegpu.fields import CollectorSet, default_collectors_path, load_collectors
from otel_fakegpu.outputs import PrometheusTextRenderer
from otel_fakegpu.sim import SKUS, FleetSpec, Simulator
from otel_fakegpu.telemetry import CycleStats, LabelScheme, TelemetryPipeline, default_resource

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / ".peers"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes, dict[str, str]]:
    """GET returning (status, body, headers) for any status, never raising on 4xx/5xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


@dataclass
class ExporterProcess:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes, dict[str, str]]:
        return http_get(self.base + path, timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_exporter(
    args: Sequence[str], env: dict[str, str] | None = None, ready_timeout: float = 60.0
) -> ExporterProcess:
    """Start ``python -m otel_fakegpu`` on a free loopback port and wait until /metrics answers 200."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DCGM_", "NUM_FAKE", "GPU_", "METRIC_"))}
    full_env.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_fakegpu", "-a", f"127.0.0.1:{port}", *args],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    exporter = ExporterProcess(proc, port)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"exporter exited with {proc.returncode}: {err}")
        try:
            if exporter.get("/metrics", timeout=2)[0] == 200:
                return exporter
        except OSError:
            pass
        time.sleep(0.05)
    exporter.stop()
    raise RuntimeError("exporter did not serve /metrics in time")


@pytest.fixture
def exporter_factory() -> Iterator[Callable[..., ExporterProcess]]:
    started: list[ExporterProcess] = []

    def factory(*args: str, env: dict[str, str] | None = None) -> ExporterProcess:
        exporter = start_exporter(args, env)
        started.append(exporter)
        return exporter

    yield factory
    for exporter in started:
        exporter.stop()


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Stack:
    """engine ← simulator → pipeline → renderer, in process, with a clock the test moves."""

    engine: EmbeddedEngine
    simulator: Simulator
    pipeline: TelemetryPipeline
    renderer: PrometheusTextRenderer
    clock: FakeClock

    def cycle(self) -> bytes:
        snapshot = self.engine.read_latest(self.pipeline.field_ids)
        body, _ = self.renderer.render(self.pipeline.collect(snapshot))
        return body


def build_stack(
    count: int,
    profiles: Sequence[str],
    seed: int = 42,
    hostname: str | None = "golden-host",
    skus: Sequence[str] = ("h100-sxm",),
    collectors: CollectorSet | None = None,
) -> Stack:
    clock = FakeClock()
    engine = EmbeddedEngine()
    spec = FleetSpec(count, tuple(profiles), tuple(SKUS[s] for s in skus), "golden-host", seed)
    simulator = Simulator(spec, engine, clock=clock)
    simulator.start()
    collectors = collectors or load_collectors(default_collectors_path())
    pipeline = TelemetryPipeline(
        collectors,
        LabelScheme(hostname, collectors.labels),
        default_resource("otel-fakegpu", "golden-host"),
        CycleStats(),
        lambda: engine.reads_total,
    )
    return Stack(engine, simulator, pipeline, PrometheusTextRenderer(), clock)

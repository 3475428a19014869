"""Shared fixtures: free ports, a real exporter process, and an in-process stack driven by a fake clock."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest

from otel_fakegpu.attribution import AttributionStage
from otel_fakegpu.config.model import config_from, with_scenario
from otel_fakegpu.engine import EmbeddedEngine
from otel_fakegpu.fields import (
    CLOCK_EVENTS_COUNT_FIELD,
    XID_COUNT_FIELD,
    CollectorSet,
    default_collectors_path,
    load_collectors,
)
from otel_fakegpu.host.stack import HostStack, build_host
from otel_fakegpu.outputs import PrometheusTextRenderer
from otel_fakegpu.sim import Scenario, Simulator
from otel_fakegpu.telemetry import TelemetryPipeline
from tests.markers import (  # noqa: F401 - hooks and a fixture, registered by being in this module
    _processes_only_where_marked,
    pytest_collection_modifyitems,
    pytest_terminal_summary,
)

if TYPE_CHECKING:
    from tests.prometheus_server import PrometheusServer
    from tests.receivers import VictoriaMetrics

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


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket: what a consumer on the node would use."""

    def __init__(self, path: str | Path, timeout: float = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


def uds_get(
    path: str | Path, url: str, headers: dict[str, str] | None = None, method: str = "GET", body: bytes | None = None
) -> tuple[int, bytes, dict[str, str]]:
    """A request over the Unix socket at ``path``, returning (status, body, headers) for any status."""
    conn = UnixHTTPConnection(path)
    try:
        conn.request(method, url, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), dict(resp.getheaders())
    finally:
        conn.close()


@dataclass
class ExporterProcess:
    proc: subprocess.Popen[bytes]
    port: int
    uds: Path | None = None
    log: IO[bytes] | None = None

    def stderr_text(self) -> str:
        """What the exporter logged so far (a file, so a chatty exporter can never block on a full pipe)."""
        if self.log is None:
            return ""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes, dict[str, str]]:
        return http_get(self.base + path, timeout)

    def health(self) -> tuple[int, dict[str, Any]]:
        """/health's status and JSON body (a JSON object, whatever the status)."""
        status, body, headers = self.get("/health")
        assert headers["Content-Type"].startswith("application/json"), headers
        result = json.loads(body)
        assert isinstance(result, dict)
        return status, result

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self) -> None:
        self.stop()
        if self.log is not None:
            self.log.close()


def exporter_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without any of the exporter's own variables, plus ``env``."""
    prefixes = ("DCGM_", "NUM_FAKE", "GPU_", "METRIC_", "UDS_", "ENABLE_UDS", "OTEL_", "FAKEGPU_", "NODE_NAME")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    full_env.update(env or {})
    return full_env


def _ready(exporter: ExporterProcess) -> bool:
    if exporter.uds is not None:
        return exporter.uds.exists() and uds_get(exporter.uds, "/metrics")[0] == 200
    return exporter.get("/metrics", timeout=2)[0] == 200


class PortTakenError(RuntimeError):
    """The free port picked for an exporter was taken by another process before the exporter bound it."""


def start_exporter(
    args: Sequence[str],
    env: dict[str, str] | None = None,
    ready_timeout: float = 180.0,  # a 4096-GPU start on a machine busy with other work can take a minute
    address: str | None = None,
    uds: Path | None = None,
    ready: Callable[[ExporterProcess], bool] | None = None,
) -> ExporterProcess:
    """Start ``python -m otel_fakegpu`` (on a free loopback port unless ``address`` is given) and wait
    until /metrics answers 200 (over ``uds`` when given), or until ``ready(exporter)`` holds."""
    # A port found free can be taken by another process (a peer another test started) before the exporter binds
    # it; only then is a fresh port tried. Any other failure is the test's.
    for attempt in range(3):
        try:
            return _start_once(args, env, ready_timeout, address, uds, ready or _ready)
        except PortTakenError:
            if address is not None or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _start_once(
    args: Sequence[str],
    env: dict[str, str] | None,
    ready_timeout: float,
    address: str | None,
    uds: Path | None,
    ready: Callable[[ExporterProcess], bool],
) -> ExporterProcess:
    port = free_port()
    listen = f"127.0.0.1:{port}" if address is None else address
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process; closed in stop()
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_fakegpu", "-a", listen, *args],
        env=exporter_env(env),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    exporter = ExporterProcess(proc, port, uds, log)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stderr = exporter.stderr_text()
            taken = "address already in use" in stderr and f":{port}" in stderr
            error = PortTakenError if taken else RuntimeError
            raise error(f"exporter exited with {proc.returncode}: {stderr}")
        try:
            if ready(exporter):
                return exporter
        except OSError:
            pass
        time.sleep(0.05)
    exporter.stop()
    raise RuntimeError("exporter did not serve /metrics in time")


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the exporter to completion (for the paths that must exit by themselves)."""
    return subprocess.run(
        [sys.executable, "-m", "otel_fakegpu", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


@pytest.fixture
def exporter_factory() -> Iterator[Callable[..., ExporterProcess]]:
    started: list[ExporterProcess] = []

    def factory(
        *args: str,
        env: dict[str, str] | None = None,
        address: str | None = None,
        uds: Path | None = None,
        ready: Callable[[ExporterProcess], bool] | None = None,
    ) -> ExporterProcess:
        exporter = start_exporter(args, env, address=address, uds=uds, ready=ready)
        started.append(exporter)
        return exporter

    yield factory
    for exporter in started:
        exporter.close()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """Starts real Prometheus servers (PrometheusServer's arguments, less the folder); stops them after the test."""
    from tests.prometheus_server import PrometheusServer  # here: that module imports this one

    started: list[PrometheusServer] = []

    def factory(scrape: str = "", rule_files: tuple[Path, ...] = (), storage: Path | None = None) -> PrometheusServer:
        server = PrometheusServer(tmp_path / f"prometheus-{len(started)}", scrape, rule_files, storage)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A real VictoriaMetrics (from .peers/) for the test, stopped after it."""
    from tests.receivers import VictoriaMetrics  # here: that module imports this one

    server = VictoriaMetrics(tmp_path)
    yield server
    server.stop()


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
    host: HostStack

    def cycle(self) -> bytes:
        body, _ = self.renderer.render(self.pipeline.collect(self.pipeline.read(self.engine)))
        return body


def build_stack(
    count: int,
    profiles: Sequence[str],
    seed: int = 42,
    hostname: str | None = "golden-host",
    skus: Sequence[str] = ("h100-sxm",),
    collectors: CollectorSet | None = None,
    count_windows_ms: dict[int, int] | None = None,
    clock: FakeClock | None = None,
    attribution: AttributionStage | None = None,
    scenario: Scenario | None = None,
    step_s: float = 30.0,
    mig: str | None = None,
    release: str | None = None,
    flags: Sequence[str] = (),
) -> Stack:
    """With ``scenario``: its fleet, seed and events, its time advancing ``step_s`` wall seconds per update;
    ``release``: the dcgm-exporter release whose contract is served (--dcgm-exporter-compat)."""
    clock = clock or FakeClock()
    argv = ["--num-gpus", str(count), "--gpu-profiles", ",".join(profiles), "--gpu-model", ",".join(skus)]
    argv += ["--seed", str(seed), "--update-interval", str(step_s), *(["--mig", mig] if mig else [])]
    argv += ["--dcgm-exporter-compat", release] if release else []
    argv += list(flags)  # any further option, as the command line gives it
    for field_id, flag in ((XID_COUNT_FIELD, "-x"), (CLOCK_EVENTS_COUNT_FIELD, "--clock-events-count-window-size")):
        if count_windows_ms and field_id in count_windows_ms:
            argv += [flag, str(count_windows_ms[field_id])]
    config = replace(config_from(argv, {"NODE_NAME": "golden-host"}), hostname=hostname)
    config = with_scenario(config, scenario, seed_given=False)  # the scenario's seed wins over the default 42
    collectors = collectors or load_collectors(default_collectors_path())
    engine = EmbeddedEngine(clock)  # typed as the embedded one: tests read its store
    host = build_host(config, collectors, engine=engine, clock=clock, attribution=attribution, keep_samples_s=3600.0)
    assert host.simulator is not None
    host.simulator.start()
    return Stack(engine, host.simulator, host.pipeline, PrometheusTextRenderer(), clock, host)

"""No thread dies silently: a background loop that ends is logged and fails /health. HTTP/0.9 and made-up
HTTP versions are refused. The self-metrics on one page describe one moment."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time

import pytest

from otel_fakegpu.cli import config_from_args
from otel_fakegpu.engine import EngineState, EngineStatus
from otel_fakegpu.fields import default_collectors_path, load_collectors
from otel_fakegpu.host.collection import HostCollection
from otel_fakegpu.serve import evaluate
from otel_fakegpu.telemetry import CycleStatsView, Liveness
from tests.conftest import ExporterProcess
from tests.polling import wait_until


def test_a_loop_that_dies_is_recorded_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    liveness = Liveness()

    def broken(stop: threading.Event, interval: float) -> None:
        raise OverflowError("timeout value is too large")

    def quitter(stop: threading.Event, interval: float) -> None:
        return None

    stop = threading.Event()
    with caplog.at_level(logging.ERROR):
        liveness.guard("cycle", broken)(stop, 1.0)
        liveness.guard("simulator", quitter)(stop, 1.0)
    assert liveness.dead() == {
        "cycle": "OverflowError: timeout value is too large",
        "simulator": "ended without being asked to",
    }
    assert "the cycle loop died" in caplog.text
    stop.set()
    fresh = Liveness()
    fresh.guard("cycle", quitter)(stop, 1.0)  # asked to stop: not dead
    assert fresh.dead() == {}


def test_a_dead_loop_fails_health() -> None:
    stats = CycleStatsView(3, 0, 99.0, 0.004, None, 100, gpus=4)
    engine = EngineStatus("embedded", EngineState.OK, "4 GPU entities")
    report = evaluate(engine, 3, stats, 10.0, 100.0, 3, dead_loops={"simulator": "OverflowError: x"})
    assert (report.status_code, report.body["status"]) == (503, "loop_failed")
    assert report.body["dead_loops"] == {"simulator": "OverflowError: x"}
    assert evaluate(engine, 3, stats, 10.0, 100.0, 3, dead_loops={}).status_code == 200


def test_a_dead_push_sender_is_in_the_collection_facts() -> None:
    config = config_from_args(["--num-gpus", "1", "--otlp-endpoint", "http://127.0.0.1:1/v1/metrics"], {})
    exporter = HostCollection(config, load_collectors(default_collectors_path()))

    def dying(stop: threading.Event) -> None:
        raise RuntimeError("simulated crash")

    exporter.pushers[0].queue.run = dying  # type: ignore[method-assign]
    exporter.start()
    try:
        wait_until(lambda: bool(exporter.facts()["dead_loops"]), timeout=10)
        assert exporter.facts()["dead_loops"] == {"otlp push": "RuntimeError: simulated crash"}
    finally:
        exporter.stop()


def test_a_plain_loop_guard_reports_its_death() -> None:
    liveness, stop = Liveness(), threading.Event()

    def broken() -> None:
        raise ValueError("boom")

    liveness.guard_plain("cycle", broken, stop)()
    assert liveness.dead() == {"cycle": "ValueError: boom"}


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_http_0_9_and_unknown_versions_are_refused(exporter_factory: object) -> None:
    exporter: ExporterProcess = exporter_factory("--num-gpus", "1")  # type: ignore[operator]
    for request in (b"GET /metrics\r\n\r\n", b"GET /metrics HTTP/0.9\r\n\r\n", b"GET /health HTTP/2.0\r\n\r\n"):
        answer = _raw(exporter.port, request)  # returns: the server closed the connection
        assert re.match(rb"HTTP/\d\.\d 400 ", answer), answer[:100]
        assert b"DCGM_" not in answer
    assert b" 200 OK" in _raw(exporter.port, b"GET /metrics HTTP/1.0\r\n\r\n")


def test_self_metrics_on_one_page_agree(exporter_factory: object) -> None:
    exporter: ExporterProcess = exporter_factory("--num-gpus", "2", "-c", "150")  # type: ignore[operator]
    deadline = time.monotonic() + 3
    pages = 0
    while time.monotonic() < deadline:
        page = exporter.get("/metrics")[1].decode()
        values = dict(re.findall(r"^(otel_fakegpu_\w+_total) (\d+)$", page, re.MULTILINE))
        cycles, reads = values["otel_fakegpu_cycles_total"], values["otel_fakegpu_engine_reads_total"]
        assert cycles == reads == values["otel_fakegpu_sdk_collections_total"], values
        pages += 1
    assert pages > 5

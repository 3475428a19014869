"""OpenMetrics and gzip, negotiated the same way on TCP and on the Unix socket, built once per cycle."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from otel_fakegpu.outputs import ExpositionCache, Format, PrometheusOutput
from otel_fakegpu.runtime import Collection, WorkerSettings
from otel_fakegpu.runtime.frames import read_frame
from otel_fakegpu.runtime.worker import Worker
from otel_fakegpu.serve.negotiate import accepts_gzip, choose_format
from otel_fakegpu.telemetry import CycleResult
from tests.conftest import ExporterProcess, build_stack, http_get, uds_get

PROMETHEUS_ACCEPT = (  # what Prometheus 2.x sends by default
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, Format.PROMETHEUS),
        ("", Format.PROMETHEUS),
        ("text/plain", Format.PROMETHEUS),
        ("*/*", Format.PROMETHEUS),
        ("application/openmetrics-text", Format.OPENMETRICS),
        (PROMETHEUS_ACCEPT, Format.OPENMETRICS),
        ("text/plain;version=0.0.4,application/openmetrics-text;q=0.5", Format.PROMETHEUS),
        ("application/openmetrics-text;q=0", Format.PROMETHEUS),
        ("application/openmetrics-text;q=bogus", Format.PROMETHEUS),
    ],
)
def test_choose_format(accept: str | None, expected: Format) -> None:
    assert choose_format(accept) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, False), ("identity", False), ("gzip", True), ("br, gzip;q=0.8", True), ("gzip;q=0", False), ("*", True)],
)
def test_accepts_gzip(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def _fetch(exporter: ExporterProcess, uds: Path | None, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    if uds is not None:
        status, body, got = uds_get(uds, "/metrics", headers)
    else:
        import urllib.request

        request = urllib.request.Request(exporter.base + "/metrics", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as resp:
            status, body, got = resp.status, resp.read(), dict(resp.headers)
    assert status == 200
    return body, got


@pytest.mark.parametrize("transport", ["tcp", "uds"])
def test_negotiation_on_both_transports(
    transport: str, tmp_path: Path, exporter_factory: Callable[..., ExporterProcess]
) -> None:
    path = tmp_path / "m.sock"
    exporter = exporter_factory("--uds", str(path), "-c", "600000", uds=path)
    uds = path if transport == "uds" else None
    plain, headers = _fetch(exporter, uds, {})
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "Content-Encoding" not in headers

    om, headers = _fetch(exporter, uds, {"Accept": PROMETHEUS_ACCEPT})
    assert headers["Content-Type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert om.endswith(b"# EOF\n")
    families = {f.name: f for f in parse_openmetrics(om.decode())}
    energy = families["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]
    assert energy.type == "unknown"  # keeps the exact DCGM name instead of NAME_total
    assert {s.name for s in energy.samples} == {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"}
    assert families["otel_fakegpu_cycles"].type == "counter"

    zipped, headers = _fetch(exporter, uds, {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in headers["Vary"]
    assert gzip.decompress(zipped) == plain

    om_zipped, headers = _fetch(exporter, uds, {"Accept": "application/openmetrics-text", "Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(om_zipped) == om
    assert {f.name for f in parse_prometheus(plain.decode())} >= {"DCGM_FI_DEV_GPU_TEMP"}


def test_variants_are_built_once_and_prepared_for_the_next_cycle() -> None:
    stack = build_stack(2, ["stable"])
    cache = ExpositionCache()
    output = PrometheusOutput(cache)

    def cycle(number: int) -> None:
        snapshot = stack.pipeline.read(stack.engine)
        output(CycleResult(number, 0.0, stack.pipeline.collect(snapshot)))

    server, worker_end = socket.socketpair()
    with server, worker_end:
        worker = Worker(worker_end, (), lambda host: cast(Collection, cache), WorkerSettings(1.0, 1.0))
        worker._collections["h"] = cast(Collection, cache)  # all a publication uses of a collection: latest()

        def published_variants() -> list[list[object]]:
            worker._publish("h")
            header, _ = read_frame(server)
            return list(header["variants"])

        cycle(1)
        first = cache.latest()
        assert first is not None
        assert published_variants() == [["PROMETHEUS", False]]  # nobody asked for OpenMetrics gzip: not built
        built = first.variant(Format.OPENMETRICS, True)
        assert first.variant(Format.OPENMETRICS, True) is built  # the same bytes object: compressed once
        worker._demand = frozenset({(Format.OPENMETRICS, True)})  # what a "demand" frame sets after a scrape
        cycle(2)
        second = cache.latest()
        assert second is not None and second is not first
        # built for the cycle as it is published, before any scrape; Prometheus gzip, asked by nobody, is not
        assert published_variants() == [["OPENMETRICS", True]]


def test_unknown_methods_and_paths_on_the_socket(
    tmp_path: Path, exporter_factory: Callable[..., ExporterProcess]
) -> None:
    path = tmp_path / "m.sock"
    exporter = exporter_factory("--uds", str(path), uds=path)
    assert uds_get(path, "/metrics", method="DELETE")[0] == 405
    assert uds_get(path, "/missing")[0] == 404
    assert http_get(exporter.base + "/missing")[0] == 404

"""SIGHUP reloads the collectors file and the web config without a restart: pages stay whole, a bad file keeps the
running configuration, and each reload is counted."""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_fakegpu.fields import parse_collectors
from otel_fakegpu.telemetry import CycleStats, LabelScheme, TelemetryPipeline, default_resource
from tests.conftest import ExporterProcess, build_stack, http_get
from tests.pages import basic_auth, reloads
from tests.polling import wait_until

Factory = Callable[..., ExporterProcess]
OLD = {"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE"}
NEW = {"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_SM_CLOCK"}
GPUS = 4


def _write(path: Path, names: set[str]) -> None:
    path.write_text("".join(f"{name}, gauge, {name.lower()}.\n" for name in sorted(names)))


def _gpu_families(body: str) -> dict[str, int]:
    return {
        f.name: len(f.samples) for f in text_string_to_metric_families(body) if not f.name.startswith("otel_fakegpu_")
    }


async def _scrape_while(url: str, clients: int, done: Callable[[], bool]) -> list[tuple[int, str]]:
    pages: list[tuple[int, str]] = []

    async def client(session: aiohttp.ClientSession) -> None:
        while not done():
            async with session.get(url) as response:
                pages.append((response.status, await response.text()))

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return pages


@pytest.mark.slow
def test_sighup_under_100_concurrent_scrapes_never_serves_an_empty_or_partial_page(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    collectors = tmp_path / "collectors.csv"
    _write(collectors, OLD)
    exporter = exporter_factory("-f", str(collectors), "--num-gpus", str(GPUS), "-c", "200", "--update-interval", "0.1")
    started = time.monotonic()
    reloaded_at: list[float] = []

    def done() -> bool:
        elapsed = time.monotonic() - started
        if elapsed > 1.0 and not reloaded_at:
            _write(collectors, NEW)
            exporter.proc.send_signal(signal.SIGHUP)
            reloaded_at.append(elapsed)
        return bool(reloaded_at) and elapsed > reloaded_at[0] + 2.0

    pages = asyncio.run(_scrape_while(f"{exporter.base}/metrics", 100, done))
    assert exporter.proc.poll() is None, "SIGHUP ended the process"
    seen = set()
    for status, body in pages:
        families = _gpu_families(body)
        assert status == 200 and set(families) in (OLD, NEW), f"partial or empty page: {sorted(families)}"
        assert set(families.values()) == {GPUS}, families
        seen.add(frozenset(families))
    assert seen == {frozenset(OLD), frozenset(NEW)}, "the reload was not seen under load"
    assert len(pages) >= 200
    assert reloads(exporter.get("/metrics")[1].decode()) == {"ok": 1, "failed": 0}


def test_sighup_with_a_broken_file_keeps_serving_the_running_set(tmp_path: Path, exporter_factory: Factory) -> None:
    collectors = tmp_path / "collectors.csv"
    _write(collectors, OLD)
    exporter = exporter_factory("-f", str(collectors), "--num-gpus", str(GPUS), "-c", "200")
    collectors.write_text("DCGM_FI_DEV_GPU_TEMP, gauge, ok\nDCGM_FI_DEV_NOPE, gauge, broken\n")
    exporter.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: reloads(exporter.get("/metrics")[1].decode()).get("failed") == 1)
    # The worker publishes the count before the serving process logs the error it sends back: wait for the line.
    wait_until(lambda: "reload failed" in exporter.stderr_text())
    assert exporter.proc.poll() is None
    body = exporter.get("/metrics")[1].decode()
    assert set(_gpu_families(body)) == OLD
    errors = [line for line in exporter.stderr_text().splitlines() if "reload failed" in line]
    assert len(errors) == 1 and f"{collectors}:2: unknown DCGM field 'DCGM_FI_DEV_NOPE'" in errors[0]
    assert "Traceback" not in exporter.stderr_text()
    _write(collectors, NEW)  # fixed: the next SIGHUP takes it
    exporter.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: set(_gpu_families(exporter.get("/metrics")[1].decode())) == NEW)
    assert reloads(exporter.get("/metrics")[1].decode()) == {"ok": 1, "failed": 1}


def _status(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_sighup_reloads_the_web_config_users(tmp_path: Path, exporter_factory: Factory) -> None:
    web = tmp_path / "web.yml"

    def users(password: str) -> None:
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")

    users("first")
    collectors = tmp_path / "collectors.csv"
    _write(collectors, OLD)
    sock = tmp_path / "m.sock"  # readiness over the socket, which asks for no password
    exporter = exporter_factory(
        "-f", str(collectors), "--web-config-file", str(web), "-c", "600000", "--uds", str(sock), uds=sock
    )  # fmt: skip
    url = f"{exporter.base}/metrics"
    assert _status(url, {"Authorization": basic_auth("prometheus", b"first")}) == 200
    users("second")
    exporter.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: _status(url, {"Authorization": basic_auth("prometheus", b"second")}) == 200)
    assert _status(url, {"Authorization": basic_auth("prometheus", b"first")}) == 401
    web.write_text("tls_server_config:\n  cert_file: x.crt\n")  # broken: the running users stay
    exporter.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload of the web config failed" in exporter.stderr_text())
    assert _status(url, {"Authorization": basic_auth("prometheus", b"second")}) == 200
    assert http_get(url)[0] == 401


def test_a_reloaded_pipeline_keeps_window_counts_and_the_collection_count() -> None:
    """In process: the pipeline a reload builds takes over the running windows, neither losing nor recounting."""
    csv = "DCGM_FI_DEV_XID_ERRORS, gauge, x\nDCGM_EXP_XID_ERRORS_COUNT, gauge, c\n"
    stack = build_stack(2, ["stable"], collectors=parse_collectors(csv))
    stack.engine.inject([(1, 230, 79)], stack.clock())
    before = _xid_counts(stack.cycle().decode())
    assert before == {("1", "79"): 1.0}
    old = stack.pipeline
    stack.pipeline = TelemetryPipeline(
        parse_collectors(csv + "DCGM_FI_DEV_GPU_TEMP, gauge, t\n"),
        LabelScheme("golden-host", ()),
        default_resource("otel-fakegpu", "golden-host"),
        CycleStats(),
        lambda: stack.engine.reads_total,
        previous=old,
    )
    stack.pipeline.watch(stack.engine, 3600.0)
    stack.engine.inject([(0, 230, 13)], stack.clock())
    after = _xid_counts(stack.cycle().decode())
    assert after == {("1", "79"): 1.0, ("0", "13"): 1.0}  # the old XID kept, counted once; the new one added
    assert stack.pipeline.collections_total == old.collections_total + 1


def _xid_counts(body: str) -> dict[tuple[str, str], float]:
    return {
        (s.labels["gpu"], s.labels["xid"]): s.value
        for f in text_string_to_metric_families(body)
        if f.name == "DCGM_EXP_XID_ERRORS_COUNT"
        for s in f.samples
        if "xid" in s.labels
    }

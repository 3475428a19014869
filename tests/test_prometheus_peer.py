"""A real Prometheus (Debian's package, installed by tools/install-peers.sh) scrapes the exporter, and
PromQL over what it stored returns one series per GPU with dcgm-exporter's label set."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import PEERS, ExporterProcess, free_port, http_get

PROMETHEUS = PEERS / "prometheus" / "usr" / "bin" / "prometheus"
GPU_LABELS = {"gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION"}
QUERIED = (
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[int], str]]:
    assert PROMETHEUS.exists(), f"{PROMETHEUS} missing: run `make peers` (tools/install-peers.sh)"
    procs: list[subprocess.Popen[bytes]] = []

    def start(target_port: int) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            # evaluation_interval: the default step of subqueries (jobscope's [Ns:] windows), 1 m by default
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: gpu\n    honor_labels: true\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        )
        port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    str(PROMETHEUS),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / "prometheus.log").open("wb"),
            )
        )
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=30)


def _query(base: str, promql: str) -> list[dict[str, object]]:
    try:
        status, body, _ = http_get(f"{base}/api/v1/query?query={urllib.parse.quote(promql)}")
    except OSError:  # Prometheus still starting
        return []
    if status != 200:
        return []
    result = json.loads(body)["data"]["result"]
    assert isinstance(result, list)
    return result


def test_prometheus_scrapes_one_series_per_gpu(
    prometheus: Callable[[int], str], exporter_factory: Callable[..., ExporterProcess]
) -> None:
    exporter = exporter_factory(
        "--num-gpus",
        "4",
        "-c",
        "1000",
        "--update-interval",
        "0.5",
        "--gpu-profiles",
        "stable,wave",
        env={"NODE_NAME": "gpu-node-1"},
    )
    base = prometheus(exporter.port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_query(base, "DCGM_FI_DEV_GPU_TEMP")) < 4:
        time.sleep(0.5)
    for name in QUERIED:
        series = _query(base, name)
        assert len(series) == 4, f"{name}: {series}"
        metrics = [s["metric"] for s in series]
        assert all(isinstance(m, dict) and set(m) >= GPU_LABELS for m in metrics)
        assert sorted(m["gpu"] for m in metrics) == ["0", "1", "2", "3"]  # type: ignore[index]
        assert {m["Hostname"] for m in metrics} == {"gpu-node-1"}  # type: ignore[index]
        assert {m["device"] for m in metrics} == {"nvidia0", "nvidia1", "nvidia2", "nvidia3"}  # type: ignore[index]
        assert len({m["UUID"] for m in metrics}) == 4  # type: ignore[index]
    # The counter behaves as a counter for PromQL: rate() over energy is the mean power, in mJ/s.
    energy_deadline = time.monotonic() + 30
    rates: list[dict[str, object]] = []
    while time.monotonic() < energy_deadline and len(rates) < 4:
        rates = _query(base, "rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5s])")
        time.sleep(0.5)
    assert len(rates) == 4
    assert all(float(r["value"][1]) > 0 for r in rates)  # type: ignore[index]
    up = _query(base, 'up{job="gpu"}')
    assert up and up[0]["value"][1] == "1"  # type: ignore[index]


def test_prometheus_stores_window_counts_for_xid_alerts(
    tmp_path: Path, prometheus: Callable[[int], str], exporter_factory: Callable[..., ExporterProcess]
) -> None:
    """The alert a user writes on dcgm-exporter, ``DCGM_EXP_XID_ERRORS_COUNT{xid!=""} > 0``, fires here too."""
    collectors = tmp_path / "counts.csv"
    collectors.write_text(
        "DCGM_FI_DEV_XID_ERRORS, gauge, Last XID.\n"
        "DCGM_EXP_XID_ERRORS_COUNT, gauge, XIDs in the window.\n"
        "DCGM_EXP_CLOCK_EVENTS_COUNT, gauge, Clock events in the window.\n"
    )
    # Faulty GPUs raise an XID in 5 % of updates: hundreds of updates make one certain.
    args = (
        "-f",
        str(collectors),
        "--num-gpus",
        "2",
        "--gpu-profiles",
        "faulty",
        "-c",
        "500",
        "--update-interval",
        "0.05",
    )
    exporter = exporter_factory(*args, "-x", "600000")
    base = prometheus(exporter.port)
    deadline = time.monotonic() + 60
    fired: list[dict[str, object]] = []
    while time.monotonic() < deadline and not fired:
        fired = _query(base, 'DCGM_EXP_XID_ERRORS_COUNT{xid!=""} > 0')
        time.sleep(0.5)
    assert fired, "no XID counted within a minute"
    labels = [s["metric"] for s in fired]
    assert all(isinstance(m, dict) and m["window_size_in_ms"] == "600000" and m["xid"].isdigit() for m in labels)
    assert all(set(m) >= GPU_LABELS - {"DCGM_FI_DRIVER_VERSION"} for m in labels if isinstance(m, dict))
    events = _query(base, "sum by (clock_event) (DCGM_EXP_CLOCK_EVENTS_COUNT)")
    assert events and all(isinstance(e["metric"], dict) for e in events)

"""A real Prometheus (Debian's package, installed by tools/install-peers.sh) scrapes the exporter, and
PromQL over what it stored returns one series per GPU with dcgm-exporter's label set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ExporterProcess
from tests.polling import wait_until
from tests.prometheus_server import PrometheusServer, static_scrape

GPU_LABELS = {"gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION"}
QUERIED = (
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
)


@pytest.mark.slow
def test_prometheus_scrapes_one_series_per_gpu(
    prometheus: Callable[..., PrometheusServer], exporter_factory: Callable[..., ExporterProcess]
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
    server = prometheus(static_scrape("gpu", exporter.port))
    wait_until(lambda: len(server.query("DCGM_FI_DEV_GPU_TEMP")) >= 4, 60, "four GPUs in Prometheus", interval=0.5)
    for name in QUERIED:
        series = server.query(name)
        assert len(series) == 4, f"{name}: {series}"
        metrics = [s["metric"] for s in series]
        assert all(isinstance(m, dict) and set(m) >= GPU_LABELS for m in metrics)
        assert sorted(m["gpu"] for m in metrics) == ["0", "1", "2", "3"]
        assert {m["Hostname"] for m in metrics} == {"gpu-node-1"}
        assert {m["device"] for m in metrics} == {"nvidia0", "nvidia1", "nvidia2", "nvidia3"}
        assert len({m["UUID"] for m in metrics}) == 4

    # The counter behaves as a counter for PromQL: rate() over energy is the mean power, in mJ/s.
    # Scrapes and cycles both come every second: a GPU's first two samples can be one cycle's page scraped twice,
    # whose rate is 0. Its rate must turn positive once a later cycle's sample is in the window.
    def energy_rates() -> list[dict[str, Any]]:
        rates = server.query("rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5s])")
        positive = len(rates) >= 4 and all(float(r["value"][1]) > 0 for r in rates)
        return rates if positive else []

    rates = wait_until(energy_rates, 30, "a positive energy rate for every GPU", interval=0.5)
    assert len(rates) == 4
    up = server.query('up{job="gpu"}')
    assert up and up[0]["value"][1] == "1"


@pytest.mark.slow
def test_prometheus_stores_window_counts_for_xid_alerts(
    tmp_path: Path, prometheus: Callable[..., PrometheusServer], exporter_factory: Callable[..., ExporterProcess]
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
    server = prometheus(static_scrape("gpu", exporter.port))
    fired = wait_until(
        lambda: server.query('DCGM_EXP_XID_ERRORS_COUNT{xid!=""} > 0'), 60, "an XID counted", interval=0.5
    )
    labels = [s["metric"] for s in fired]
    assert all(isinstance(m, dict) and m["window_size_in_ms"] == "600000" and m["xid"].isdigit() for m in labels)
    assert all(set(m) >= GPU_LABELS - {"DCGM_FI_DRIVER_VERSION"} for m in labels if isinstance(m, dict))
    events = server.query("sum by (clock_event) (DCGM_EXP_CLOCK_EVENTS_COUNT)")
    assert events and all(isinstance(e["metric"], dict) for e in events)

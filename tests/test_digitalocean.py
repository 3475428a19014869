"""--preset digitalocean against the wrapper's source (digitalocean/do-dcgm-exporter, pkg/types.go, pkg/helpers.go,
pkg/main.go): its field set is always on and -f adds to it, and the pushed body holds exactly its series."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ExporterProcess
from tests.polling import wait_until

# pkg/types.go: defaultCounters (by name, as it prints them) and defaultExporterAddedCounters.
WRAPPER_GPU_FIELDS = {
    "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_SLOWDOWN_TEMP", "DCGM_FI_DEV_SHUTDOWN_TEMP", "DCGM_FI_DEV_FAN_SPEED",
    "DCGM_FI_DEV_PSTATE", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_THERMAL_VIOLATION", "DCGM_FI_DEV_POWER_VIOLATION", "DCGM_FI_DEV_SYNC_BOOST_VIOLATION",
    "DCGM_FI_DEV_BOARD_LIMIT_VIOLATION", "DCGM_FI_DEV_LOW_UTIL_VIOLATION", "DCGM_FI_DEV_RELIABILITY_VIOLATION",
    "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
    "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "DCGM_FI_DEV_RETIRED_SBE", "DCGM_FI_DEV_RETIRED_DBE",
    "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
    "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_ROW_REMAP_FAILURE", "DCGM_FI_DEV_FB_USED_PERCENT",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_PROF_SM_OCCUPANCY",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE", "DCGM_FI_PROF_PIPE_FP64_ACTIVE",
    "DCGM_FI_PROF_PIPE_FP32_ACTIVE", "DCGM_FI_PROF_PIPE_FP16_ACTIVE", "DCGM_FI_PROF_PCIE_TX_BYTES",
    "DCGM_FI_PROF_PCIE_RX_BYTES", "DCGM_FI_PROF_NVLINK_TX_BYTES", "DCGM_FI_PROF_NVLINK_RX_BYTES",
    "DCGM_FI_DEV_PERSISTENCE_MODE", "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
}  # fmt: skip
WRAPPER_SWITCH_FIELDS = {
    "DCGM_FI_DEV_NVSWITCH_TEMPERATURE_CURRENT", "DCGM_FI_DEV_NVSWITCH_TEMPERATURE_LIMIT_SLOWDOWN",
    "DCGM_FI_DEV_NVSWITCH_TEMPERATURE_LIMIT_SHUTDOWN", "DCGM_FI_DEV_NVSWITCH_THROUGHPUT_TX",
    "DCGM_FI_DEV_NVSWITCH_THROUGHPUT_RX", "DCGM_FI_DEV_NVSWITCH_FATAL_ERRORS", "DCGM_FI_DEV_NVSWITCH_NON_FATAL_ERRORS",
}  # fmt: skip
WRAPPER_LINK_FIELDS = {"DCGM_FI_DEV_NVSWITCH_LINK_STATUS"}
WRAPPER_COUNTS = {"DCGM_EXP_XID_ERRORS_COUNT", "DCGM_EXP_CLOCK_EVENTS_COUNT"}
BLANK_ON_SXM = {"DCGM_FI_DEV_FAN_SPEED"}  # SXM modules have no fan: DCGM reports it blank, and a blank is no series


class _Collect(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes]

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    handler = type("Collect", (_Collect,), {"bodies": bodies})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/gpu_metrics", bodies
    server.shutdown()
    server.server_close()


def test_push_body_is_the_wrapper_field_list_plus_f(
    tmp_path: Path, receiver: tuple[str, list[bytes]], exporter_factory: Callable[..., ExporterProcess]
) -> None:
    url, bodies = receiver
    extra = tmp_path / "extra.csv"
    extra.write_text(
        "DCGM_FI_DEV_GPU_UTIL, gauge, GPU utilization.\nDCGM_FI_DEV_GPU_TEMP, gauge, ignored: the wrapper's own.\n"
    )
    # The push URL is loopback: tests never send anything to 169.254.169.254.
    exporter = exporter_factory(
        "--preset", "digitalocean", "-f", str(extra), "--num-gpus", "8", "-c", "600000", "--push-prometheus-url", url
    )  # fmt: skip
    wait_until(lambda: len(bodies) >= 1)
    families = {f.name: f for f in text_string_to_metric_families(bodies[0].decode())}
    expected = (WRAPPER_GPU_FIELDS - BLANK_ON_SXM) | WRAPPER_SWITCH_FIELDS | WRAPPER_LINK_FIELDS | WRAPPER_COUNTS
    assert set(families) == expected | {"DCGM_FI_DEV_GPU_UTIL"}  # -f added its new field, nothing else
    assert families["DCGM_FI_DEV_GPU_TEMP"].documentation == "GPU temperature (in C)."  # the wrapper's line wins
    for name in WRAPPER_SWITCH_FIELDS:  # HGX H100: four NVSwitches
        labels = [s.labels for s in families[name].samples]
        assert [lb["nvswitch"] for lb in labels] == ["0", "1", "2", "3"], name
        assert all(set(lb) == {"nvswitch", "Hostname", "DCGM_FI_DRIVER_VERSION"} for lb in labels)
    links = [s.labels for s in families["DCGM_FI_DEV_NVSWITCH_LINK_STATUS"].samples]
    assert len(links) == 8 * 18 and all(
        set(lb) == {"nvlink", "nvswitch", "Hostname", "DCGM_FI_DRIVER_VERSION"} for lb in links
    )
    assert {s.value for s in families["DCGM_FI_DEV_NVSWITCH_LINK_STATUS"].samples} == {2}  # ACTIVE
    xids = families["DCGM_EXP_XID_ERRORS_COUNT"].samples
    assert {s.labels["window_size_in_ms"] for s in xids} == {"20000"}  # the wrapper's window: its push interval
    assert all(s.timestamp is not None for f in families.values() for s in f.samples)
    page = {f.name for f in text_string_to_metric_families(exporter.get("/metrics")[1].decode())}
    assert page - set(families) == {n for n in page if n.startswith("otel_fakegpu_")} != set()  # only on /metrics

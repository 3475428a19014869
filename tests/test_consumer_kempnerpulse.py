"""kempnerpulse (PyPI, the version pinned in pyproject's test extra) reads the running exporter as it reads
dcgm-exporter: its own command line, non-interactively (``--backend prometheus --export all --once``), against a
real exporter process on a free loopback port whose simulated GPUs run a training job and an idle one.

Its CSV export has no column for some of the fields it reads (remapped rows, XIDs, framebuffer free/reserved),
so the same live /metrics page is also read through its own reader and translator (``load_source``,
``parse_prometheus_records``, ``make_translator``), as its CLI does, to see a value for every field it reads.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from kempnerpulse.reader import BackendKind
from kempnerpulse.reader.prometheus import load_source, parse_prometheus_records
from kempnerpulse.translate import make_translator
from kempnerpulse.translate.mapping import SOURCE_FIELD_MAP

from otel_fakegpu.sim import SKUS
from tests.conftest import ExporterProcess, run_cli
from tests.polling import cycles_total, wait_until

# The 32 source fields kempnerpulse 0.5.0 reads (kempnerpulse/translate/mapping.py, SOURCE_FIELD_MAP).
KEMPNERPULSE_FIELDS = (
    "DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_PROF_SM_OCCUPANCY", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_HMMA_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_IMMA_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_DFMA_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_DMMA_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_QMMA_ACTIVE", "DCGM_FI_PROF_PIPE_FP64_ACTIVE", "DCGM_FI_PROF_PIPE_FP32_ACTIVE",
    "DCGM_FI_PROF_PIPE_FP16_ACTIVE", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_PCIE_RX_BYTES",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_RESERVED", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE",
)  # fmt: skip
# Not DCGM fields (not in dcgm_fields.h nor go-dcgm; DCGM's tensor sub-pipes are IMMA, HMMA, DFMA only), so
# neither this exporter nor dcgm-exporter can serve them; kempnerpulse leaves them blank.
NOT_DCGM_FIELDS = ("DCGM_FI_PROF_PIPE_TENSOR_DMMA_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_QMMA_ACTIVE")
DCGM_FIELDS = tuple(f for f in KEMPNERPULSE_FIELDS if f not in NOT_DCGM_FIELDS)
# dcgm-exporter's types for the running totals; everything else (449, a rate, included) is a gauge.
COUNTERS = {
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
}  # fmt: skip
TRAINING_GPUS, IDLE_GPU = (0, 1), 2
TENSOR_CLASSES = {"tensor-heavy compute", "tensor compute"}  # kempnerpulse's two tensor-core classes


def _collectors(path: Path, fields: tuple[str, ...]) -> Path:
    lines = [f"{name}, {'counter' if name in COUNTERS else 'gauge'}, read by kempnerpulse" for name in fields]
    path.write_text("# Every DCGM field kempnerpulse 0.5.0 reads\n" + "\n".join(lines) + "\n")
    return path


def _training_exporter(factory: Callable[..., ExporterProcess], sku: str, collectors: Path) -> ExporterProcess:
    """Three GPUs of ``sku``: a training job on 0 and 1, an idle workload on 2, from a scenario file."""
    scenario = collectors.with_name(f"{sku}-training.yaml")
    scenario.write_text(
        "workloads:\n"
        f"  - {{pod: trainer, namespace: ml, container: pytorch, gpus: {list(TRAINING_GPUS)}, shape: training}}\n"
        f"  - {{pod: notebook, namespace: ml, container: jupyter, gpus: [{IDLE_GPU}], shape: idle}}\n"
    )
    exporter = factory(
        "--num-gpus", "3", "--gpu-model", sku, "--seed", "7", "-c", "1000", "--update-interval", "1",
        "-f", str(collectors), "--scenario", str(scenario),
    )  # fmt: skip
    # a few updates, so the training job's rates and averages have moved
    wait_until(lambda: cycles_total(exporter) >= 3, 60, "three cycles", interval=0.2)
    return exporter


def _kempnerpulse_csv(url: str) -> dict[str, dict[str, str]]:
    """One ``kempnerpulse --export all --once`` run: its CSV row per GPU id."""
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bin_dir / "kempnerpulse"), "--backend", "prometheus", "--source", url, "--export", "all", "--once",
         "--show-all"],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": "/nonexistent"},  # no nvidia-smi of the test machine
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {row["gpu_id"]: row for row in csv.DictReader(io.StringIO(result.stdout))}


def _series_fields(body: str, gpu: int) -> set[str]:
    """Metric names with a series for GPU ``gpu`` on an exposition page."""
    return {line.split("{", 1)[0] for line in body.splitlines() if f'{{gpu="{gpu}",' in line}


def test_kempnerpulse_reads_32_fields_of_which_two_are_not_dcgm_fields(tmp_path: Path) -> None:
    """The pinned version still reads the fields this test lists; the two that DCGM lacks are refused by name."""
    assert tuple(SOURCE_FIELD_MAP) == KEMPNERPULSE_FIELDS
    refused = run_cli("-f", str(_collectors(tmp_path / "all32.csv", KEMPNERPULSE_FIELDS)), "--num-gpus", "1")
    assert refused.returncode == 2
    assert "all32.csv:8:" in refused.stderr and "DCGM_FI_PROF_PIPE_TENSOR_DMMA_ACTIVE" in refused.stderr


@pytest.mark.parametrize("sku", ["h100-sxm", "b200"])
def test_kempnerpulse_against_a_training_job(
    sku: str, tmp_path: Path, exporter_factory: Callable[..., ExporterProcess]
) -> None:
    exporter = _training_exporter(exporter_factory, sku, _collectors(tmp_path / "kp.csv", DCGM_FIELDS))
    url = exporter.base + "/metrics"
    rows = _kempnerpulse_csv(url)
    assert sorted(rows) == ["0", "1", "2"]

    # Every field it reads that this SKU has (all 30 DCGM ones on H100 and B200) gets a value in its records.
    body = load_source(url)
    records = {r.entity_gpu_index: r for r in make_translator(BackendKind.PROMETHEUS).translate_tick(
        parse_prometheus_records(body))}  # fmt: skip
    for gpu in (*TRAINING_GPUS, IDLE_GPU):
        assert _series_fields(body, gpu) >= set(DCGM_FIELDS), f"{sku} GPU {gpu} lacks a field"
        for field in KEMPNERPULSE_FIELDS:
            canonical = getattr(records[gpu], SOURCE_FIELD_MAP[field][0])
            assert (canonical is None) == (field in NOT_DCGM_FIELDS), f"{sku} GPU {gpu}: {field} = {canonical}"

    # NVLink throughput (449, read as a rate in MB/s) within the SKU's NVLink bandwidth, TX+RX; none when idle.
    bound_gbps = SKUS[sku].nvlink_bytes_per_s / 1e9
    for gpu in TRAINING_GPUS:
        row = rows[str(gpu)]
        assert 0 < float(row["nvlink_gbps"]) <= bound_gbps, f"{sku} GPU {gpu}: {row['nvlink_gbps']} GB/s"
        assert row["status"] in TENSOR_CLASSES, f"{sku} GPU {gpu} training read as {row['status']!r}"
        # The sub-pipes add up to the tensor pipe; a BF16 training mix is mostly HMMA.
        pipes = [float(row[c]) for c in ("tc_hmma_pct", "tc_imma_pct", "tc_dfma_pct")]
        assert sum(pipes) == pytest.approx(float(row["tensor_active_pct"]), abs=0.05)
        assert pipes[0] > pipes[1] + pipes[2]
        assert row["tc_dmma_pct"] == row["tc_qmma_pct"] == ""
    idle = rows[str(IDLE_GPU)]
    assert float(idle["nvlink_gbps"]) == 0.0
    assert idle["status"] == "idle"

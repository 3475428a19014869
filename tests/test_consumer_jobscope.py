"""jobscope (PyPI, the version pinned in pyproject's test extra) reports a Slurm job's DCGM columns from a real
Prometheus scraping the exporter: it finds the job's GPUs through ``nvidia_gpu_jobId`` (``--jobstats-series``,
jobs from ``--hpc-job-mapping-dir``) by uuid, then reads each ``DCGM_FI_*`` series by ``UUID``.

Slurm does not run here: a ``sacct`` stand-in script, on the PATH of the jobscope process only, answers its
bulk query for the one job (its GPUs, start time, running). Everything else is the real thing.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ExporterProcess
from tests.polling import wait_until
from tests.prometheus_server import PrometheusServer, static_scrape

JOB, JOB_GPUS, OTHER_JOB_GPU = "31337", ("1", "2"), "3"
# jobscope 0.1.1's catalog (jobscope/dcgm.py, METRICS): column header -> DCGM field. Its 28th column, DUTY%,
# is nvidia_gpu_duty_cycle of the jobstats GPU exporter itself, not a DCGM field: not served here.
DCGM_COLUMNS = {
    "SM_ACT%": "DCGM_FI_PROF_SM_ACTIVE", "OCC%": "DCGM_FI_PROF_SM_OCCUPANCY",
    "TENSOR%": "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DRAM%": "DCGM_FI_PROF_DRAM_ACTIVE",
    "POWER_W": "DCGM_FI_DEV_POWER_USAGE", "ENGINE%": "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "HMMA%": "DCGM_FI_PROF_PIPE_TENSOR_HMMA_ACTIVE", "IMMA%": "DCGM_FI_PROF_PIPE_TENSOR_IMMA_ACTIVE",
    "DFMA%": "DCGM_FI_PROF_PIPE_TENSOR_DFMA_ACTIVE", "FP16%": "DCGM_FI_PROF_PIPE_FP16_ACTIVE",
    "FP32%": "DCGM_FI_PROF_PIPE_FP32_ACTIVE", "FP64%": "DCGM_FI_PROF_PIPE_FP64_ACTIVE",
    "MEMCP%": "DCGM_FI_DEV_MEM_COPY_UTIL", "PWRmax_W": "DCGM_FI_DEV_POWER_USAGE",
    "ENERGY_kWh": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "FB_USED_GB": "DCGM_FI_DEV_FB_USED",
    "FB_FREE_GB": "DCGM_FI_DEV_FB_FREE", "FB_RSVD_GB": "DCGM_FI_DEV_FB_RESERVED",
    "PCIE_TX_MBs": "DCGM_FI_PROF_PCIE_TX_BYTES", "PCIE_RX_MBs": "DCGM_FI_PROF_PCIE_RX_BYTES",
    "NVLINK_MBs": "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "SMCLK_MHz": "DCGM_FI_DEV_SM_CLOCK",
    "MEMCLK_MHz": "DCGM_FI_DEV_MEM_CLOCK", "TEMP_C": "DCGM_FI_DEV_GPU_TEMP", "MEMTEMP_C": "DCGM_FI_DEV_MEMORY_TEMP",
    "ENC%": "DCGM_FI_DEV_ENC_UTIL", "DEC%": "DCGM_FI_DEV_DEC_UTIL",
}  # fmt: skip
SACCT = """#!/bin/sh
# sacct stand-in: jobscope's bulk query for job {job} (-j {job} ... -o JobID,...,AdminComment), nothing else.
case " $* " in
  *" -j {job} "*) echo '{job}|RUNNING|train|00:01:00|1|billing=16,cpu=16,gres/gpu={gpus},mem=64G,node=1|{start}|Unknown|{job}||alice|' ;;
  *) echo "sacct stand-in: unexpected query: $*" >&2; exit 1 ;;
esac
"""


def _sacct_dir(tmp_path: Path, start: float) -> Path:
    bin_dir = tmp_path / "slurm-bin"
    bin_dir.mkdir()
    sacct = bin_dir / "sacct"
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start))  # local time of jobscope's TZ (UTC)
    sacct.write_text(SACCT.format(job=JOB, gpus=len(JOB_GPUS), start=started))
    sacct.chmod(0o755)
    return bin_dir


def _jobscope(args: list[str], prometheus_url: str, sacct_dir: Path, home: Path) -> str:
    bin_dir = Path(sys.executable).parent
    env = {
        "PATH": f"{sacct_dir}:{bin_dir}:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),  # no user config file
        "USER": "alice",
        "JOBSCOPE_PROM_URL": prometheus_url,
        "TZ": "UTC0",  # sacct prints local time; the stand-in's is UTC
    }
    result = subprocess.run(
        [str(bin_dir / "jobscope"), *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_jobscope_fills_the_dcgm_columns_of_a_slurm_job(
    tmp_path: Path,
    prometheus: Callable[..., PrometheusServer],
    exporter_factory: Callable[..., ExporterProcess],
) -> None:
    jobs = tmp_path / "jobs"  # the HPC job mapping directory: a file per GPU index naming its job
    jobs.mkdir()
    for gpu in JOB_GPUS:
        (jobs / gpu).write_text(f"{JOB}\n")
    (jobs / OTHER_JOB_GPU).write_text("4242\n")
    collectors = tmp_path / "jobscope.csv"
    fields = dict.fromkeys(DCGM_COLUMNS.values())
    collectors.write_text("".join(f"{name}, gauge, read by jobscope\n" for name in fields))
    started = time.time() - 2
    exporter = exporter_factory(
        "--num-gpus", "4", "--gpu-profiles", "stable", "--seed", "7", "-c", "1000", "--update-interval", "1",
        "-f", str(collectors), "--hpc-job-mapping-dir", str(jobs), "--jobstats-series",
    )  # fmt: skip
    server = prometheus(static_scrape("gpu", exporter.port))
    stored = f"count_over_time(nvidia_gpu_jobId{{jobid='{JOB}'}}[1m]) >= 3"
    wait_until(
        lambda: len(server.query(stored)) >= len(JOB_GPUS), 90, "three scrapes of the job's GPUs stored", interval=0.5
    )

    out = _jobscope(["dcgm", "--ext", "--csv", JOB], server.base, _sacct_dir(tmp_path, started), tmp_path)
    table = out[out.index("JOBID,") :]  # after the context lines (label, value)
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [row["GPU"] for row in rows] == list(JOB_GPUS), out  # the job's GPUs, found by uuid; not GPU 3
    for row in rows:
        assert row["JOBID"] == JOB and row["STATE"] == "RUNNING"
        empty = [header for header in DCGM_COLUMNS if row[header] in ("", "-")]
        assert not empty, f"GPU {row['GPU']}: no value for {empty}"
        assert row["DUTY%"] == "-"  # the jobstats exporter's own duty-cycle series, not a DCGM field
        assert 0 < float(row["POWER_W"]) <= float(row["PWRmax_W"]) <= 700
        assert 0 < float(row["SM_ACT%"]) <= 100 and float(row["ENERGY_kWh"]) >= 0

"""--jobstats-series: the jobstats GPU exporter's nvidia_gpu_jobId for the attributed HPC jobs, with its labels."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from otel_fakegpu.attribution import AttributionStage, HpcJobSource, LabelStyle
from otel_fakegpu.attribution.devices import mig_uuid
from otel_fakegpu.fields import default_collectors_path, load_collectors
from otel_fakegpu.outputs import PrometheusTextRenderer
from otel_fakegpu.telemetry import CycleStats, LabelScheme, TelemetryPipeline, default_resource
from tests.conftest import ExporterProcess, build_stack
from tests.polling import wait_until
from tests.prometheus_server import PrometheusServer, static_scrape


def _job_lines(body: bytes) -> list[str]:
    return [line for line in body.decode().splitlines() if line.startswith("nvidia_gpu_job")]


def test_job_id_series_per_gpu_and_mig_instance(tmp_path: Path) -> None:
    (tmp_path / "0").write_text("1001\n")
    (tmp_path / "1").write_text("12_3\n")  # an array task id is not a number: the exporter skips it
    stack = build_stack(3, ["static"], mig="2:3g.40gb*2")
    first = sorted(e.instance_id for e in stack.engine.read_latest([54]).instances.values())[0]
    (tmp_path / f"2.{first}").write_text("2002\n")
    collectors = load_collectors(default_collectors_path())
    pipeline = TelemetryPipeline(
        collectors, LabelScheme("h", collectors.labels), default_resource("s", "h"), CycleStats(),
        lambda: stack.engine.reads_total, attribution=AttributionStage(HpcJobSource(tmp_path), LabelStyle(), 1.0),
        jobstats=True,
    )  # fmt: skip
    snapshot = pipeline.read(stack.engine)
    body, _ = PrometheusTextRenderer().render(pipeline.collect(snapshot))
    uuid0, uuid2 = str(snapshot.column(54)[0]), str(snapshot.column(54)[-1])
    lines = _job_lines(body)
    assert lines == [
        f'nvidia_gpu_jobId{{ordinal="0",minor_number="0",uuid="{uuid0}",name="NVIDIA H100 80GB HBM3",'
        f'GPU_I_ID="",jobid="1001",userid=""}} 1001',
        f'nvidia_gpu_jobId{{ordinal="2",minor_number="2",uuid="{mig_uuid(uuid2, first)}",'
        f'name="NVIDIA H100 80GB HBM3 MIG 3g.40gb",GPU_I_ID="{first}",jobid="2002",userid=""}} 2002',
    ]
    assert "# TYPE nvidia_gpu_jobId gauge" in body.decode()
    assert "nvidia_gpu_jobUid{" not in body.decode()  # no uid known: left out, as the exporter does


def test_the_exporter_serves_job_series_only_when_asked(
    tmp_path: Path, exporter_factory: Callable[..., ExporterProcess]
) -> None:
    (tmp_path / "1").write_text("4242\n")
    plain = exporter_factory("--hpc-job-mapping-dir", str(tmp_path), "--num-gpus", "2")
    assert not _job_lines(plain.get("/metrics")[1])
    assert re.search(r'DCGM_FI_DEV_GPU_TEMP\{gpu="1",[^}]*hpc_job="4242"\}', plain.get("/metrics")[1].decode())
    jobstats = exporter_factory("--hpc-job-mapping-dir", str(tmp_path), "--num-gpus", "2", "--jobstats-series")
    lines = _job_lines(jobstats.get("/metrics")[1])
    assert len(lines) == 1 and 'ordinal="1"' in lines[0] and 'jobid="4242"' in lines[0]


def test_prometheus_joins_dcgm_series_to_a_job_through_nvidia_gpu_job_id(
    tmp_path: Path,
    prometheus: Callable[..., PrometheusServer],
    exporter_factory: Callable[..., ExporterProcess],
) -> None:
    """What Slurm tools do: find the job's GPUs by uuid in nvidia_gpu_jobId, then read their DCGM series."""
    (tmp_path / "1").write_text("31337\n")
    exporter = exporter_factory(
        "--hpc-job-mapping-dir", str(tmp_path), "--num-gpus", "3", "--jobstats-series", "-c", "1000",
        "--gpu-profiles", "stable",
    )  # fmt: skip
    server = prometheus(static_scrape("gpu", exporter.port))
    # nvidia_gpu_jobId names the GPU by lower-case uuid; as a 0/1 mask it carries jobid onto the DCGM series.
    join = (
        "DCGM_FI_DEV_GPU_UTIL * on(UUID) group_left(jobid) "
        '(label_replace(nvidia_gpu_jobId == 31337, "UUID", "$1", "uuid", "(.*)") * 0 + 1)'
    )
    result = wait_until(lambda: server.query(join), 90, "the job's GPUs in Prometheus", interval=0.5)
    assert [(r["metric"]["gpu"], r["metric"]["jobid"]) for r in result] == [("1", "31337")]

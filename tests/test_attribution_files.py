"""koordinator's pod list file and dcgm-exporter's HPC job directory: re-read when they change, a malformed
version keeps the last good map and is reported once."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from otel_fakegpu.attribution import HpcJobSource, PodListSource
from tests.attribution_helpers import attributed_stack, series, uuids

TEMP = "DCGM_FI_DEV_GPU_TEMP"


def _rewrite(path: Path, text: str) -> None:
    """Rewrite and move the mtime on, so even a coarse-grained file system sees a change."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def _pods_on(body: bytes, gpu: str) -> list[str]:
    return [
        line.split('pod="')[1].split('"')[0] for line in series(body, TEMP) if f'gpu="{gpu}"' in line and "pod=" in line
    ]


def test_pod_list_file_rewritten_between_cycles_and_malformed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "podlist.json"
    _rewrite(path, "[]")
    stack = attributed_stack(PodListSource(path))
    ids = uuids(stack)
    _rewrite(path, json.dumps([
        {"name": "a", "namespace": "default", "container": "c", "gpu_list": [ids[0], "nvidia1"]},
        {"name": "b", "namespace": "default", "container": "c", "gpu_list": [3]},  # a minor number
    ]))  # fmt: skip
    body = stack.cycle()
    assert (_pods_on(body, "0"), _pods_on(body, "1"), _pods_on(body, "2"), _pods_on(body, "3")) == (
        ["a"],
        ["a"],
        [],
        ["b"],
    )
    _rewrite(path, json.dumps([{"name": "z", "namespace": "default", "container": "c", "gpu_list": [ids[2]]}]))
    body = stack.cycle()
    assert (_pods_on(body, "0"), _pods_on(body, "2")) == ([], ["z"])
    with caplog.at_level(logging.WARNING):
        _rewrite(path, '[{"name": "z", "namespace": "default",\n "container": "c", "gpu_list": [')
        for _ in range(3):
            assert _pods_on(stack.cycle(), "2") == ["z"]  # last good map kept
    reports = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(reports) == 1 and f"{path}:2:" in reports[0], reports  # once, with FILE:LINE and reason
    stage = stack.pipeline._attribution
    assert stage is not None and stage.status.errors_total == 3
    _rewrite(path, json.dumps([{"name": "ok", "namespace": "default", "container": "c", "gpu_list": [ids[1]]}]))
    assert _pods_on(stack.cycle(), "1") == ["ok"] and stage.status.last_error is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"name": "a"}', "expected a JSON array"),
        ('[{"name": "a", "namespace": "n", "container": "c"}]', "'gpu_list' must be a list"),
        ('[{"name": 1, "namespace": "n", "container": "c", "gpu_list": []}]', "'name' must be a string"),
    ],
)
def test_pod_list_file_shape_errors_name_the_entry(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "podlist.json"
    path.write_text(text)
    stack = attributed_stack(PodListSource(path))
    stack.cycle()
    stage = stack.pipeline._attribution
    assert (
        stage is not None and reason in (stage.status.last_error or "") and str(path) in (stage.status.last_error or "")
    )


def test_hpc_job_dir_repeats_series_per_job_and_follows_rewrites(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "0").write_text("1001\n1002\n")
    (jobs / "2").write_text("2001\n")
    (jobs / "README").write_text("not a GPU file\n")
    stack = attributed_stack(HpcJobSource(jobs))
    lines = series(stack.cycle(), TEMP)
    on = {gpu: sorted(line.split('hpc_job="')[1].split('"')[0] for line in lines if f'gpu="{gpu}"' in line and "hpc_job" in line) for gpu in "0123"}  # fmt: skip
    assert on == {"0": ["1001", "1002"], "1": [], "2": ["2001"], "3": []}
    assert len(lines) == 5  # GPU 0 twice, 1, 2, 3
    assert any(
        line.endswith('DCGM_FI_DRIVER_VERSION="550.54.15",hpc_job="2001"} ' + line.split("} ")[1]) for line in lines
    )
    _rewrite(jobs / "0", "1003\n")
    (jobs / "2").unlink()
    (jobs / "3").write_text("3001\n")
    lines = series(stack.cycle(), TEMP)
    assert sorted(line.split('hpc_job="')[1].split('"')[0] for line in lines if "hpc_job" in line) == ["1003", "3001"]
    (jobs / "1").write_bytes(b"\xff\xfe\x00bad")  # not text: the whole directory's last good map stays
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            lines = series(stack.cycle(), TEMP)
            assert sorted(line.split('hpc_job="')[1].split('"')[0] for line in lines if "hpc_job" in line) == [
                "1003",
                "3001",
            ]
    assert len([r for r in caplog.records if "failed" in r.getMessage() and "/jobs/1" in r.getMessage()]) == 1


def test_hpc_job_files_for_mig_instances(tmp_path: Path) -> None:
    """``<gpu>.<GPU instance id>`` files label that instance's series (dcgm-exporter's MIG convention)."""
    stack = attributed_stack(HpcJobSource(tmp_path), count=2, mig="1:3g.40gb*2")
    first, second = sorted(e.instance_id for e in stack.engine.read_latest([54]).instances.values())
    (tmp_path / f"1.{second}").write_text("777\n")
    (tmp_path / "0").write_text("100\n")
    lines = series(stack.cycle(), "DCGM_FI_DEV_FB_USED")
    jobs = {(line.split('gpu="')[1].split('"')[0], line.split('GPU_I_ID="')[1].split('"')[0] if "GPU_I_ID" in line else None): line.split('hpc_job="')[1].split('"')[0] if "hpc_job" in line else None for line in lines}  # fmt: skip
    assert jobs == {("0", None): "100", ("1", str(first)): None, ("1", str(second)): "777"}

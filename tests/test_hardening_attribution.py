"""Attribution inputs past their bounds (docs/security.md): a pod list or job file that is a device, a FIFO,
too large, too deep, with too many workloads on one GPU or names too long is a failed fetch, reported on the
stage's status (what /health shows), the last good map kept, and the failure kept until the file changes."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from otel_fakegpu.attribution import HpcJobSource, KubeletSource, PodListSource
from otel_fakegpu.attribution.limits import MAX_JOB_FILE_BYTES, MAX_POD_LIST_BYTES, MAX_WORKLOADS_PER_DEVICE
from otel_fakegpu.attribution.stage import AttributionStage
from tests.attribution_helpers import answer, attributed_stack, pod, running_kubelet, series, uuids
from tests.conftest import Stack

TEMP = "DCGM_FI_DEV_GPU_TEMP"
LIMIT_S = 3.0  # a refused input answers at once; before the bounds these read gigabytes or hung


def _stage(stack: Stack) -> AttributionStage:
    stage = stack.pipeline._attribution
    assert stage is not None
    return stage


def _replace(path: Path, make: object) -> None:
    """Swap ``path`` for something else (a callable creating it at the path) and move its mtime on."""
    tmp = path.with_name(path.name + ".new")
    if tmp.exists() or tmp.is_symlink():
        tmp.unlink()
    make(tmp)  # type: ignore[operator]
    os.replace(tmp, path)


def _pod_list(gpu: str, pods: int = 1, name: str = "p") -> str:
    return json.dumps(
        [{"name": f"{name}{i}", "namespace": "n", "container": "c", "gpu_list": [gpu]} for i in range(pods)]
    )


def _sparse(path: Path, size: int) -> None:
    path.touch()
    os.truncate(path, size)


BAD_POD_LISTS = {
    "dev-zero-symlink": lambda p: os.symlink("/dev/zero", p),
    "fifo": os.mkfifo,
    "oversized": lambda p: p.write_text(" " * (MAX_POD_LIST_BYTES + 1) + "[]"),
    "sparse-2G": lambda p: _sparse(p, 2 << 30),
    "nested": lambda p: p.write_text("[" * 200_000 + "]" * 200_000),
    "too-many-pods-on-a-gpu": lambda p: p.write_text(_pod_list("nvidia0", MAX_WORKLOADS_PER_DEVICE + 1)),
    "long-name": lambda p: p.write_text(_pod_list("nvidia0", 1, "x" * 60_000)),
}


@pytest.mark.parametrize("kind", sorted(BAD_POD_LISTS))
def test_a_bad_pod_list_is_a_reported_failure_and_the_map_stays(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "podlist.json"
    path.write_text(_pod_list("nvidia1"))
    stack = attributed_stack(PodListSource(path))
    stage = _stage(stack)
    assert len([line for line in series(stack.cycle(), TEMP) if 'pod="p0"' in line]) == 1
    _replace(path, BAD_POD_LISTS[kind])
    for _ in range(3):  # the failure stays reported while the file is bad (a RecursionError once did not)
        started = time.monotonic()
        body = stack.cycle()
        assert time.monotonic() - started < LIMIT_S, kind
        assert len([line for line in series(body, TEMP) if 'pod="p0"' in line]) == 1  # last good map kept
        assert stage.status.last_error is not None and stage.status.as_dict(time.time())["state"] == "failing"
    assert len(stage.status.last_error or "") < 400, stage.status.last_error  # one short line, not the input
    _replace(path, lambda p: p.write_text(_pod_list("nvidia2", name="ok")))
    assert any('pod="ok0"' in line for line in series(stack.cycle(), TEMP))
    assert stage.status.last_error is None


def test_a_bad_pod_list_is_reported_once_and_not_answered_again_while_broken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "podlist.json"
    path.write_text(_pod_list("nvidia1"))
    stack = attributed_stack(PodListSource(path))
    stack.cycle()
    with caplog.at_level(logging.WARNING):
        _replace(path, BAD_POD_LISTS["nested"])
        for _ in range(3):
            stack.cycle()
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "answers again" in m], messages
    assert len([m for m in messages if "failed" in m and "nested" in m]) == 1, messages


BAD_JOB_FILES = {
    "dev-zero-symlink": lambda p: os.symlink("/dev/zero", p),
    "fifo": os.mkfifo,
    "sparse-2G": lambda p: _sparse(p, 2 << 30),
    "oversized": lambda p: p.write_text("1\n" * (MAX_JOB_FILE_BYTES // 2 + 1)),
    "20000-jobs": lambda p: p.write_text("".join(f"{i}\n" for i in range(20_000))),
    "long-job-id": lambda p: p.write_text("j" * 5000 + "\n"),
}


@pytest.mark.parametrize("kind", sorted(BAD_JOB_FILES))
def test_a_bad_job_file_never_multiplies_series(tmp_path: Path, kind: str) -> None:
    (tmp_path / "1").write_text("7\n")
    stack = attributed_stack(HpcJobSource(tmp_path))
    stage = _stage(stack)
    assert any('hpc_job="7"' in line for line in series(stack.cycle(), TEMP))
    BAD_JOB_FILES[kind](tmp_path / "3")
    started = time.monotonic()
    body = stack.cycle()
    assert time.monotonic() - started < LIMIT_S
    lines = series(body, TEMP)
    assert len(lines) == 4 and any('hpc_job="7"' in line for line in lines), len(lines)  # one series a GPU
    if kind in ("dev-zero-symlink", "fifo"):  # not a regular file: not a GPU file at all (as dcgm-exporter)
        assert stage.status.last_error is None
    else:
        assert stage.status.last_error is not None and "/3" in stage.status.last_error


def test_workloads_per_device_bound_holds_when_one_gpu_is_named_several_ways(tmp_path: Path) -> None:
    """Each form names GPU 0 under the bound, together over it: the cycle's series stay bounded."""
    path = tmp_path / "podlist.json"
    path.write_text("[]")
    stack = attributed_stack(PodListSource(path))
    entries = [
        {"name": f"{form}{i}", "namespace": "n", "container": "c", "gpu_list": [gpu]}
        for form, gpu in (("a", "nvidia0"), ("b", uuids(stack)[0]))
        for i in range(MAX_WORKLOADS_PER_DEVICE)
    ]
    _replace(path, lambda p: p.write_text(json.dumps(entries)))
    lines = [line for line in series(stack.cycle(), TEMP) if 'gpu="0"' in line]
    assert len(lines) == MAX_WORKLOADS_PER_DEVICE


@pytest.mark.parametrize("where", ["pod", "device"])
def test_a_kubelet_answer_with_a_huge_name_is_a_failed_fetch(where: str) -> None:
    long = "x" * 60_000
    with running_kubelet(answer()) as kubelet:
        stack = attributed_stack(KubeletSource(str(kubelet.socket), "device-name"))
        stage = _stage(stack)
        kubelet.kubelet.set_pods(answer(pod("p", "n", {"c": [("nvidia.com/gpu", ["nvidia1"])]})))
        assert any('pod="p"' in line for line in series(stack.cycle(), TEMP))
        pods = {"pod": pod(long, "n", {"c": [("nvidia.com/gpu", ["nvidia1"])]}),
                "device": pod("q", "n", {"c": [("nvidia.com/gpu", ["nvidia1::" + long])]})}  # fmt: skip
        kubelet.kubelet.set_pods(answer(pods[where]))
        lines = series(stack.cycle(), TEMP)
        assert any('pod="p"' in line for line in lines) and not any(long in line for line in lines)
        assert stage.status.last_error is not None and len(stage.status.last_error) < 400


def test_a_kubelet_answer_with_too_many_workloads_on_a_gpu_is_refused_whole() -> None:
    """The stage applies the bound to every source: the kubelet's answer is refused, the last good map kept."""
    with running_kubelet(answer(pod("p", "n", {"c": [("nvidia.com/gpu", ["nvidia1"])]}))) as kubelet:
        stack = attributed_stack(KubeletSource(str(kubelet.socket), "device-name"))
        stage = _stage(stack)
        assert any('pod="p"' in line for line in series(stack.cycle(), TEMP))
        crowd = [
            pod(f"q{i}", "n", {"c": [("nvidia.com/gpu", ["nvidia2"])]}) for i in range(MAX_WORKLOADS_PER_DEVICE + 1)
        ]
        kubelet.kubelet.set_pods(answer(*crowd))
        lines = series(stack.cycle(), TEMP)
        assert len(lines) == 4 and any('pod="p"' in line for line in lines), len(lines)
        assert "at most 64 per device" in (stage.status.last_error or "")

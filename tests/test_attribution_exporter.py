"""The running exporter with -k against the fake kubelet (run as a user runs it): scrapes never call the
kubelet, /health shows the map's age, and a real Prometheus answers the autoscaler's per-pod query."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.attribution_helpers import answer, pod, running_kubelet
from tests.conftest import ExporterProcess, run_cli
from tests.polling import wait_until
from tests.prometheus_server import PrometheusServer, static_scrape

AUTOSCALER_QUERY = 'avg by (namespace, pod) (DCGM_FI_DEV_GPU_UTIL{namespace="default"})'


def _uuids(exporter: ExporterProcess) -> list[str]:
    body = exporter.get("/metrics")[1].decode()
    found = dict(re.findall(r'DCGM_FI_DEV_GPU_TEMP\{gpu="(\d+)",UUID="([^"]+)"', body))
    return [found[str(i)] for i in range(len(found))]


def test_scrapes_never_call_the_kubelet_and_health_reports_the_map(
    exporter_factory: Callable[..., ExporterProcess],
) -> None:
    with running_kubelet(answer(pod("p", "default", {"c": [("nvidia.com/gpu", ["nvidia0"])]}))) as kl:
        exporter = exporter_factory(
            "-k", "--pod-resources-kubelet-socket", str(kl.socket), "--kubernetes-gpu-id-type", "device-name",
            "--num-gpus", "2", "-c", "600000",
        )  # fmt: skip
        assert kl.kubelet.list_calls == 1  # the first cycle, before the port opened
        results: list[int] = []

        def scrape() -> None:
            results.append(exporter.get("/metrics")[0])

        threads = [threading.Thread(target=scrape) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert results.count(200) == 100
        assert kl.kubelet.list_calls == 1  # 100 scrapes, no kubelet call
        status, body, _ = exporter.get("/health")
        attribution = json.loads(body)["attribution"]
        assert status == 200 and attribution["source"] == "kubelet" and attribution["state"] == "ok"
        assert attribution["fetches_total"] == 1 and attribution["workloads"] == 1
        assert attribution["age_seconds"] is not None and attribution["attributed_entities"] == 1
        text = exporter.get("/metrics")[1].decode()
        assert re.search(r'DCGM_FI_DEV_GPU_TEMP\{gpu="0",[^}]*,container="c",namespace="default",pod="p"\}', text)
        assert "otel_fakegpu_attribution_age_seconds " in text
        assert "otel_fakegpu_attribution_errors_total 0\n" in text


def test_list_calls_equal_cycles_in_the_running_exporter(exporter_factory: Callable[..., ExporterProcess]) -> None:
    """One List per cycle: the fetch for the next cycle runs a timeout (here 0.25 s) ahead of it, so between
    cycles the kubelet has seen the cycles so far, plus at most the next one's call; never more."""
    with running_kubelet(answer()) as kl:
        exporter = exporter_factory("-k", "--pod-resources-kubelet-socket", str(kl.socket), "-c", "1000")
        agreed = 0

        def agreed_three_times() -> bool:
            nonlocal agreed
            health = json.loads(exporter.get("/health")[1])
            cycles, calls = health["cycles_total"], kl.kubelet.list_calls
            assert cycles <= calls <= cycles + 2, (cycles, calls)  # +2: a cycle may finish between the two reads
            if cycles >= 2 and calls == cycles == health["attribution"]["fetches_total"]:
                agreed += 1
            return agreed == 3

        wait_until(agreed_three_times, 60, "List calls = cycles = fetches, three times", interval=0.37)


@pytest.mark.slow
def test_prometheus_answers_the_autoscaler_query_with_the_pods(
    tmp_path: Path,
    prometheus: Callable[..., PrometheusServer],
    exporter_factory: Callable[..., ExporterProcess],
) -> None:
    pods_file, sock = tmp_path / "pods.json", Path(f"/tmp/otel-fakegpu-kl-{time.monotonic_ns()}.sock")
    pods_file.write_text("[]")
    kubelet = subprocess.Popen(
        [sys.executable, "-m", "otel_fakegpu.attribution.fakekubelet", "--socket", str(sock), "--pods", str(pods_file)],
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(sock.exists, 30, "the stand-in kubelet's socket", interval=0.05)
        exporter = exporter_factory(
            "-k", "--pod-resources-kubelet-socket", str(sock), "--num-gpus", "4", "-c", "1000",
            "--gpu-profiles", "stable,wave",
        )  # fmt: skip
        ids = _uuids(exporter)
        gpu = "nvidia.com/gpu"
        pods_file.write_text(json.dumps({"pod_resources": [
            {"name": "trainer-0", "namespace": "default",
             "containers": [{"name": "pytorch", "devices": [{"resource_name": gpu, "device_ids": ids[0:2]}]}]},
            {"name": "infer-0", "namespace": "default",
             "containers": [{"name": "triton", "devices": [{"resource_name": gpu, "device_ids": [ids[2]]}]}]},
            {"name": "batch", "namespace": "research",
             "containers": [{"name": "job", "devices": [{"resource_name": gpu, "device_ids": [ids[3]]}]}]},
        ]}))  # fmt: skip
        server = prometheus(static_scrape("gpu", exporter.port))

        def two_pods() -> list[dict[str, object]] | None:
            found = server.query(AUTOSCALER_QUERY)
            return found if len(found) >= 2 else None

        result = wait_until(two_pods, 90, "the autoscaler query to find two pods", interval=0.5)
        found = sorted((r["metric"]["namespace"], r["metric"]["pod"]) for r in result)  # type: ignore[index]
        assert found == [("default", "infer-0"), ("default", "trainer-0")], result
        assert all(0 <= float(r["value"][1]) <= 100 for r in result)  # type: ignore[index]
    finally:
        kubelet.terminate()
        kubelet.wait(timeout=30)
        sock.unlink(missing_ok=True)


def test_bad_attribution_options_exit_2_naming_them(tmp_path: Path) -> None:
    bad_type = run_cli("--kubernetes-gpu-id-type", "serial")
    assert bad_type.returncode == 2 and "--kubernetes-gpu-id-type='serial'" in bad_type.stderr
    both = run_cli("-k", "--hpc-job-mapping-dir", str(tmp_path))
    assert both.returncode == 2 and "--hpc-job-mapping-dir" in both.stderr and "one source" in both.stderr
    assert len(both.stderr.strip().splitlines()) == 1


def test_fake_kubelet_refuses_a_bad_pods_file(tmp_path: Path) -> None:
    bad = tmp_path / "pods.yaml"
    bad.write_text("- name: [unclosed\n")
    done = subprocess.run(
        [sys.executable, "-m", "otel_fakegpu.attribution.fakekubelet", "--socket", str(tmp_path / "s"), "--pods", str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and str(bad) in done.stderr and "Traceback" not in done.stderr


def test_old_namespace_renames_uuid_and_pod_labels(exporter_factory: Callable[..., ExporterProcess]) -> None:
    with running_kubelet(answer(pod("p", "ns", {"c": [("nvidia.com/gpu", ["nvidia1"])]}))) as kl:
        exporter = exporter_factory(
            "-k", "-o", "--pod-resources-kubelet-socket", str(kl.socket), "--kubernetes-gpu-id-type", "device-name",
            "--num-gpus", "2", "-c", "60000",
        )  # fmt: skip
        text = exporter.get("/metrics")[1].decode()
    assert re.search(
        r'DCGM_FI_DEV_GPU_TEMP\{gpu="1",uuid="GPU-[^}]*,container_name="c",pod_name="p",pod_namespace="ns"\}', text
    )
    assert re.search(r'DCGM_FI_DEV_GPU_TEMP\{gpu="0",uuid="GPU-[^"]*",[^}]*DCGM_FI_DRIVER_VERSION="[^"]*"\}', text)
    assert 'UUID="' not in text


def test_a_kubelet_slower_than_the_timeout_never_stretches_the_running_exporters_cycles(
    exporter_factory: Callable[..., ExporterProcess],
) -> None:
    with running_kubelet(answer(pod("p", "default", {"c": [("nvidia.com/gpu", ["nvidia0"])]}))) as kl:
        kl.kubelet.delay_s = 2.0
        exporter = exporter_factory(
            "-k", "--pod-resources-kubelet-socket", str(kl.socket), "--kubernetes-gpu-id-type", "device-name",
            "-c", "500", "--attribution-timeout", "100",
        )  # fmt: skip

        def six_cycles() -> dict[str, Any] | None:
            health: dict[str, Any] = json.loads(exporter.get("/health")[1])
            return health if health["cycles_total"] >= 6 else None

        health = wait_until(six_cycles, 60, "six cycles", interval=0.2)
        assert health["status"] == "healthy" and health["attribution"]["state"] == "failing"
        assert health["attribution"]["errors_total"] >= 5
        # The 100 ms timeout plus slack for a loaded machine, never the kubelet's 2 s (a cycle waiting for it is >= 2 s).
        assert max(health["recent_cycle_durations_seconds"]) < 1.2
        status, body, _ = exporter.get("/metrics")
        assert status == 200 and b"otel_fakegpu_attribution_errors_total" in body
        warnings = [line for line in exporter.stderr_text().splitlines() if "workload attribution" in line]
        assert len(warnings) == 1, warnings  # once per outage, not once per cycle


def test_sources_from_dcgm_exporters_environment_variables(
    tmp_path: Path, exporter_factory: Callable[..., ExporterProcess]
) -> None:
    pods = tmp_path / "podlist.json"
    pods.write_text(json.dumps([{"name": "k", "namespace": "koord", "container": "c", "gpu_list": [1]}]))
    exporter = exporter_factory("--num-gpus", "2", env={"DCGM_EXPORTER_POD_LIST_FILE": str(pods)})
    assert re.search(r'gpu="1",[^}]*container="c",namespace="koord",pod="k"\}', exporter.get("/metrics")[1].decode())
    assert json.loads(exporter.get("/health")[1])["attribution"]["source"] == "pod-list-file"
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "0").write_text("77\n")
    hpc = exporter_factory("--num-gpus", "2", env={"DCGM_HPC_JOB_MAPPING_DIR": str(jobs)})
    assert re.search(r'gpu="0",[^}]*hpc_job="77"\}', hpc.get("/metrics")[1].decode())

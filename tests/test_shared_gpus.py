"""Per-pod GPU_UTIL and FB_USED on shared GPUs (--kubernetes-virtual-gpus, dcgm-exporter #594): a time-sliced GPU
with three pods, in process and through a real Prometheus; the split's arithmetic; the scenario syntax."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_fakegpu.attribution import AttributionStage, KubeletSource, LabelStyle
from otel_fakegpu.config.model import config_from
from otel_fakegpu.fields import parse_collectors
from otel_fakegpu.host.stack import build_host
from otel_fakegpu.outputs import PrometheusTextRenderer
from otel_fakegpu.sim import ScenarioError
from otel_fakegpu.sim.scenario_file import parse_scenario
from otel_fakegpu.telemetry.shared_gpus import split
from tests.attribution_helpers import answer, pod, running_kubelet, series
from tests.conftest import ExporterProcess, FakeClock, build_stack
from tests.prometheus_server import JOB, PrometheusServer, static_scrape

SCENARIO = """
seed: 9
gpus:
  - {count: 1, model: h100-sxm, sharing: time-slicing, replicas: 4}
  - {count: 1, model: h100-sxm, profile: stable}
workloads:
  - {pod: infer-a, namespace: ml, container: server, gpus: [0], shape: inference, fb_mib: 12000}
  - {pod: infer-b, namespace: ml, container: server, gpus: [0], shape: constant, intensity: 0.3, fb_mib: 20000}
  - {pod: train-c, namespace: ml, container: trainer, gpus: [0], shape: training, fb_mib: 30000}
"""
COLLECTORS = "DCGM_FI_DEV_GPU_UTIL, gauge, u\nDCGM_FI_DEV_FB_USED, gauge, f\nDCGM_FI_DEV_GPU_TEMP, gauge, t\n"


def _page(tmp_path: Path, *flags: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    scenario = tmp_path / "shared.yaml"
    scenario.write_text(SCENARIO)
    clock = FakeClock()
    config = config_from(["--scenario", str(scenario), "--update-interval", "30", *flags], {"NODE_NAME": "n"})
    host = build_host(config, parse_collectors(COLLECTORS, "c.csv"), clock=clock)
    assert host.simulator is not None
    host.simulator.start()
    for _ in range(3):
        clock.advance(30)
        host.simulator.step()
    body, _ = PrometheusTextRenderer().render(host.pipeline.collect(host.pipeline.read(host.engine)))
    host.pipeline.shutdown()
    families = text_string_to_metric_families(body.decode())
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in families if f.name.startswith("DCGM")}


def test_three_pods_on_a_time_sliced_gpu_add_up_to_the_device(tmp_path: Path) -> None:
    page = _page(tmp_path, "--kubernetes-virtual-gpus")
    for name in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"):
        gpu0 = [(labels, value) for labels, value in page[name] if labels["gpu"] == "0"]
        device = [value for labels, value in gpu0 if "pod" not in labels]
        pods = {labels["pod"]: (labels, value) for labels, value in gpu0 if "pod" in labels}
        assert len(device) == 1 and sorted(pods) == ["infer-a", "infer-b", "train-c"], name
        assert sum(value for _, value in pods.values()) == device[0], name  # exactly: largest remainder
        assert [pods[p][0]["vgpu"] for p in ("infer-a", "infer-b", "train-c")] == ["0", "1", "2"]
        assert all(labels["pod_uid"] == "" for labels, _ in pods.values())  # always on per-pod series
    fb = {labels.get("pod"): value for labels, value in page["DCGM_FI_DEV_FB_USED"] if labels["gpu"] == "0"}
    assert fb["infer-a"] < fb["infer-b"] < fb["train-c"]  # each pod's share follows its own footprint
    util = {labels.get("pod"): value for labels, value in page["DCGM_FI_DEV_GPU_UTIL"] if labels["gpu"] == "0"}
    assert util["train-c"] > util["infer-b"]  # a full training job outweighs a 30 % constant load
    temps = [labels for labels, _ in page["DCGM_FI_DEV_GPU_TEMP"] if labels["gpu"] == "0"]
    assert len(temps) == 3 and "pod_uid" not in temps[0]  # every other field: once per pod, as before
    assert [labels for labels, _ in page["DCGM_FI_DEV_GPU_UTIL"] if labels["gpu"] == "1"] == [
        labels for labels, _ in page["DCGM_FI_DEV_GPU_TEMP"] if labels["gpu"] == "1"
    ]  # a GPU no pod uses: its one series


def test_without_the_flag_the_page_is_unchanged_per_pod_series_only(tmp_path: Path) -> None:
    page = _page(tmp_path)
    gpu0 = [labels for labels, _ in page["DCGM_FI_DEV_GPU_UTIL"] if labels["gpu"] == "0"]
    assert len(gpu0) == 3 and all("pod" in labels and "pod_uid" not in labels for labels in gpu0)


def test_split_is_exact_on_whole_numbers() -> None:
    assert split(100, [1.0, 1.0, 1.0]) == [34, 33, 33]
    assert split(7, [0.0, 0.0]) == [0, 0]
    assert sum(split(81559, [0.13, 0.5, 0.37])) == 81559
    assert split(0.5, [1.0, 3.0]) == [0.125, 0.375]


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ("{count: 1, sharing: fair}", "unknown sharing 'fair'"),
        ("{count: 1, replicas: 3}", "replicas needs sharing"),
        ("{count: 1, sharing: mps, replicas: 1}", "replicas"),
        ("{count: 1, model: a100-80gb, mig: 1g.10gb*7, sharing: mps}", "either MIG-partitioned or shared"),
    ],
)
def test_bad_sharing_is_one_line_naming_the_line(group: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=rf"^s\.yaml:3: .*{message}"):
        parse_scenario(f"seed: 1\ngpus:\n  - {group}\n", "s.yaml", 1)


def test_real_prometheus_sums_three_pods_to_the_device(
    tmp_path: Path, exporter_factory: Callable[..., ExporterProcess]
) -> None:
    scenario = tmp_path / "shared.yaml"
    scenario.write_text(SCENARIO)
    collectors = tmp_path / "c.csv"
    collectors.write_text(COLLECTORS)
    exporter = exporter_factory(
        "--scenario", str(scenario), "-f", str(collectors), "-c", "500", "--update-interval", "0.5",
        "--kubernetes-virtual-gpus", env={"NODE_NAME": "shared-node"},
    )  # fmt: skip
    prometheus = PrometheusServer(tmp_path / "prometheus", static_scrape(JOB, exporter.port))
    try:
        pods = prometheus.wait_for('count(DCGM_FI_DEV_GPU_UTIL{gpu="0", pod!=""}) == 3')
        assert pods
        for name in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"):
            # One scrape's samples: the pods' sum equals the device's series of the same scrape.
            same = prometheus.query(f'sum({name}{{gpu="0", pod!=""}}) - on() {name}{{gpu="0", pod=""}}')
            assert [float(r["value"][1]) for r in same] == [0.0], name
            vgpus = prometheus.query(f'group by (vgpu) ({name}{{gpu="0", pod!=""}})')
            assert sorted(r["metric"]["vgpu"] for r in vgpus) == ["0", "1", "2"]
    finally:
        prometheus.stop()


def test_kubelet_time_slicing_replicas_get_per_pod_values_from_the_simulated_processes(tmp_path: Path) -> None:
    """The kubelet lists GPU-<uuid>::N replicas (the device plugin's time-slicing); its pods run as the simulator's
    workloads of the same names, whose processes give each pod its share."""
    scenario = parse_scenario(SCENARIO, "s.yaml", 2)
    with running_kubelet(answer()) as kubelet:
        stage = AttributionStage(KubeletSource(str(kubelet.socket)), LabelStyle(), 2.0)
        stack = build_stack(2, ["static"], scenario=scenario, attribution=stage, flags=["--kubernetes-virtual-gpus"])
        uuid = re.findall(r'UUID="([^"]+)"', stack.cycle().decode())[0]
        pods = [pod(name, "ml", {container: [("nvidia.com/gpu", [f"{uuid}::{n}"])]})
                for n, (name, container) in enumerate([("infer-a", "server"), ("infer-b", "server"),
                                                      ("train-c", "trainer")])]  # fmt: skip
        kubelet.kubelet.set_pods(answer(*pods))
        stack.clock.advance(30)
        stack.simulator.step()
        lines = series(stack.cycle(), "DCGM_FI_DEV_FB_USED")
    gpu0 = [line for line in lines if 'gpu="0"' in line]
    device = [float(line.rsplit(" ", 1)[1]) for line in gpu0 if "pod=" not in line]
    shares = {re.search(r'pod="([^"]+)"', line).group(1): float(line.rsplit(" ", 1)[1])  # type: ignore[union-attr]
              for line in gpu0 if "pod=" in line}  # fmt: skip
    assert len(device) == 1 and sorted(shares) == ["infer-a", "infer-b", "train-c"]
    assert sum(shares.values()) == device[0] and shares["infer-a"] < shares["infer-b"] < shares["train-c"]
    vgpus = {re.search(r'pod="([^"]+)"', line).group(1): re.search(r'vgpu="(\d)"', line).group(1)  # type: ignore[union-attr]
             for line in gpu0 if "pod=" in line}  # fmt: skip
    assert vgpus == {"infer-a": "0", "infer-b": "1", "train-c": "2"}  # the kubelet's ::N

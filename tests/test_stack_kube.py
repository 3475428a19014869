"""`podman kube play` of the DaemonSet's pod template (deploy/kubernetes/daemonset.yaml, made into a Pod here: the
node's hostPath volumes pointed at temporary folders, the field the downward API would fill given a value, a host
port for the metrics port, the image the run built), with the fake kubelet (otel_fakegpu/attribution/fakekubelet.py)
serving pod-resources on the node's socket: /metrics shows its pods on their GPUs' series. What podman cannot run
(the Service, the ServiceMonitor, the API server's own checks) stays with kubernetes-validate --strict in
tests/test_kubernetes.py. Run by `make stack-test`, skipped elsewhere."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_port, http_get
from tests.stack_engine import IMAGE, PREFIX, ROOT, podman, report, skip_unless_stack, wait_for

pytestmark = skip_unless_stack
DEPLOY = ROOT / "deploy"
NODE = "kube-node"
GPU = "nvidia.com/gpu"


def pod_from_daemonset(name: str, host_paths: dict[str, Path], port: int) -> dict[str, Any]:
    daemonset = yaml.safe_load((DEPLOY / "kubernetes" / "daemonset.yaml").read_text())
    template = copy.deepcopy(daemonset["spec"]["template"])
    spec = template["spec"]
    for volume in spec["volumes"]:
        if "hostPath" in volume:
            volume["hostPath"]["path"] = str(host_paths[volume["name"]])
    for container in spec["initContainers"] + spec["containers"]:
        container["image"] = IMAGE
        for entry in container.get("env", []):
            if entry.get("valueFrom") == {"fieldRef": {"fieldPath": "spec.nodeName"}}:
                entry.pop("valueFrom")
                entry["value"] = NODE  # the node name the scheduler would fill in
        for ports in container.get("ports", []):
            ports["hostPort"] = port
    # podman 4.3 removes a run-once init container while it is still exiting and fails the play; kept instead.
    annotations = {"io.podman.annotations.init.container.type": "always"}
    metadata = {"name": name, "labels": template["metadata"]["labels"], "annotations": annotations}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def config_map(name: str) -> dict[str, Any]:
    """The ConfigMap deploy/collectors' kustomization generates (kustomize's hash suffix aside)."""
    csv = DEPLOY / "collectors" / "dcgm-fleet.csv"
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {csv.name: csv.read_text()}}


@pytest.fixture
def fake_kubelet(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """The fake kubelet on the node's pod-resources socket, answering from a pods file the test writes."""
    folder, pods = tmp_path / "pod-resources", tmp_path / "pods.json"
    folder.mkdir()
    folder.chmod(0o755)
    pods.write_text("[]")
    socket = folder / "kubelet.sock"
    command = [
        sys.executable,
        "-m",
        "otel_fakegpu.attribution.fakekubelet",
        "--socket",
        str(socket),
        "--pods",
        str(pods),
    ]
    kubelet = subprocess.Popen(command, stderr=subprocess.PIPE)
    try:
        wait_for("the fake kubelet's socket", socket.exists, timeout=30, interval=0.1)
        socket.chmod(0o666)  # the exporter runs as uid 10001; the real kubelet's socket is reached the same way
        yield folder, pods
    finally:
        kubelet.terminate()
        kubelet.wait(timeout=10)


def gpu_series(port: int) -> list[str]:
    status, body, _ = http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert status == 200
    return [line for line in body.decode().splitlines() if line.startswith("DCGM_FI_DEV_GPU_TEMP{")]


def names(kind: str) -> set[str]:
    return set(podman(kind, "ls", "--format", "{{.Name}}").stdout.split())


def label(line: str, name: str) -> str:
    return line.split(f'{name}="', 1)[1].split('"', 1)[0] if f'{name}="' in line else ""


def test_kube_play_runs_the_daemonset_pod_with_the_fake_kubelet(
    fake_kubelet: tuple[Path, Path], tmp_path: Path
) -> None:
    pod_resources, pods_file = fake_kubelet
    socket_dir = tmp_path / "dcgm"
    socket_dir.mkdir()
    port, name = free_port(), f"{PREFIX}-kube"
    (tmp_path / "queue").mkdir()
    host_paths = {"pod-resources": pod_resources, "socket-dir": socket_dir, "push-queue": tmp_path / "queue"}
    pod = pod_from_daemonset(name, host_paths, port)
    collectors = next(v["configMap"]["name"] for v in pod["spec"]["volumes"] if "configMap" in v)
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod))
    (tmp_path / "configmap.yaml").write_text(yaml.safe_dump(config_map(collectors)))
    volumes, networks = names("volume"), names("network")
    started = time.monotonic()
    try:
        podman("kube", "play", "--configmap", str(tmp_path / "configmap.yaml"), str(tmp_path / "pod.yaml"), timeout=180)
        series = wait_for("the pod's /metrics", lambda: gpu_series(port) or None, timeout=120, interval=0.5)
        ready_s = time.monotonic() - started
        uuids = sorted(label(line, "UUID") for line in series)
        assigned = {"trainer-0": uuids[0:2], "infer-0": [uuids[2]]}
        pods_file.write_text(json.dumps([
            {"name": pod_name, "namespace": "ml", "containers": [{"name": "main", "devices": [{"resource_name": GPU, "device_ids": ids}]}]}
            for pod_name, ids in assigned.items()
        ]))  # fmt: skip

        def attributed() -> dict[str, str] | None:
            found = {label(line, "UUID"): label(line, "pod") for line in gpu_series(port)}
            return found if all(found.get(u) == p for p, ids in assigned.items() for u in ids) else None

        found = wait_for("the fake kubelet's pods on their GPUs", attributed, timeout=120, interval=1)
        assert sum(1 for p in found.values() if p) == 3, found
        assert all(f'Hostname="{NODE}"' in line for line in series)
        uid = podman("exec", f"{name}-exporter", "python3", "-c", "import os; print(os.getuid())").stdout.strip()
        assert uid == "10001", uid
        assert (socket_dir / "metrics.sock").is_socket()  # on the node's socket folder, for node-local readers
        report(
            "podman kube play of the DaemonSet pod",
            f"/metrics in {ready_s:.1f} s; {len(series)} GPUs, 3 attributed to the fake kubelet's 2 pods",
        )
    finally:
        podman("kube", "down", str(tmp_path / "pod.yaml"), check=False, timeout=120)
        podman("pod", "rm", "--force", name, check=False)
        for volume in names("volume") - volumes:  # the ConfigMap's and the emptyDir's
            podman("volume", "rm", "--force", volume, check=False)
        for network in names("network") - networks:  # podman-default-kube-network, made by the first play
            podman("network", "rm", "--force", network, check=False)

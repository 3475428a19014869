"""DRA (--kubernetes-enable-dra): the fake kubelet serves a pods file with DRA claims over the real pod-resources
gRPC API; ResourceSlices say which GPU (or MIG instance) each claimed device is; the series carry dcgm-exporter's
dra_* labels in its order. Through the running exporter and in process (MIG)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from otel_fakegpu.attribution import KubeletSource
from otel_fakegpu.attribution.devices import mig_uuid
from otel_fakegpu.attribution.dra import ResourceSlices, parse_slices
from otel_fakegpu.attribution.podresources_v1 import api_pb2
from tests.attribution_helpers import attributed_stack, running_kubelet, series
from tests.conftest import ExporterProcess, run_cli

DRA_LABELS = ["container", "dra_claim_name", "dra_claim_namespace", "dra_device_name", "dra_driver_name",
              "dra_pool_name", "namespace", "pod"]  # fmt: skip


def _dra_pod(name: str, claim: str, device: str, driver: str = "gpu.nvidia.com") -> dict[str, object]:
    resource = {"driver_name": driver, "pool_name": "node-a", "device_name": device}
    containers = [{"name": "main", "dynamic_resources": [
        {"claim_name": claim, "claim_namespace": "ml", "claim_resources": [resource]}
    ]}]  # fmt: skip
    return {"name": name, "namespace": "ml", "containers": containers}


def _slices(devices: list[dict[str, object]]) -> dict[str, object]:
    spec = {"driver": "gpu.nvidia.com", "pool": {"name": "node-a"}, "devices": devices}
    return {"apiVersion": "v1", "kind": "List", "items": [{"kind": "ResourceSlice", "spec": spec}]}


def _gpu(name: str, uuid: str) -> dict[str, object]:
    return {"name": name, "basic": {"attributes": {"type": {"string": "gpu"}, "uuid": {"string": uuid}}}}


def _mig(name: str, uuid: str, parent: str, profile: str) -> dict[str, object]:
    attributes = {"type": {"string": "mig"}, "uuid": {"string": uuid}, "parentUUID": {"string": parent},
                  "profile": {"string": profile}}  # fmt: skip
    return {"name": name, "attributes": attributes}  # resource.k8s.io/v1: attributes on the device itself


@pytest.fixture
def fake_kubelet(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """``python -m otel_fakegpu.attribution.fakekubelet`` on a pods file: (socket, pods file)."""
    pods = tmp_path / "pods.yaml"
    pods.write_text("[]\n")
    socket = Path(f"/tmp/dra-{time.monotonic_ns()}.sock")  # short: Unix socket paths are limited
    proc = subprocess.Popen([sys.executable, "-m", "otel_fakegpu.attribution.fakekubelet", "--socket", str(socket),
                             "--pods", str(pods)])  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        yield socket, pods
    finally:
        proc.terminate()
        proc.wait(10)
        socket.unlink(missing_ok=True)


def test_a_dra_claim_from_the_fake_kubelet_labels_its_gpu(
    tmp_path: Path, fake_kubelet: tuple[Path, Path], exporter_factory: Callable[..., ExporterProcess]
) -> None:
    socket, pods = fake_kubelet
    slices = tmp_path / "slices.yaml"
    slices.write_text(yaml.safe_dump(_slices([])))
    exporter = exporter_factory(
        "-k", "--pod-resources-kubelet-socket", str(socket), "--kubernetes-enable-dra",
        "--kubernetes-dra-resource-slices", str(slices), "-c", "300", "--num-gpus", "2", env={"NODE_NAME": "node-a"},
    )  # fmt: skip
    uuids = re.findall(r'DCGM_FI_DEV_GPU_TEMP\{gpu="\d",UUID="([^"]+)"', exporter.get("/metrics")[1].decode())
    slices.write_text(yaml.safe_dump(_slices([_gpu("gpu-0", uuids[0]), _gpu("gpu-1", uuids[1])])))
    pods.write_text(yaml.safe_dump([_dra_pod("train", "train-gpu", "gpu-1"),
                                    _dra_pod("other", "x", "gpu-0", driver="example.com/fpga")]))  # fmt: skip
    deadline, lines = time.monotonic() + 30, list[str]()
    while time.monotonic() < deadline and not any("dra_claim_name" in line for line in lines):
        time.sleep(0.3)
        lines = series(exporter.get("/metrics")[1], "DCGM_FI_DEV_GPU_TEMP")
    labelled = [line for line in lines if "dra_claim_name" in line]
    assert len(labelled) == 1 and 'gpu="1"' in labelled[0], lines
    keys = re.findall(r'([A-Za-z_]+)="', labelled[0])
    assert keys[keys.index("DCGM_FI_DRIVER_VERSION") + 1 :] == DRA_LABELS  # dcgm-exporter's sorted map order
    assert 'dra_claim_name="train-gpu",dra_claim_namespace="ml",dra_device_name="gpu-1"' in labelled[0]
    assert 'dra_driver_name="gpu.nvidia.com",dra_pool_name="node-a",namespace="ml",pod="train"' in labelled[0]
    assert not any("pod=" in line for line in lines if 'gpu="0"' in line)  # another driver's claim: ignored


def test_a_mig_device_claimed_through_dra_labels_its_instance(tmp_path: Path) -> None:
    stack_uuid = "GPU-a"  # replaced below by the simulated GPU's own
    slices = tmp_path / "slices.yaml"
    slices.write_text(yaml.safe_dump(_slices([])))
    response = api_pb2.ListPodResourcesResponse()
    response.pod_resources.add().CopyFrom(_pb_pod())
    with running_kubelet(response) as kubelet:
        source = KubeletSource(str(kubelet.socket), resource_slices=ResourceSlices(str(slices)))
        stack = attributed_stack(source, count=1, mig="0:3g.40gb*2")
        stack_uuid = re.findall(r'UUID="([^"]+)"', stack.cycle().decode())[0]
        instance_uuid = mig_uuid(stack_uuid, 2)
        slices.write_text(yaml.safe_dump(_slices([_mig("gpu-0-mig-2", instance_uuid, stack_uuid, "3g.40gb")])))
        time.sleep(0.05)  # a new modification time
        lines = series(stack.cycle(), "DCGM_FI_DEV_FB_USED")
    labelled = [line for line in lines if "dra_mig_profile" in line]
    assert len(lines) == 2 and len(labelled) == 1 and 'GPU_I_ID="2"' in labelled[0], lines
    assert f'dra_mig_device_uuid="{instance_uuid}",dra_mig_profile="3g.40gb",dra_pool_name="node-a"' in labelled[0]


def _pb_pod() -> api_pb2.PodResources:
    from google.protobuf import json_format

    return json_format.ParseDict(_dra_pod("infer", "infer-mig", "gpu-0-mig-2"), api_pb2.PodResources())


def test_slices_of_other_drivers_and_unknown_types_are_skipped() -> None:
    data = _slices([_gpu("gpu-0", "GPU-x"), {"name": "nic", "attributes": {"type": {"string": "nic"}}}])
    other = {"spec": {"driver": "example.com", "pool": {"name": "p"}, "devices": [_gpu("gpu-9", "GPU-y")]}}
    data["items"].append(other)  # type: ignore[attr-defined]
    assert list(parse_slices(data)) == [("node-a", "gpu-0")]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--kubernetes-enable-dra"], "add -k"),
        (["-k", "--kubernetes-enable-dra"], "needs --kubernetes-dra-resource-slices FILE"),
        (["-k", "--kubernetes-enable-dra", "--kubernetes-dra-resource-slices", "/nonexistent.yaml"], "no such file"),
    ],
)
def test_dra_options_are_checked_one_line_exit_2(args: list[str], needle: str) -> None:
    result = run_cli(*args, "--check-config")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and needle in result.stderr, result.stderr

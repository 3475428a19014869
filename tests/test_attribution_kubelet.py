"""Attribution from the kubelet's pod-resources API: a real gRPC server on a Unix socket (the fake kubelet a
user can run) answers List; the exposition carries dcgm-exporter's pod labels, once per cycle."""

from __future__ import annotations

import logging
import time

import pytest

from otel_fakegpu.attribution import (
    AttributionStage,
    DeviceRef,
    Entity,
    KubeletSource,
    LabelStyle,
    WorkloadIdentity,
)
from otel_fakegpu.attribution.simulated import SimulatedSource
from otel_fakegpu.engine import Snapshot
from otel_fakegpu.telemetry import CycleRunner, CycleStats
from tests.attribution_helpers import answer, attributed_stack, pod, running_kubelet, series, uuids

GPU = "nvidia.com/gpu"
TEMP = "DCGM_FI_DEV_GPU_TEMP"


def _labels(line: str) -> str:
    return line[line.index("{") : line.index("}") + 1]


def test_whole_gpus_by_uuid_in_dcgm_exporters_label_order() -> None:
    with running_kubelet(answer()) as kl:
        stack = attributed_stack(KubeletSource(str(kl.socket)))
        ids = uuids(stack)
        kl.kubelet.set_pods(
            answer(
                pod("trainer-0", "default", {"pytorch": [(GPU, [ids[0]])]}),
                pod("web", "default", {"nginx": [("cpu", ["0"])]}),  # not a GPU resource
                pod("infer", "ml", {"triton": [(GPU, [ids[2]])], "sidecar": []}),
            )
        )
        lines = series(stack.cycle(), TEMP)
    assert len(lines) == 4  # one per GPU: nobody shares
    by_gpu = {_labels(line).split('"')[1]: _labels(line) for line in lines}
    assert by_gpu["0"].endswith(
        ',Hostname="golden-host",DCGM_FI_DRIVER_VERSION="550.54.15",'
        'container="pytorch",namespace="default",pod="trainer-0"}'
    ), by_gpu["0"]
    assert 'container="triton",namespace="ml",pod="infer"}' in by_gpu["2"]
    for free in ("1", "3"):  # a GPU without a pod gets no pod labels at all (dcgm-exporter >= 3.3.5)
        assert "pod" not in by_gpu[free] and "namespace" not in by_gpu[free]


def test_device_name_ids_match_only_with_device_name_id_type() -> None:
    pods = answer(pod("p", "default", {"c": [(GPU, ["nvidia1"])]}))
    with running_kubelet(pods) as kl:
        by_name = attributed_stack(KubeletSource(str(kl.socket), id_type="device-name"))
        by_uid = attributed_stack(KubeletSource(str(kl.socket), id_type="uid"))
        named, unnamed = series(by_name.cycle(), TEMP), series(by_uid.cycle(), TEMP)
    assert [line for line in named if 'pod="p"' in line] == [line for line in named if 'gpu="1"' in line]
    assert not any('pod="p"' in line for line in unnamed)


def test_time_slicing_replicas_give_one_series_per_container_with_vgpu() -> None:
    with running_kubelet(answer()) as kl:
        stack = attributed_stack(KubeletSource(str(kl.socket)))
        gpu0 = uuids(stack)[0]
        kl.kubelet.set_pods(
            answer(
                pod("a", "default", {"c": [(GPU, [f"{gpu0}::0"])]}),
                pod("b", "default", {"c": [(GPU, [f"{gpu0}::3"])]}),
            )
        )
        lines = [line for line in series(stack.cycle(), TEMP) if 'gpu="0"' in line]
    assert sorted(_labels(line).split("DCGM_FI_DRIVER_VERSION")[1] for line in lines) == [
        '="550.54.15",container="c",namespace="default",pod="a",vgpu="0"}',
        '="550.54.15",container="c",namespace="default",pod="b",vgpu="3"}',
    ]


def test_gpu_shared_by_two_containers_gets_a_series_each_with_old_names_and_uid() -> None:
    with running_kubelet(answer()) as kl:
        style = LabelStyle(old_names=True, pod_uid=True)
        stack = attributed_stack(KubeletSource(str(kl.socket)), style=style)
        gpu1 = uuids(stack)[1]
        kl.kubelet.set_pods(answer(pod("mps", "team", {"left": [(GPU, [gpu1])], "right": [(GPU, [gpu1])]})))
        lines = [line for line in series(stack.cycle(), TEMP) if 'gpu="1"' in line]
    tails = sorted(_labels(line).split("550.54.15")[1] for line in lines)
    # -o: container_name, pod_name, pod_namespace; the kubelet knows no uid: pod_uid="" as dcgm-exporter prints it
    assert tails == [
        '",container_name="left",pod_name="mps",pod_namespace="team",pod_uid=""}',
        '",container_name="right",pod_name="mps",pod_namespace="team",pod_uid=""}',
    ]


def test_mig_devices_map_to_their_gpu_instance() -> None:
    """MIG-<uuid> and GKE's nvidiaN/giM name GPU instances; a whole-GPU id never matches an instance."""
    entities = (
        Entity(0, "GPU-a", "nvidia0"),
        Entity(1, "GPU-b", "nvidia1", instance=1, mig_uuid="MIG-11"),
        Entity(1, "GPU-b", "nvidia1", instance=2, mig_uuid="MIG-12"),
        Entity(2, "GPU-c", "nvidia2", instance=7, mig_uuid="MIG-27"),
    )
    pods = answer(
        pod("m1", "default", {"c": [("nvidia.com/mig-1g.10gb", ["MIG-11"])]}),
        pod("m2", "default", {"c": [("nvidia.com/mig-1g.10gb", ["MIG-12::2"])]}),  # EKS adds ::N
        pod("gke", "default", {"c": [(GPU, ["nvidia2/gi7"])]}),
        pod("whole", "default", {"c": [(GPU, ["GPU-b"])]}),
    )
    with running_kubelet(pods) as kl:
        stage = AttributionStage(KubeletSource(str(kl.socket)), LabelStyle(), 2.0, identify=lambda s: entities)
        assignment = stage.assign(Snapshot.build((0, 1, 2, 3), {}, 0.0))
    pods_of = [[dict(pairs)["pod"] for pairs in sets] for sets in assignment]
    assert pods_of == [[], ["m1"], ["m2"], ["gke"]]
    assert dict(assignment[2][0])["vgpu"] == "2"


def test_kubelet_going_away_keeps_the_map_logs_once_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    with running_kubelet(answer()) as kl:
        source = KubeletSource(str(kl.socket))
        stack = attributed_stack(source)
        gpu0 = uuids(stack)[0]
        kl.kubelet.set_pods(answer(pod("before", "default", {"c": [(GPU, [gpu0])]})))
        assert any('pod="before"' in line for line in series(stack.cycle(), TEMP))
        stage = stack.pipeline._attribution
        assert stage is not None
        kl.stop()
        with caplog.at_level(logging.WARNING, logger="otel_fakegpu.attribution.stage"):
            for _ in range(3):
                body = stack.cycle()
                assert any('pod="before"' in line for line in series(body, TEMP))  # last good map kept
        assert stage.status.errors_total == 3 and stage.status.last_error is not None
        assert "no such socket" in stage.status.last_error
        assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1  # once per outage
        assert b"otel_fakegpu_attribution_errors_total 3" in body
        kl.kubelet.set_pods(answer(pod("after", "default", {"c": [(GPU, [gpu0])]})))
        kl.start()
        lines = series(stack.cycle(), TEMP)
        assert any('pod="after"' in line for line in lines) and not any('pod="before"' in line for line in lines)
        assert stage.status.last_error is None and stage.status.as_dict(time.time())["state"] == "ok"


def test_kubelet_slower_than_the_timeout_never_holds_the_cycle() -> None:
    with running_kubelet(answer()) as kl:
        stack = attributed_stack(KubeletSource(str(kl.socket)), timeout_s=0.3)
        gpu0 = uuids(stack)[0]
        kl.kubelet.set_pods(answer(pod("p", "default", {"c": [(GPU, [gpu0])]})))
        stack.cycle()
        kl.kubelet.delay_s = 3.0
        started = time.perf_counter()
        body = stack.cycle()
        took = time.perf_counter() - started
        stage = stack.pipeline._attribution
        assert stage is not None
        assert took < 2.0, took  # the timeout (0.3 s) plus a loaded machine's slack, far below the 3 s answer
        error = stage.status.last_error or ""
        assert stage.status.errors_total == 1 and ("DEADLINE_EXCEEDED" in error or "no answer in 0.3 s" in error)
        assert any('pod="p"' in line for line in series(body, TEMP))
        kl.kubelet.delay_s = 0.0
        stack.cycle()
        assert stage.status.last_error is None


def test_one_list_call_per_cycle() -> None:
    with running_kubelet(answer()) as kl:
        stack = attributed_stack(KubeletSource(str(kl.socket)))
        runner = CycleRunner(stack.engine, stack.pipeline, [lambda result: 0], CycleStats())
        for _ in range(7):
            assert runner.run_once()
        assert kl.kubelet.list_calls == 7


def test_claims_reused_while_the_answer_is_unchanged() -> None:
    with running_kubelet(answer(pod("p", "default", {"c": [(GPU, ["GPU-x"])]}))) as kl:
        source = KubeletSource(str(kl.socket))
        first = source.fetch(2.0)
        assert source.fetch(2.0) is first  # same bytes: not decoded again
        assert first[0].device == DeviceRef(uuid="GPU-x") and first[0].workload == WorkloadIdentity("p", "default", "c")


def test_a_source_error_before_any_answer_attributes_nothing() -> None:
    stage = AttributionStage(KubeletSource("/nonexistent/kubelet.sock"), LabelStyle(), 0.5)
    assert stage.assign(Snapshot.build((0,), {}, 0.0)) == ((),)
    assert stage.status.as_dict(time.time())["state"] == "failing"
    assert SimulatedSource(lambda: ()).fetch(0.1) == ()  # an in-process source answers when asked

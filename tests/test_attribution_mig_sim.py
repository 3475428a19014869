"""MIG instances attributed through the kubelet (MIG-<uuid>, GKE nvidiaN/giM), and the simulator's own
workloads as the default source: pod labels, pod_uid and hpc_job with no cluster."""

from __future__ import annotations

from otel_fakegpu.attribution import AttributionStage, KubeletSource, LabelStyle, SimulatedSource
from otel_fakegpu.attribution.devices import mig_uuid
from otel_fakegpu.sim import MigRef, Simulator, Workload
from tests.attribution_helpers import answer, attributed_stack, pod, running_kubelet, series, uuids
from tests.conftest import build_stack

MIG_RESOURCE = "nvidia.com/mig-3g.40gb"
FB = "DCGM_FI_DEV_FB_USED"  # a per-instance field


def _instance_pods(body: bytes) -> dict[str, list[str]]:
    """GPU_I_ID -> pods on that instance's series."""
    found: dict[str, list[str]] = {}
    for line in series(body, FB):
        if "GPU_I_ID" in line:
            gi = line.split('GPU_I_ID="')[1].split('"')[0]
            pods = found.setdefault(gi, [])
            if 'pod="' in line:
                pods.append(line.split('pod="')[1].split('"')[0])
    return found


def test_mig_instances_by_mig_uuid_and_gke_names_and_whole_gpu_ids_do_not_match_them() -> None:
    with running_kubelet(answer()) as kl:
        stack = attributed_stack(KubeletSource(str(kl.socket)), count=2, mig="0:3g.40gb*2")
        snapshot = stack.engine.read_latest([54])
        gis = sorted(e.instance_id for e in snapshot.instances.values())
        gpu0, gpu1 = uuids(stack)[0], uuids(stack)[-1]
        kl.kubelet.set_pods(
            answer(
                pod("by-uuid", "default", {"c": [(MIG_RESOURCE, [f"{mig_uuid(gpu0, gis[0])}::1"])]}),
                pod("by-gke-name", "default", {"c": [("nvidia.com/gpu", [f"nvidia0/gi{gis[1]}"])]}),
                pod("whole-gpu0", "default", {"c": [("nvidia.com/gpu", [gpu0])]}),  # MIG GPU: matches nothing
                pod("whole-gpu1", "default", {"c": [("nvidia.com/gpu", [gpu1])]}),
            )
        )
        body = stack.cycle()
    assert _instance_pods(body) == {str(gis[0]): ["by-uuid"], str(gis[1]): ["by-gke-name"]}
    by_uuid = next(line for line in series(body, FB) if 'pod="by-uuid"' in line)
    assert by_uuid.split("} ")[0].endswith('container="c",namespace="default",pod="by-uuid",vgpu="1"')
    assert [line for line in series(body, FB) if 'pod="whole-gpu1"' in line]
    assert not [line for line in series(body, FB) if 'pod="whole-gpu0"' in line]


def test_simulated_workloads_label_their_gpus_and_instances_by_default() -> None:
    simulators: list[Simulator] = []  # the stack builds its simulator after the stage that reads it
    stage = AttributionStage(SimulatedSource(lambda: simulators[0].workloads()), LabelStyle(pod_uid=True), 1.0)  # noqa: PLW0108
    stack = build_stack(3, ["static"], mig="2:3g.40gb*2", attribution=stage)
    simulator = stack.simulator
    simulators.append(simulator)
    first, second = sorted(e.instance_id for e in stack.engine.read_latest([54]).instances.values())
    simulator.add_workload(Workload("trainer-0", "ml", "pytorch", gpus=(0, 1), shape="training", pod_uid="u-1"))
    simulator.add_workload(Workload("slurm-step", "hpc", "job", gpus=(1,), job_id="4242"))
    simulator.add_workload(Workload("infer-0", "ml", "triton", instances=(MigRef(2, first),), shape="inference"))
    body = stack.cycle()
    lines = series(body, FB)
    gpu0 = [line for line in lines if 'gpu="0"' in line]
    assert len(gpu0) == 1 and 'container="pytorch",namespace="ml",pod="trainer-0",pod_uid="u-1"}' in gpu0[0]
    gpu1 = sorted(line.split("550.54.15")[1].split("}")[0] for line in lines if 'gpu="1"' in line)
    assert gpu1 == [  # a job id is an HPC job too: hpc_job sorts between container and namespace
        '",container="job",hpc_job="4242",namespace="hpc",pod="slurm-step",pod_uid=""',
        '",container="pytorch",namespace="ml",pod="trainer-0",pod_uid="u-1"',
    ]
    assert _instance_pods(body) == {str(first): ["infer-0"], str(second): []}
    simulator.remove_workload("ml/infer-0/triton")
    assert _instance_pods(stack.cycle()) == {str(first): [], str(second): []}

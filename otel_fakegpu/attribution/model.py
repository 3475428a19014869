"""What attribution works with: a workload (pod/container or HPC job) claiming one device, and the labels
dcgm-exporter prints for it."""

from __future__ import annotations

from dataclasses import dataclass

from otel_fakegpu.attribution.devices import DeviceRef

Pairs = tuple[tuple[str, str], ...]
"""Label pairs in the order they are printed."""


@dataclass(frozen=True)
class WorkloadIdentity:
    """Who uses a device: a Kubernetes container, an HPC job, or both (the simulator's workloads)."""

    pod: str = ""
    namespace: str = ""
    container: str = ""
    pod_uid: str | None = None  # None: unknown (the kubelet's List does not carry it)
    vgpu: str | None = None  # time-slicing replica number, from a device id's ``::N`` or ``/vgpuN``
    hpc_job: str | None = None

    @property
    def is_pod(self) -> bool:
        return bool(self.pod or self.namespace or self.container)


@dataclass(frozen=True)
class Claim:
    """One workload on one device."""

    device: DeviceRef
    workload: WorkloadIdentity


@dataclass(frozen=True)
class LabelStyle:
    """dcgm-exporter's naming switches: ``-o`` (old names) and ``--kubernetes-enable-pod-uid``."""

    old_names: bool = False
    pod_uid: bool = False

    def labels(self, workload: WorkloadIdentity) -> Pairs:
        """The workload's labels, sorted by name as dcgm-exporter's template prints its attribute map."""
        pairs: dict[str, str] = {}
        if workload.is_pod:
            pod, namespace, container = (
                ("pod_name", "pod_namespace", "container_name") if self.old_names else ("pod", "namespace", "container")
            )
            pairs.update({pod: workload.pod, namespace: workload.namespace, container: workload.container})
            # Without an API server dcgm-exporter knows no uid and prints pod_uid="" (Prometheus stores no label).
            if self.pod_uid:
                pairs["pod_uid"] = workload.pod_uid or ""
            if workload.vgpu is not None:
                pairs["vgpu"] = workload.vgpu
        if workload.hpc_job is not None:
            pairs["hpc_job"] = workload.hpc_job
        return tuple(sorted(pairs.items()))


SEMCONV_NAMES = {
    "pod": "k8s.pod.name",
    "pod_name": "k8s.pod.name",
    "namespace": "k8s.namespace.name",
    "pod_namespace": "k8s.namespace.name",
    "container": "k8s.container.name",
    "container_name": "k8s.container.name",
    "pod_uid": "k8s.pod.uid",
}


def semconv_labels(labels: Pairs) -> Pairs:
    """The OpenTelemetry names of a workload's labels (``k8s.pod.name`` ...), for ``--naming otel|both``;
    ``vgpu`` and ``hpc_job`` have no convention and keep their names. An unknown uid is left out."""
    return tuple((SEMCONV_NAMES.get(key, key), value) for key, value in labels if value or key != "pod_uid")

"""Which attribution source a configuration asks for, and building it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from otel_fakegpu.attribution.model import LabelStyle

if TYPE_CHECKING:  # each source loads when it is the one configured (build_source): a plain start reads none
    from otel_fakegpu.attribution.simulated import SimulatedWorkload
    from otel_fakegpu.attribution.source import Source

KUBELET, POD_LIST, HPC, SIMULATOR = "kubelet", "pod-list-file", "hpc-job-mapping-dir", "simulator"
DEFAULT_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"  # the kubelet's pod-resources socket
MAX_DEFAULT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class AttributionSettings:
    kind: str  # KUBELET, POD_LIST, HPC or SIMULATOR
    path: str = ""  # the kubelet socket, pod list file or job directory
    id_type: str = "uid"
    resource_names: tuple[str, ...] = ()
    style: LabelStyle = field(default_factory=LabelStyle)
    timeout_s: float | None = None  # None: a quarter of the cycle, at most 2 s
    jobstats: bool = False  # also the jobstats GPU exporter's job-mapping series
    virtual_gpus: bool = False  # --kubernetes-virtual-gpus: per-pod GPU_UTIL and FB_USED on shared GPUs
    dra_slices: str | None = None  # --kubernetes-enable-dra: the ResourceSlices file its claims resolve through

    def timeout_for(self, collect_interval_s: float) -> float:
        """How long a cycle waits for the source: well under the cycle, so a slow kubelet never stalls it."""
        if self.timeout_s is not None:
            return self.timeout_s
        return min(MAX_DEFAULT_TIMEOUT_S, collect_interval_s / 4)


def build_source(
    settings: AttributionSettings,
    simulated: Callable[[], Sequence[SimulatedWorkload]] | None,
    shared_gpus: Mapping[int, int] | None = None,
) -> Source | None:
    """The configured source; None for the simulator's workloads when there is no simulator. ``shared_gpus``
    (GPU index -> replicas) are the simulated GPUs the device plugin shares between pods."""
    if settings.kind == KUBELET:
        from otel_fakegpu.attribution.dra import ResourceSlices  # noqa: PLC0415 - see the imports above
        from otel_fakegpu.attribution.kubelet import KubeletSource  # noqa: PLC0415

        slices = ResourceSlices(settings.dra_slices) if settings.dra_slices is not None else None
        return KubeletSource(settings.path, settings.id_type, settings.resource_names, slices)
    if settings.kind == POD_LIST:
        from otel_fakegpu.attribution.podlist import PodListSource  # noqa: PLC0415

        return PodListSource(settings.path)
    if settings.kind == HPC:
        from otel_fakegpu.attribution.hpc import HpcJobSource  # noqa: PLC0415

        return HpcJobSource(settings.path)
    from otel_fakegpu.attribution.simulated import SimulatedSource  # noqa: PLC0415

    return SimulatedSource(simulated, shared_gpus) if simulated is not None else None

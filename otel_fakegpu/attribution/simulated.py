"""The simulator's own workloads as a source, used when no other source is configured: a laptop user sees
pod labels with no cluster. Attribution sits below the simulator, so workloads are read through a Protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from otel_fakegpu.attribution.devices import DeviceRef
from otel_fakegpu.attribution.model import Claim, WorkloadIdentity
from otel_fakegpu.attribution.source import Claims, Source


class SimulatedWorkload(Protocol):
    """What the source reads of a simulated workload (``sim.Workload`` has these)."""

    @property
    def pod(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def container(self) -> str: ...
    @property
    def job_id(self) -> str | None: ...
    @property
    def pod_uid(self) -> str | None: ...
    def devices(self) -> tuple[tuple[int, int | None], ...]:
        """(GPU index, GPU instance id or None for the whole GPU) of every device it holds."""
        ...


def _claims(workloads: Iterable[SimulatedWorkload], shared: Mapping[int, int]) -> Claims:
    """A workload with a job id is also an HPC job: its series carry ``hpc_job`` beside the pod labels. On a shared
    GPU each workload holds a replica, numbered in placement order as the device plugin's ``<id>::N`` (``vgpu``)."""
    claims: list[Claim] = []
    slots: dict[int, int] = {}
    for w in workloads:
        for gpu, gi in w.devices():
            vgpu = None
            if gpu in shared and gi is None:
                slot = slots[gpu] = slots.get(gpu, -1) + 1
                vgpu = str(slot % shared[gpu])
            workload = WorkloadIdentity(
                w.pod, w.namespace, w.container, pod_uid=w.pod_uid or None, vgpu=vgpu, hpc_job=w.job_id or None
            )
            claims.append(Claim(DeviceRef(index=gpu, instance=gi), workload))
    return tuple(claims)


class SimulatedSource(Source):
    """``running()`` returns the workloads placed on GPUs now; unchanged placements reuse the last claims."""

    name = "simulator"
    can_fail = False

    def __init__(
        self, running: Callable[[], Sequence[SimulatedWorkload]], shared_gpus: Mapping[int, int] | None = None
    ) -> None:
        self._running = running
        self._shared = dict(shared_gpus or {})
        self._last: tuple[SimulatedWorkload, ...] | None = None
        self._claims: Claims = ()

    def fetch(self, timeout_s: float) -> Claims:
        workloads = tuple(self._running())
        if workloads != self._last:
            self._last, self._claims = workloads, _claims(workloads, self._shared)
        return self._claims

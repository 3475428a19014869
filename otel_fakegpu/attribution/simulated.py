"""The simulator's own workloads as a source, used when no other source is configured: a laptop user sees
pod labels with no cluster. Attribution sits below the simulator, so workloads are read through a Protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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


def _claims(workloads: Iterable[SimulatedWorkload]) -> Claims:
    """A workload with a job id is also an HPC job: its series carry ``hpc_job`` beside the pod labels."""
    claims: list[Claim] = []
    for w in workloads:
        workload = WorkloadIdentity(
            w.pod, w.namespace, w.container, pod_uid=w.pod_uid or None, hpc_job=w.job_id or None
        )
        claims.extend(Claim(DeviceRef(index=gpu, instance=gi), workload) for gpu, gi in w.devices())
    return tuple(claims)


class SimulatedSource(Source):
    """``running()`` returns the workloads placed on GPUs now; unchanged placements reuse the last claims."""

    name = "simulator"
    can_fail = False

    def __init__(self, running: Callable[[], Sequence[SimulatedWorkload]]) -> None:
        self._running = running
        self._last: tuple[SimulatedWorkload, ...] | None = None
        self._claims: Claims = ()

    def fetch(self, timeout_s: float) -> Claims:
        workloads = tuple(self._running())
        if workloads != self._last:
            self._last, self._claims = workloads, _claims(workloads)
        return self._claims

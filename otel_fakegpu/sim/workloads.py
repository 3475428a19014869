"""Workloads: what runs on the simulated GPUs, and the registry of load shapes they can follow.

Contract (stable; the scenario player, the control API and workload attribution build on it):

- A ``Workload`` is frozen. It names its pod, namespace and container, the GPUs it holds (``gpus``: GPU
  indices, whole GPUs) and/or the MIG instances it holds (``instances``: ``MigRef(gpu, instance_id)``, the
  ``GPU_I_ID``), its load ``shape`` (a name in ``SHAPE_NAMES``), when it runs in simulation seconds since the
  simulator started (``start_s`` inclusive, ``stop_s`` exclusive, ``None``: until removed), its framebuffer
  footprint per device in MiB (``fb_mib``; ``None``: the shape's own), an ``intensity`` multiplying the
  shape's activity (0..1), and optionally a Slurm ``job_id`` and a Kubernetes ``pod_uid``.
- ``key`` (``namespace/pod/container``) identifies a placed workload: ``Simulator.add_workload`` refuses a
  second workload with the same key, ``Simulator.remove_workload(key)`` removes it.
- ``Simulator.workloads()`` lists the placed workloads whose stop time has not passed (including those not
  started yet); ``Workload.active_at(t)`` says whether one runs at simulation time ``t``
  (``Simulator.now_s()``). A workload past its stop time is dropped at the next update.
- A device (GPU, or MIG instance) runs the combined load of its active workloads; a GPU with no workload
  ever placed on it follows its profile (``--profile`` / ``--gpu-profiles``); one whose workloads have all
  stopped is idle.
- Bad fields raise ``WorkloadError`` (a ValueError) with a one-line reason naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from otel_fakegpu.config.values import clip, name_problem
from otel_fakegpu.sim.profiles import PROFILES, Profile
from otel_fakegpu.sim.shapes import ConstantShape, IdleShape, InferenceShape, TrainingShape


class WorkloadError(ValueError):
    """A workload that cannot be placed: unknown shape, no device, bad times, GPU or instance not there."""


@dataclass(frozen=True, order=True)
class MigRef:
    """One MIG GPU instance: the parent GPU's index and the GPU instance id (``GPU_I_ID``)."""

    gpu: int
    instance_id: int


@dataclass(frozen=True)
class Workload:
    """One container's use of GPUs (see the module docstring for the contract)."""

    pod: str
    namespace: str
    container: str
    gpus: tuple[int, ...] = ()
    shape: str = "constant"
    start_s: float = 0.0
    stop_s: float | None = None
    fb_mib: int | None = None
    job_id: str | None = None
    pod_uid: str | None = None
    instances: tuple[MigRef, ...] = ()
    intensity: float = 1.0

    def __post_init__(self) -> None:
        for name in ("pod", "namespace", "container"):
            value = getattr(self, name)
            if not value:
                raise WorkloadError(f"workload {name} must not be empty")
            if (problem := name_problem(value)) is not None:
                raise WorkloadError(f"workload {name} {clip(value)!r}: {problem}")
        for name in ("job_id", "pod_uid"):  # labels too
            value = getattr(self, name)
            if value is not None and (problem := name_problem(value)) is not None:
                raise WorkloadError(f"workload {name} {clip(value)!r}: {problem}")
        if self.shape not in SHAPES:
            raise WorkloadError(f"unknown shape {self.shape!r} (known: {', '.join(SHAPE_NAMES)})")
        if not self.gpus and not self.instances:
            raise WorkloadError(f"workload {self.key} names no GPU and no MIG instance")
        if len(set(self.gpus)) != len(self.gpus) or any(g < 0 for g in self.gpus):
            raise WorkloadError(f"workload {self.key}: GPUs {list(self.gpus)} must be distinct indices >= 0")
        if not (math.isfinite(self.start_s) and self.start_s >= 0):
            raise WorkloadError(f"workload {self.key}: start {self.start_s} must be >= 0")
        if self.stop_s is not None and not self.stop_s > self.start_s:
            raise WorkloadError(f"workload {self.key}: stop {self.stop_s} must come after start {self.start_s}")
        if self.fb_mib is not None and self.fb_mib < 0:
            raise WorkloadError(f"workload {self.key}: fb_mib {self.fb_mib} must be >= 0")
        if not 0.0 <= self.intensity <= 1.0:
            raise WorkloadError(f"workload {self.key}: intensity {self.intensity} must be within 0..1")

    @property
    def key(self) -> str:
        """``namespace/pod/container``: unique among placed workloads."""
        return f"{self.namespace}/{self.pod}/{self.container}"

    def active_at(self, t: float) -> bool:
        """Whether the workload runs at simulation time ``t`` (seconds since the simulator started)."""
        return self.start_s <= t and (self.stop_s is None or t < self.stop_s)

    def devices(self) -> tuple[tuple[int, int | None], ...]:
        """Every device it holds as ``(gpu index, GPU instance id or None for the whole GPU)``."""
        return (*((g, None) for g in self.gpus), *((m.gpu, m.instance_id) for m in self.instances))


ShapeFactory = Callable[[], Profile]

# Shapes: the four workload shapes, then the seven profiles (a GPU without workloads follows its profile).
SHAPES: dict[str, ShapeFactory] = {
    "idle": IdleShape,
    "constant": ConstantShape,
    "training": TrainingShape,
    "inference": InferenceShape,
    **PROFILES,
}
SHAPE_NAMES: tuple[str, ...] = tuple(SHAPES)


def make_shape(name: str) -> Profile:
    """A fresh shape object (shapes may keep state, so each workload gets its own)."""
    try:
        return SHAPES[name.strip().lower()]()
    except KeyError:
        raise WorkloadError(f"unknown shape {name!r} (known: {', '.join(SHAPE_NAMES)})") from None

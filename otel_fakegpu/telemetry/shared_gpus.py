"""Per-pod values on shared GPUs (``--kubernetes-virtual-gpus``), as dcgm-exporter #594 serves them
(internal/pkg/transformation/process_metrics.go): on a device that pods use, DCGM_FI_DEV_GPU_UTIL and
DCGM_FI_DEV_FB_USED are served once for the device (its own labels, no pod) and once per pod, the pod's value from
its compute processes; a pod with none gets 0. Per-pod series always carry ``pod_uid`` (empty when unknown).

Each pod's value is the device's reading split in proportion to its processes' SM share (GPU_UTIL) or framebuffer
(FB_USED), by largest remainder, so the pods' values add up to the device's exactly. dcgm-exporter matches the
metric by the name ``DCGM_FI_DEV_GPU_UTIL`` / ``DCGM_FI_DEV_FB_USED``; here any name of fields 203 and 252 does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

from opentelemetry.metrics import CallbackOptions, Observation

from otel_fakegpu.engine import ProcessUsage
from otel_fakegpu.telemetry.callbacks import Callback, CurrentCycle, ExtendedAttributes

PER_POD_FIELDS: dict[int, Callable[[ProcessUsage], float]] = {
    203: lambda process: process.sm_util,  # DCGM_FI_DEV_GPU_UTIL
    252: lambda process: float(process.fb_used_mib),  # DCGM_FI_DEV_FB_USED
}
_POD_KEYS = ("pod", "pod_name")
_NAMESPACE_KEYS = ("namespace", "pod_namespace")


def split(total: float, weights: Sequence[float]) -> list[float]:
    """``total`` shared in proportion to ``weights``: whole numbers adding up to a whole ``total`` exactly (largest
    remainder), else plain proportions; all 0 when nothing weighs."""
    weight_sum = sum(weights)
    if weight_sum <= 0:
        return [0] * len(weights)
    exact = [total * w / weight_sum for w in weights]
    if not float(total).is_integer():
        return exact
    shares = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda k: exact[k] - shares[k], reverse=True)
    for k in by_remainder[: round(total) - sum(shares)]:
        shares[k] += 1
    return shares  # type: ignore[return-value]


def _owner(pairs: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    labels = dict(pairs)
    pod = next((labels[k] for k in _POD_KEYS if k in labels), None)
    namespace = next((labels[k] for k in _NAMESPACE_KEYS if k in labels), "")
    return None if pod is None else (namespace, pod)


def per_pod_callback(current: CurrentCycle, field_id: int) -> Callback:
    """Field ``field_id``'s points: the device's own and one per pod on devices pods use; as any field elsewhere."""
    weight = PER_POD_FIELDS[field_id]
    extended = ExtendedAttributes()

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        snapshot, assignment = current.snapshot, current.assignment
        points: list[Observation] = []
        for i, value in enumerate(snapshot.column(field_id)):
            if type(value) is not int and type(value) is not float:
                continue
            workloads = assignment[i] if assignment else ()
            owners = [_owner(pairs) for pairs in workloads]
            if not any(owners):
                points.extend(Observation(value, base) for base in current.bases(i))
                continue
            entity_id = snapshot.entity_ids[i]
            points.append(Observation(value, current.own[i]))  # the device-level series stays
            processes = snapshot.processes.get(entity_id, ())
            weights = [sum(weight(p) for p in processes if owner and p.owner[:2] == owner) for owner in owners]
            for j, (pairs, share) in enumerate(zip(workloads, split(value, weights), strict=True)):
                if owners[j] is None:
                    continue  # an HPC job without a pod: dcgm-exporter's per-process path is for pods
                labels = dict(pairs)
                labels.setdefault("pod_uid", "")
                extra = tuple(sorted(labels.items()))
                points.append(Observation(share, extended.get((entity_id, j), current.own[i], extra)))
        return points

    return observe

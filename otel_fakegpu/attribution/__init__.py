"""Floor 4 (beside sim), between the engine read and the SDK collection: which workloads (pod, container, HPC job) use
each GPU and MIG instance, fetched once per cycle from one source and kept while the source fails."""

from typing import TYPE_CHECKING

from otel_fakegpu import lazy_exports

if TYPE_CHECKING:  # the names load with their module, on first use (lazy_exports)
    from otel_fakegpu.attribution.devices import ID_TYPES, DeviceIndex, DeviceRef, Entity, entities_of, parse_device
    from otel_fakegpu.attribution.hpc import HpcJobSource
    from otel_fakegpu.attribution.kubelet import KubeletSource, claims_from_response
    from otel_fakegpu.attribution.model import Claim, LabelStyle, Pairs, WorkloadIdentity, semconv_labels
    from otel_fakegpu.attribution.podlist import DEFAULT_POD_LIST, PodListSource
    from otel_fakegpu.attribution.settings import DEFAULT_SOCKET
    from otel_fakegpu.attribution.simulated import SimulatedSource, SimulatedWorkload
    from otel_fakegpu.attribution.source import Claims, Source, SourceError
    from otel_fakegpu.attribution.stage import Assignment, AttributionStage, AttributionStatus

__all__ = [
    "DEFAULT_POD_LIST",
    "DEFAULT_SOCKET",
    "ID_TYPES",
    "Assignment",
    "AttributionStage",
    "AttributionStatus",
    "Claim",
    "Claims",
    "DeviceIndex",
    "DeviceRef",
    "Entity",
    "HpcJobSource",
    "KubeletSource",
    "LabelStyle",
    "Pairs",
    "PodListSource",
    "SimulatedSource",
    "SimulatedWorkload",
    "Source",
    "SourceError",
    "WorkloadIdentity",
    "claims_from_response",
    "entities_of",
    "parse_device",
    "semconv_labels",
]

if not TYPE_CHECKING:  # mypy sees the imports above, and no __getattr__ that would accept any name
    __getattr__ = lazy_exports(
        __name__,
        {
            "devices": ("ID_TYPES", "DeviceIndex", "DeviceRef", "Entity", "entities_of", "parse_device"),
            "hpc": ("HpcJobSource",),
            "kubelet": ("KubeletSource", "claims_from_response"),
            "settings": ("DEFAULT_SOCKET",),
            "model": ("Claim", "LabelStyle", "Pairs", "WorkloadIdentity", "semconv_labels"),
            "podlist": ("DEFAULT_POD_LIST", "PodListSource"),
            "simulated": ("SimulatedSource", "SimulatedWorkload"),
            "source": ("Claims", "Source", "SourceError"),
            "stage": ("Assignment", "AttributionStage", "AttributionStatus"),
        },
    )

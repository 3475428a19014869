"""The source seam: where the device-to-workload map comes from (kubelet, pod list file, HPC directory,
the simulator). A source is asked once per cycle; the stage keeps its last good answer."""

from __future__ import annotations

from abc import ABC, abstractmethod

from otel_fakegpu.attribution.model import Claim

Claims = tuple[Claim, ...]


class SourceError(RuntimeError):
    """The source cannot answer this cycle: the stage keeps its last good map and counts the failure."""


class Source(ABC):
    """Where claims come from; ``name`` appears on /health and in log lines."""

    name: str = "abstract"
    can_fail: bool = True  # False for in-process sources: no error and age self-metrics for them

    @abstractmethod
    def fetch(self, timeout_s: float) -> Claims:
        """One fetch, within ``timeout_s`` where the source can bound it (called on the stage's own thread);
        raises SourceError. Returning the very same tuple as the previous fetch means "unchanged" and lets the
        stage skip re-resolving."""

    def close(self) -> None:  # noqa: B027 - sources without resources need not override
        """Release the source's resources."""

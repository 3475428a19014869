"""The source seam: where the device-to-workload map comes from (kubelet, pod list file, HPC directory,
the simulator). A source is asked once per cycle; the stage keeps its last good answer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from otel_fakegpu.attribution.model import Claim

Claims = tuple[Claim, ...]


class SourceError(RuntimeError):
    """The source cannot answer this cycle: the stage keeps its last good map and counts the failure."""


class Pending(ABC):
    """A fetch in flight, started before the engine read so both wait together."""

    @abstractmethod
    def result(self, timeout_s: float) -> Claims:
        """The claims, waiting at most ``timeout_s``; raises SourceError. Returning the very same tuple as
        the previous fetch means "unchanged" and lets the stage skip re-resolving."""


class Done(Pending):
    """A fetch that completes when asked (local files, the simulator)."""

    def __init__(self, fetch: Callable[[], Claims]) -> None:
        self._fetch = fetch

    def result(self, timeout_s: float) -> Claims:
        return self._fetch()


class Source(ABC):
    """Where claims come from; ``name`` appears on /health and in log lines."""

    name: str = "abstract"
    can_fail: bool = True  # False for in-process sources: no error and age self-metrics for them

    @abstractmethod
    def start(self, timeout_s: float) -> Pending:
        """Begin one fetch, to complete within ``timeout_s``."""

    def close(self) -> None:  # noqa: B027 - sources without resources need not override
        """Release the source's resources."""

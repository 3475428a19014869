"""Which engine to run and what it reads: ``--engine``, ``-r/--remote-hostengine-info``, ``--devices``, ``--inject``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ENGINE_KINDS = ("embedded", "dcgm", "nvml", "replay")
MAX_INJECTED_GPUS = 32  # DCGM_MAX_NUM_DEVICES: one hostengine holds at most 32 GPUs, fake ones included


@dataclass(frozen=True)
class DeviceSelection:
    """dcgm-exporter's ``--devices``: ``f`` (flex: every GPU, or its MIG instances), ``g[:ids]`` (GPUs),
    ``i[:ids]`` (GPU instances). ``ids`` None means every entity of that kind."""

    mode: str = "f"
    ids: tuple[int, ...] | None = None

    def wants_gpu(self, gpu_id: int) -> bool:
        if self.mode == "i":
            return False
        return self.ids is None or gpu_id in self.ids

    def wants_instance(self, instance_id: int) -> bool:
        if self.mode == "g":
            return False
        return self.mode == "f" or self.ids is None or instance_id in self.ids


def parse_devices(text: str) -> DeviceSelection:
    """Parse as dcgm-exporter's parseDeviceOptions does; raises ValueError with the reason."""
    letter, sep, ranges = text.strip().partition(":")
    if ":" in ranges:
        raise ValueError("there can only be one range")
    if letter == "f":
        if sep:
            raise ValueError("no range can be given with the flex option 'f'")
        return DeviceSelection("f")
    if letter not in ("g", "i"):
        raise ValueError(f"expected f, g[:RANGE] or i[:RANGE], found {letter!r}")
    if not sep:
        return DeviceSelection(letter)
    ids: list[int] = []
    for part in ranges.split(","):
        bounds = part.split("-")
        if len(bounds) > 2:
            raise ValueError(f"a range is NUMBER-NUMBER, found {part!r}")
        try:
            numbers = [int(b) for b in bounds]
        except ValueError:
            raise ValueError(f"not a number in {part!r}") from None
        ids.extend(range(numbers[0], numbers[-1] + 1))
    return DeviceSelection(letter, tuple(dict.fromkeys(ids)))


@dataclass(frozen=True)
class ReplaySettings:
    """``--engine replay``: the capture file, its pace multiplier, and whether it starts over at the end."""

    path: Path
    speed: float = 1.0
    loop: bool = False


@dataclass(frozen=True)
class EngineSettings:
    """``remote``: HOST:PORT or a Unix socket path of an nv-hostengine (None: start an embedded one).
    ``inject``: create the simulated GPUs as fake entities inside that hostengine and drive them."""

    kind: str = "embedded"
    remote: str | None = None
    devices: DeviceSelection = field(default_factory=DeviceSelection)
    inject: bool = False
    replay: ReplaySettings | None = None  # --engine replay: the capture to serve back

    @property
    def simulated(self) -> bool:
        """Whether the simulator drives this engine (embedded, or DCGM with injection)."""
        return self.kind == "embedded" or self.inject

    @property
    def remote_is_socket(self) -> bool:
        return self.remote is not None and "/" in self.remote  # a path; HOST:PORT never has a slash

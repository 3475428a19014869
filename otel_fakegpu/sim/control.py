"""The simulator's side of the live control API: plain data in, plain data out.

``SimulatorControl`` is the ``ControlPort`` the HTTP routes are given. Its methods take and return
JSON-able values only, so the simulator can live behind a process boundary; a bad request raises
ValueError (HTTP 400), an unknown GPU or workload LookupError (HTTP 404).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_fakegpu.sim.events import parse_event
from otel_fakegpu.sim.simulator import Simulator


class SimulatorControl:
    """Applies control requests to a running simulator; changes reach the engine before the call returns."""

    def __init__(self, simulator: Simulator) -> None:
        self._sim = simulator

    def _index(self, gpu: str) -> int:
        gpus = self._sim.gpus
        if gpu.isdigit():
            index = int(gpu)
            if index < len(gpus):
                return index
        for i, simulated in enumerate(gpus):
            if simulated.identity.uuid.lower() == gpu.lower():
                return i
        raise LookupError(f"no GPU {gpu!r} (give an index from 0 to {len(gpus) - 1} or a UUID)")

    def gpu_event(self, gpu: str, body: object) -> dict[str, Any]:
        """Apply one event in the scenario vocabulary (without ``at``) to GPU ``gpu`` (index or UUID)."""
        index = self._index(gpu)
        if not isinstance(body, Mapping):
            raise ValueError('expected a JSON object with one event, e.g. {"xid": 48}')
        event = parse_event(body)
        self._sim.apply_event(index, event)
        return {"gpu": index, "applied": event.describe(), "state": self._sim.state()[index]}

    def start_workload(self, body: object) -> dict[str, Any]:
        raise NotImplementedError("workloads are not available in this build")

    def stop_workload(self, key: str) -> dict[str, Any]:
        raise NotImplementedError("workloads are not available in this build")

    def state(self) -> dict[str, Any]:
        """The simulated state: scenario time, every GPU's faults."""
        clock = self._sim.clock
        return {
            "scenario_time_seconds": round(clock.t, 3),
            "time_scale": clock.time_scale,
            "updates": self._sim.steps_total,
            "gpus": self._sim.state(),
            "gpus_missing": self._sim.lost_gpus(),
        }

    def gpus_missing(self) -> list[int]:
        return self._sim.lost_gpus()

"""Drills on one simulated host: events for the host (reachability, power, fabric, cooling) or for a selection of
its GPUs, each answered with the token that undoes it; the host's reachability as its scrapers should meet it.

Runs in the worker process beside SimulatorControl; plain data in and out. ValueError: a bad request (400);
LookupError: no such GPU (404); UndoRefusedError: the event cannot be undone (409).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from otel_fakegpu.sim.events import GpuEvent, parse_event
from otel_fakegpu.sim.gpus import SimulatedGpu
from otel_fakegpu.sim.host_events import HostEvent, is_host_event, parse_host_event
from otel_fakegpu.sim.selectors import select_gpus
from otel_fakegpu.sim.simulator import Simulator

log = logging.getLogger(__name__)

COOLING_STAGGER_S = 20.0  # a rack's cooling fails GPU after GPU: each one this much later than the one before


class UndoRefusedError(ValueError):
    """The event happened and stays (an XID, error counts, a reboot): the control API answers 409."""


@dataclass
class HostDrill:
    """What the host's scrapers meet: its reachability, and whether it has power (without, connections fail)."""

    reachability: str = "ok"
    delay_s: float = 0.0
    powered: bool = True

    def serving(self) -> tuple[str, float]:
        return ("refused", 0.0) if not self.powered else (self.reachability, self.delay_s)


def _gpu_fault_kind(event: GpuEvent) -> str | None:
    """The lasting condition a GPU event sets (UNDOABLE in faults.py), None for one that just happens."""
    if event.kind == "load":
        return "load"
    if event.kind == "fault" and event.name != "recover":
        return event.name
    return None


class HostControl:
    """Applies drills to one host's simulator; ``rack_position`` staggers a rack's cooling failure across hosts."""

    def __init__(self, simulator: Simulator, name: str = "", rack: str = "r0", rack_position: int = 0) -> None:
        self._sim = simulator
        self.drill = HostDrill()
        self._name, self._rack, self._rack_position = name, rack, rack_position
        self._fired: list[dict[str, Any]] = []  # scripted host events applied, for the history

    def fire_scripted(self) -> None:
        """Apply the scenario's host events that came due and are for this host (after a simulator step)."""
        for scheduled in self._sim.take_host_events():
            event = scheduled.event
            if isinstance(event, HostEvent) and scheduled.for_host(self._name, self._rack):
                indices = list(range(len(self._sim.gpus))) if event.kind != "reachability" else []
                token = self._host(event, indices)
                log.info("scenario t=%.0fs host %s: %s", self._sim.now_s(), self._name, event.describe())
                self._fired.append(_fired(event.describe(), indices, self._sim.now_s(), token))

    def take_fired(self) -> list[dict[str, Any]]:
        """Scripted events (host and GPU) applied since the last call, oldest first."""
        gpu_events = [
            _fired(e, [gpu], t, {"kind": "gpus", "tokens": {str(gpu): token}} if token else None)
            for e, gpu, t, token in self._sim.take_fired()
        ]
        fired, self._fired = self._fired, []
        return sorted(gpu_events + fired, key=lambda f: float(f["scenario_time_s"]))

    def apply(self, body: object, gpus: object = None, host: str = "") -> dict[str, Any]:
        """One event (host or GPU vocabulary) now; GPU events reach the GPUs ``gpus`` selects (default all).
        Answers what it touched, the scenario time and the undo token (None when it cannot be undone)."""
        if not isinstance(body, Mapping):
            raise ValueError('expected a JSON object with one event, e.g. {"reachability": "timeout"}')
        if is_host_event(body):
            event = parse_host_event(body)
            indices = list(range(len(self._sim.gpus))) if event.kind != "reachability" else []
            token = self._host(event, indices)
            applied = event.describe()
        else:
            gpu_event = parse_event(body)
            indices = select_gpus(gpus, len(self._sim.gpus), host)
            kind = _gpu_fault_kind(gpu_event)
            tokens = self._sim.change(indices, _apply_gpu(gpu_event, kind))
            token = {"kind": "gpus", "tokens": dict(zip(map(str, indices), tokens, strict=True))} if kind else None
            applied = gpu_event.describe()
        return {"applied": applied, "gpus": indices, "scenario_time_s": round(self._sim.now_s(), 3), "undo": token}

    def _host(self, event: HostEvent, indices: list[int]) -> dict[str, Any] | None:
        drill = self.drill
        if event.kind == "reachability":
            token: dict[str, Any] | None = {"kind": "reachability", "was": [drill.reachability, drill.delay_s]}
            drill.reachability, drill.delay_s = event.state, event.delay_s
            return token
        if event.kind == "power":
            return self._power(event.state == "on", indices)
        if event.kind == "fabric":
            change = _set_fabric(event.state == "fail")
        else:
            change = _set_cooling(event.state == "fail", self._rack_position, len(indices))
        tokens = self._sim.change(indices, change)
        return {"kind": "gpus", "tokens": dict(zip(map(str, indices), tokens, strict=True))}

    def _power(self, on: bool, indices: list[int]) -> dict[str, Any] | None:
        was = self.drill.powered
        if on and not was:
            self._sim.change(indices, lambda gpu, t: gpu.faults.power_cycle(gpu.physics))
        elif not on:
            self._sim.change(indices, _power_off)
        self.drill.powered = on
        return {"kind": "power", "was": was} if not on and was else None

    def undo(self, token: Mapping[str, Any]) -> dict[str, Any]:
        """Put back what the event with ``token`` changed; raises UndoRefusedError for what cannot be."""
        kind = token.get("kind")
        if kind == "reachability":
            self.drill.reachability, self.drill.delay_s = str(token["was"][0]), float(token["was"][1])
        elif kind == "power":
            self._power(True, list(range(len(self._sim.gpus))))
        elif kind == "gpus":
            tokens = {int(i): t for i, t in dict(token["tokens"]).items()}
            self._sim.change(sorted(tokens), lambda gpu, t: gpu.faults.undo(tokens[gpu.identity.index], gpu.physics))
        else:
            raise UndoRefusedError(f"nothing to undo for {kind!r}")
        return {"undone": kind, "scenario_time_s": round(self._sim.now_s(), 3)}

    def serving(self) -> tuple[str, float]:
        return self.drill.serving()

    def state(self) -> dict[str, Any]:
        drill = self.drill
        return {"reachability": drill.reachability, "delay_s": drill.delay_s, "powered": drill.powered}


def _apply_gpu(event: GpuEvent, kind: str | None) -> Callable[[SimulatedGpu, float], dict[str, object] | None]:
    def change(gpu: SimulatedGpu, t: float) -> dict[str, object] | None:
        token = gpu.faults.undo_token(kind, gpu.physics) if kind else None
        gpu.faults.apply(event, gpu.physics, t)
        return token

    return change


def _set_fabric(fail: bool) -> Callable[[SimulatedGpu, float], dict[str, object] | None]:
    def change(gpu: SimulatedGpu, t: float) -> dict[str, object] | None:
        token = gpu.faults.undo_token("fabric", gpu.physics)
        if fail and gpu.identity.sku.nvlink_links:  # a GPU without NVLink has no fabric to lose
            gpu.faults.fail_fabric(gpu.physics)
        elif not fail:
            gpu.faults.fabric_down = False
        return token

    return change


def _set_cooling(fail: bool, rack_position: int, per_host: int) -> Callable[[SimulatedGpu, float], Any]:
    def change(gpu: SimulatedGpu, t: float) -> dict[str, object] | None:
        token = gpu.faults.undo_token("thermal_runaway", gpu.physics)
        if fail:
            begins = t + (rack_position * per_host + gpu.identity.index) * COOLING_STAGGER_S
            if gpu.faults.thermal_runaway_since is None:
                gpu.faults.thermal_runaway_since = begins
        else:
            gpu.faults.undo({"kind": "thermal_runaway", "was": None}, gpu.physics)
        return token

    return change


def _fired(event: Mapping[str, object], gpus: list[int], t: float, token: object) -> dict[str, Any]:
    return {"event": dict(event), "gpus": gpus, "scenario_time_s": round(t, 3), "undo": token}


def _power_off(gpu: SimulatedGpu, t: float) -> None:
    gpu.faults.powered_off = True

"""The simulator's side of the live control API: plain data in, plain data out.

``SimulatorControl`` runs in the worker process: its ``handlers()`` answer the ``control.*`` requests that the
serving side's ``ControlPort`` (runtime/remote_control.py) sends. Its methods take and return JSON-able values
only, so the simulator lives behind the process boundary; a bad request raises
ValueError (HTTP 400), an unknown GPU or workload LookupError (HTTP 404).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from otel_fakegpu.sim.events import parse_event
from otel_fakegpu.sim.gpus import SimulatedGpu
from otel_fakegpu.sim.host_control import HostControl, UndoRefusedError
from otel_fakegpu.sim.simulator import Simulator
from otel_fakegpu.sim.workloads import Workload, WorkloadError


class SimulatorControl:
    """Applies control requests to a running simulator; changes reach the engine before the call returns."""

    def __init__(self, simulator: Simulator, name: str = "", rack: str = "r0", rack_position: int = 0) -> None:
        self._sim = simulator
        self.host = HostControl(
            simulator, name, rack, rack_position
        )  # the host's drills: reachability, power, fabric, cooling

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
        parse_event(body)  # a host event is not for one GPU
        applied = self.host.apply(body, [index])
        state = self._sim.describe(_gpu_state, [index])[0]
        return {
            "gpu": index,
            "applied": applied["applied"],
            "state": state,
            "undo": applied["undo"],
            "t": applied["scenario_time_s"],
        }

    def start_workload(self, body: object) -> dict[str, Any]:
        """Place a workload (the scenario's keys; ``start``/``stop`` count from now); it drives its GPUs from
        the next update."""
        from otel_fakegpu.sim.scenario_file import parse_workload  # noqa: PLC0415 - with PyYAML: not every run drives workloads

        sim = self._sim
        layouts = {i: gpu.layout for i, gpu in enumerate(sim.gpus) if gpu.layout is not None}
        workload = parse_workload(body, len(sim.gpus), layouts)
        now = sim.now_s()
        stop = now + workload.stop_s if workload.stop_s is not None else None
        workload = dataclasses.replace(workload, start_s=now + workload.start_s, stop_s=stop)
        try:
            sim.add_workload(workload)
        except WorkloadError as exc:
            raise ValueError(str(exc)) from None
        sim.refresh([gpu for gpu, _ in workload.devices()])
        return _workload_state(workload)

    def stop_workload(self, key: str) -> dict[str, Any]:
        """Remove the workload ``namespace/pod/container``."""
        try:
            workload = self._sim.remove_workload(key)
        except KeyError:
            raise LookupError(f"no workload {key}") from None
        self._sim.refresh([gpu for gpu, _ in workload.devices()])
        return _workload_state(workload)

    def state(self) -> dict[str, Any]:
        """The simulated state: scenario time, every GPU's faults."""
        clock = self._sim.clock
        return {
            "scenario_time_seconds": round(clock.t, 3),
            "time_scale": clock.time_scale,
            "updates": self._sim.steps_total,
            "gpus": self._sim.describe(_gpu_state),
            "gpus_missing": self._sim.lost_gpus(),
            "workloads": [_workload_state(w) for w in self._sim.workloads()],
            "host": self.host.state(),
        }

    def gpus_missing(self) -> list[int]:
        return self._sim.lost_gpus()

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        """The port as request methods for a worker process: each takes the JSON args and answers
        ``{"result": ...}`` or ``{"error": message, "status": 400 | 404 | 409 | 501}`` (exceptions do not cross)."""
        methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "control.gpu_event": lambda args: self.gpu_event(str(args["gpu"]), args["body"]),
            "control.start_workload": lambda args: self.start_workload(args["body"]),
            "control.stop_workload": lambda args: self.stop_workload(str(args["key"])),
            "control.state": lambda args: self.state(),
            "control.apply": lambda args: self.host.apply(args["body"], args.get("gpus"), str(args.get("host", ""))),
            "control.undo": lambda args: self.host.undo(args["token"]),
        }
        return {name: _answering(method) for name, method in methods.items()}


def _answering(method: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def answer(args: dict[str, Any]) -> dict[str, Any]:
        try:
            return {"result": method(args)}
        except UndoRefusedError as exc:
            return {"error": str(exc), "status": 409}
        except LookupError as exc:  # before ValueError: KeyError is a LookupError too
            return {"error": str(exc.args[0]) if exc.args else "not found", "status": 404}
        except ValueError as exc:
            return {"error": str(exc), "status": 400}
        except NotImplementedError as exc:
            return {"error": str(exc) or "not supported", "status": 501}

    return answer


def _workload_state(workload: Workload) -> dict[str, Any]:
    return {
        "key": workload.key,
        "pod": workload.pod,
        "namespace": workload.namespace,
        "container": workload.container,
        "gpus": list(workload.gpus),
        "instances": [{"gpu": ref.gpu, "instance": ref.instance_id} for ref in workload.instances],
        "shape": workload.shape,
        "start_s": workload.start_s,
        "stop_s": workload.stop_s,
        "intensity": workload.intensity,
    }


def _gpu_state(index: int, gpu: SimulatedGpu) -> dict[str, Any]:
    return {
        "gpu": index,
        "uuid": gpu.identity.uuid,
        "model": gpu.identity.sku.key,
        "profile": None if gpu.workload_driven else gpu.profile.name,
        "mig_instances": [inst.instance_id for inst in gpu.layout.instances] if gpu.layout else [],
        "temperature_c": round(gpu.physics.temp_c, 1),
        "last_xid": gpu.physics.last_xid,
        "faults": gpu.faults.state(gpu.physics),
    }

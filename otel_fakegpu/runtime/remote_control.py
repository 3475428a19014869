"""The control API's port on the serving side: each call becomes a request to the worker that owns the host.

The worker answers ``{"result": ...}`` or ``{"error": ..., "status": ...}`` (sim.control.SimulatorControl.handlers);
the status comes back as the exception the control routes map to it. Every event applied through here is
recorded in the history (runtime/history.py), which lives in this process and so outlives reloads.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from otel_fakegpu.runtime.frames import RemoteError
from otel_fakegpu.runtime.history import EventHistory
from otel_fakegpu.runtime.pool import WorkerPool
from otel_fakegpu.serve.control import ConflictError, ControlUnavailableError
from otel_fakegpu.sim.events import EventError, parse_event
from otel_fakegpu.sim.host_events import is_host_event, parse_host_event
from otel_fakegpu.sim.selectors import HostFacts, check_gpu_selector, select_gpus, select_hosts

_RAISE = {400: ValueError, 404: LookupError, 409: ConflictError, 501: NotImplementedError}
FAN_OUT_KEYS = ("hosts", "gpus", "event")


def _check_event(body: object) -> dict[str, Any]:
    """The event of a request, validated here so that a bad one reaches no host at all."""
    if not isinstance(body, Mapping):
        raise ValueError('expected a JSON object with one event, e.g. {"reachability": "timeout"}')
    try:
        parse_host_event(body) if is_host_event(body) else parse_event(body)
    except EventError as exc:
        raise ValueError(str(exc)) from None
    return dict(body)


class RemoteControl:
    """ControlPort over the worker pool: a request goes to the worker owning the host it names."""

    def __init__(self, pool: WorkerPool, gpu_count: int, history: EventHistory | None = None) -> None:
        self._pool = pool
        self._gpu_count = gpu_count
        self.history = history or EventHistory()
        self._facts = [
            HostFacts(h.name, h.rack, {"instance": h.name, "Hostname": h.name, "rack": h.rack}) for h in pool.plan.hosts
        ]
        pool.on_fired = self._record_scripted

    def _record_scripted(self, host: str, fired: list[dict[str, Any]]) -> None:
        """Scenario events a worker applied: recorded like the API's (undoable when they last)."""
        for item in fired:
            token = item.get("undo")
            undo = {host: token} if token else {}
            self.history.add("scenario", item["event"], {host: item["gpus"]}, undo, item["scenario_time_s"])

    def hosts(self) -> list[str]:
        return [host.name for host in self._pool.plan.hosts]

    def _check_host(self, host: str | None) -> None:
        if host is not None and host not in self.hosts():
            raise LookupError(f"no host {host!r} in this process (hosts: {', '.join(self.hosts())})")

    @staticmethod
    def _result(answer: Any) -> dict[str, Any]:
        if "error" in answer:
            raise _RAISE.get(int(answer.get("status", 500)), RuntimeError)(str(answer["error"]))
        result = answer["result"]
        assert isinstance(result, dict)
        return result

    async def _call(self, method: str, args: dict[str, Any], host: str | None) -> dict[str, Any]:
        self._check_host(host)
        try:
            return self._result(await self._pool.call(method, args, host))
        except RemoteError as exc:  # the worker is not running (restarting after a crash) or did not answer
            raise ControlUnavailableError(str(exc)) from None

    async def _fan_out(self, method: str, calls: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        try:
            answers = await self._pool.fan_out(method, calls)
        except RemoteError as exc:  # the worker is not running (restarting after a crash) or did not answer
            raise ControlUnavailableError(str(exc)) from None
        return {host: self._result(answer) for host, answer in answers.items()}

    async def gpu_event(self, gpu: str, body: object, host: str | None = None) -> dict[str, Any]:
        result = await self._call("control.gpu_event", {"gpu": gpu, "body": body}, host)
        name = host or self.hosts()[0]
        token = result.pop("undo", None)
        record = self.history.add(
            "api", result["applied"], {name: [result["gpu"]]}, {name: token} if token else {}, result.get("t")
        )
        result.pop("t", None)
        return {"id": record.id, **result}

    async def host_event(self, body: object, host: str | None = None) -> dict[str, Any]:
        """``POST .../events`` of one host: a bare event for all its GPUs, or ``{"event", "gpus"}``."""
        self._check_host(host)
        name = host or self.hosts()[0]
        wrapped = isinstance(body, Mapping) and "event" in body
        request = dict(body) if wrapped else {"event": body}  # type: ignore[call-overload]
        return await self.fan_out({**request, "hosts": {"hosts": [name]}})

    async def fan_out(self, body: object) -> dict[str, Any]:
        """One event on every host (and GPUs of each) the selectors name, all in the same cycle of each worker."""
        if not isinstance(body, Mapping) or "event" not in body:
            raise ValueError(f'expected {{"hosts": SELECTOR, "gpus": SELECTOR, "event": {{...}}}}, got {body!r}')
        unknown = [key for key in body if key not in FAN_OUT_KEYS]
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(FAN_OUT_KEYS)})")
        event = _check_event(body["event"])
        if "hosts" not in body and len(self.hosts()) > 1:
            raise ValueError(f'name the hosts ("hosts": "all" or a selector): this process serves {len(self.hosts())}')
        hosts = select_hosts(body.get("hosts", "all"), self._facts)
        gpus = body.get("gpus")
        if is_host_event(event) and gpus not in (None, "all"):
            raise ValueError(f"gpus: a host event reaches every GPU of its hosts, got a GPU selector {gpus!r}")
        check_gpu_selector(gpus)
        select_gpus(gpus, self._gpu_count, hosts[0])  # an index out of range fails here, before any host
        results = await self._fan_out("control.apply", {h: {"body": event, "gpus": gpus} for h in hosts})
        undo = {h: r["undo"] for h, r in results.items() if r["undo"] is not None}
        targets = {h: results[h]["gpus"] for h in hosts}  # in fleet order, whichever worker answered first
        first = next(iter(results.values()))
        record = self.history.add("api", first["applied"], targets, undo, first["scenario_time_s"])
        return {**record.view(), "hosts": len(targets), "gpus": sum(len(g) for g in targets.values())}

    async def events(self, host: str | None = None, gpu: int | None = None, kind: str | None = None) -> dict[str, Any]:
        self._check_host(host)
        return self.history.listing(host, gpu, kind)

    async def undo(self, record_id: int) -> dict[str, Any]:
        """Undo event ``record_id`` on every host it touched; ConflictError when it cannot be undone."""
        record = self.history.get(record_id)
        if record is None:
            raise LookupError(f"no event {record_id} (the history holds the last {self.history.listing()['limit']})")
        if record.undone_at is not None:
            raise ConflictError(f"event {record_id} is already undone")
        if not record.undo:
            raise ConflictError(f"event {record_id} ({record.kind}) cannot be undone: what it did stays done")
        await self._fan_out("control.undo", {h: {"token": token} for h, token in record.undo.items()})
        record.undone_at = time.time()
        return record.view()

    async def start_workload(self, body: object, host: str | None = None) -> dict[str, Any]:
        return await self._call("control.start_workload", {"body": body}, host)

    async def stop_workload(self, key: str, host: str | None = None) -> dict[str, Any]:
        return await self._call("control.stop_workload", {"key": key}, host)

    async def state(self, host: str | None = None) -> dict[str, Any]:
        return await self._call("control.state", {}, host)

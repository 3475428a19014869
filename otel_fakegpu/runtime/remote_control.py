"""The control API's port on the serving side: each call becomes a request to the worker that owns the host.

The worker answers ``{"result": ...}`` or ``{"error": ..., "status": ...}`` (sim.control.SimulatorControl.handlers);
the status comes back as the exception the control routes map to it.
"""

from __future__ import annotations

from typing import Any

from otel_fakegpu.runtime.frames import RemoteError
from otel_fakegpu.runtime.pool import WorkerPool
from otel_fakegpu.serve.control import ControlUnavailableError

_RAISE = {400: ValueError, 404: LookupError, 501: NotImplementedError}


class RemoteControl:
    """ControlPort over the worker pool: a request goes to the worker owning the host it names."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool

    def hosts(self) -> list[str]:
        return [host.name for host in self._pool.plan.hosts]

    async def _call(self, method: str, args: dict[str, Any], host: str | None) -> dict[str, Any]:
        if host is not None and host not in self.hosts():
            raise LookupError(f"no host {host!r} in this process (hosts: {', '.join(self.hosts())})")
        try:
            answer = await self._pool.call(method, args, host)
        except RemoteError as exc:  # the worker is not running (restarting after a crash) or did not answer
            raise ControlUnavailableError(str(exc)) from None
        if "error" in answer:
            raise _RAISE.get(int(answer.get("status", 500)), RuntimeError)(str(answer["error"]))
        result = answer["result"]
        assert isinstance(result, dict)
        return result

    async def gpu_event(self, gpu: str, body: object, host: str | None = None) -> dict[str, Any]:
        return await self._call("control.gpu_event", {"gpu": gpu, "body": body}, host)

    async def start_workload(self, body: object, host: str | None = None) -> dict[str, Any]:
        return await self._call("control.start_workload", {"body": body}, host)

    async def stop_workload(self, key: str, host: str | None = None) -> dict[str, Any]:
        return await self._call("control.stop_workload", {"key": key}, host)

    async def state(self, host: str | None = None) -> dict[str, Any]:
        return await self._call("control.state", {}, host)

"""The control API's port on the serving side: each call becomes a request to the worker that owns the host.

The worker answers ``{"result": ...}`` or ``{"error": ..., "status": ...}`` (sim.control.SimulatorControl.handlers);
the status comes back as the exception the control routes map to it.
"""

from __future__ import annotations

from typing import Any

from otel_fakegpu.runtime.frames import RemoteError
from otel_fakegpu.runtime.pool import WorkerPool

_RAISE = {400: ValueError, 404: LookupError, 501: NotImplementedError}


class RemoteControl:
    """ControlPort over the worker pool; a fleet of several hosts is not addressed by the control API yet."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool

    def _call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = self._pool.call_threadsafe(method, args)
        except RemoteError as exc:
            if "name a host" in str(exc):
                raise NotImplementedError("the control API drives a single host; this process serves a fleet") from None
            raise RuntimeError(str(exc)) from None
        if "error" in answer:
            raise _RAISE.get(int(answer.get("status", 500)), RuntimeError)(str(answer["error"]))
        result = answer["result"]
        assert isinstance(result, dict)
        return result

    def gpu_event(self, gpu: str, body: object) -> dict[str, Any]:
        return self._call("control.gpu_event", {"gpu": gpu, "body": body})

    def start_workload(self, body: object) -> dict[str, Any]:
        return self._call("control.start_workload", {"body": body})

    def stop_workload(self, key: str) -> dict[str, Any]:
        return self._call("control.stop_workload", {"key": key})

    def state(self) -> dict[str, Any]:
        return self._call("control.state", {})

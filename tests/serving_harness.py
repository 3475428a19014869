"""An in-process server for the hardening tests of the HTTP layer: the real application (build_app) and listeners
(serve.http.start) on a loopback port, with a recording control port; its log records are kept for the checks."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from otel_fakegpu.outputs import Format
from otel_fakegpu.serve import HealthReport, Listeners, build_app, start
from tests.conftest import free_port

TOKEN = "s3cret-token"
PAGE = b"# HELP x x\n# TYPE x gauge\nx 1\n"


class PageSource:
    """A published page (the serving side's copy); one host."""

    def hosts(self) -> Sequence[str]:
        return ["node-1"]

    def host_labels(self, host: str) -> Mapping[str, str]:
        return {}

    def serving(self, host: str | None) -> tuple[str, float]:
        return "ok", 0.0

    async def exposition(self, host: str | None, fmt: Format, gzipped: bool) -> tuple[bytes, float] | None:
        return PAGE, time.time()

    def cached(self, host: str | None, fmt: Format, gzipped: bool) -> tuple[bytes, float] | None:
        return PAGE, time.time()  # held: plain requests take the fast path (serve/pages.py)


@dataclass
class RecordingPort:
    """A control port that records what reached it (a real simulator is not needed to test the HTTP layer)."""

    calls: list[tuple[str, object]] = field(default_factory=list)
    fail_with: BaseException | None = None

    def hosts(self) -> list[str]:
        return ["node-1"]

    async def _answer(self, name: str, body: object) -> dict[str, Any]:
        self.calls.append((name, body))
        if self.fail_with is not None:
            raise self.fail_with
        return {"ok": True}

    async def gpu_event(self, gpu: str, body: object, host: str | None = None) -> dict[str, Any]:
        return await self._answer("gpu_event", body)

    async def start_workload(self, body: object, host: str | None = None) -> dict[str, Any]:
        return await self._answer("start_workload", body)

    async def stop_workload(self, key: str, host: str | None = None) -> dict[str, Any]:
        return await self._answer("stop_workload", key)

    async def state(self, host: str | None = None) -> dict[str, Any]:
        return await self._answer("state", None)

    async def host_event(self, body: object, host: str | None = None) -> dict[str, Any]:
        return await self._answer("host_event", body)

    async def fan_out(self, body: object) -> dict[str, Any]:
        return await self._answer("fan_out", body)

    async def events(self, host: str | None = None, gpu: int | None = None, kind: str | None = None) -> dict[str, Any]:
        return await self._answer("events", None)

    async def undo(self, record_id: int) -> dict[str, Any]:
        return await self._answer("undo", record_id)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Server:
    port: int
    control: RecordingPort
    records: list[logging.LogRecord]

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def errors(self) -> list[logging.LogRecord]:
        """What was logged at WARNING or above, or with a traceback."""
        return [r for r in self.records if r.levelno >= logging.WARNING or r.exc_info]


@contextmanager
def serving(idle_timeout_s: float = 2.0, token: str | None = TOKEN) -> Iterator[Server]:
    port, control, handler = free_port(), RecordingPort(), _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    loop = asyncio.new_event_loop()
    ready, stop = threading.Event(), asyncio.Event()

    async def main() -> None:
        app = build_app(PageSource(), lambda: HealthReport(True, {"status": "healthy"}), None, control, token)
        runner = await start(app, Listeners(tcp=("127.0.0.1", port), idle_timeout_s=idle_timeout_s))
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield Server(port, control, handler.records)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
        root.removeHandler(handler)
        root.setLevel(previous_level)


def exchange(server: Server, request: bytes, wait_s: float = 5.0) -> bytes:
    """Send ``request`` and read until the server closes or ``wait_s`` passes; the bytes received."""
    with server.connect() as sock:
        sock.sendall(request)
        sock.settimeout(wait_s)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
        return received

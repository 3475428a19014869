"""The serving process's side of the workers: reads what they publish, restarts the dead ones (spawn.py forks).

Requests to the collection side go through ``call`` and ``broadcast``, awaited on the event loop: a port object
on the serving side is a thin proxy over them (the message contract is in frames.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from otel_fakegpu.outputs import Format
from otel_fakegpu.runtime.fleet import FleetPlan
from otel_fakegpu.runtime.frame_reader import FrameReader
from otel_fakegpu.runtime.frames import Blob, Header, RemoteError, encode_frame, offer_frame
from otel_fakegpu.runtime.published import HostExposition, PublishedFleet
from otel_fakegpu.runtime.spawn import StartupFailure, WorkerHandle, spawn_worker
from otel_fakegpu.runtime.worker import CollectionFactory, WorkerSettings, variant_from_json, variant_to_json

log = logging.getLogger(__name__)

RESTART_BACKOFF_S = (0.5, 30.0)  # first delay, cap; doubling in between
STABLE_AFTER_S = 60.0  # a worker that lived this long restarts with the first delay again
CALL_TIMEOUT_S = 60.0
DEMAND_KEEP_INTERVALS = 3  # a variant no scrape asked for in this many cycles is no longer built eagerly,
DEMAND_KEEP_MIN_S = 300.0  # nor in this long: a 15 s scrape of a 1 s cycle must not miss at each of its scrapes


def demand_keep_s(collect_interval_s: float) -> float:
    """How long a variant nobody asks for is still built every cycle."""
    return max(DEMAND_KEEP_INTERVALS * collect_interval_s, DEMAND_KEEP_MIN_S)


class WorkerPool:
    """One handle per worker; frames from each are read by a task of the event loop."""

    def __init__(
        self,
        plan: FleetPlan,
        factory: CollectionFactory,
        settings: WorkerSettings,
        published: PublishedFleet,
        workers: Sequence[WorkerHandle],
    ) -> None:
        """``workers``: the plan's, forked already (spawn.fork_workers, before this module is imported); ``factory``
        and ``settings`` fork a dead one again."""
        self.plan = plan
        self.settings = settings
        self.published = published
        self._factory = factory
        self._workers = list(workers)
        self._owner = {host.name: w for w in self._workers for host in w.hosts}
        self._pending: dict[int, tuple[WorkerHandle, asyncio.Future[Any]]] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._startup_news = asyncio.Event()  # a worker became ready, failed or exited (wait_ready wakes)
        self.on_fired: Callable[[str, list[dict[str, Any]]], None] = lambda host, fired: None  # the history's
        published.builder = self._build_variant
        published.on_new_demand = self._send_demand

    @property
    def workers(self) -> Sequence[WorkerHandle]:
        return self._workers

    def _spawn(self, worker: WorkerHandle) -> None:
        # Its first cycle's publish builds what is asked for already.
        spawn_worker(worker, self._workers, self._factory, self.settings, frozenset(self.published.demand))
        for host in worker.hosts:  # a new worker starts without drills: its hosts answer again
            self.published.set_serving(host.name, "ok", 0.0)
        log.debug("worker %d (pid %d) serves %d hosts", worker.slot, worker.process.pid, len(worker.hosts))

    async def attach(self) -> None:
        """Start reading every worker's frames on the running loop."""
        for worker in self._workers:
            await self._attach(worker)

    async def _attach(self, worker: WorkerHandle) -> None:
        assert worker.sock is not None
        # The worker starts its hosts: this side takes their cycles now. Sent before the loop's transport exists,
        offer_frame(worker.sock, {"kind": "go"})  # whose failed write would drop a failed worker's frame saying why
        worker.writer, frames = await asyncio.get_running_loop().create_unix_connection(FrameReader, sock=worker.sock)
        task = asyncio.create_task(self._read(worker, frames), name=f"worker-{worker.slot}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_ready(self) -> StartupFailure | None:
        """Until every worker published its first cycle; what went wrong if one could not start."""
        while True:  # one event loop: nothing sets the news between its clear and the checks after it
            self._startup_news.clear()
            if all(w.ready for w in self._workers):
                return None
            failed = next((w for w in self._workers if not w.alive or w.fatal), None)
            if failed is not None:
                return failed.fatal or StartupFailure(f"worker {failed.slot} exited during start-up", 1)
            await self._startup_news.wait()

    async def _read(self, worker: WorkerHandle, frames: FrameReader) -> None:
        try:
            while True:
                header, blobs = await frames.read()
                self._on_frame(worker, header, blobs)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            if not self._closing:
                log.debug("worker %d connection ended: %r", worker.slot, exc)
        await self._on_exit(worker)

    def _on_frame(self, worker: WorkerHandle, header: Header, blobs: list[Blob]) -> None:
        kind = header["kind"]
        if kind == "publish":
            variants = {variant_from_json(v): blob for v, blob in zip(header["variants"], blobs, strict=True)}
            exposition = HostExposition(header["cycle"], header["collected_at"], variants)
            self.published.store(header["host"], exposition)
        elif kind == "status":
            worker.facts = header["hosts"]
            worker.cycle_seconds = header["recent_cycle_seconds"]
            self.published.note_status(time.time())
            for host, fired in header.get("fired", {}).items():
                self.on_fired(host, fired)
            self.published.forget_unasked(demand_keep_s(self.settings.collect_interval_s))
        elif kind == "serving":
            self.published.set_serving(str(header["host"]), str(header["mode"]), float(header["delay_s"]))
        elif kind == "fatal":
            worker.fatal = StartupFailure(str(header["error"]), int(header["exit_code"]))
            self._startup_news.set()
        elif kind == "ready":
            worker.ready, worker.failures_in_a_row = True, 0
            self._startup_news.set()
        elif kind == "reply":
            _, future = self._pending.pop(header["id"], (worker, None))
            if future is not None and not future.done():
                if header["ok"]:
                    future.set_result(header.get("result"))
                else:
                    future.set_exception(RemoteError(header.get("error", "request failed")))

    async def _on_exit(self, worker: WorkerHandle) -> None:
        worker.alive = False
        self._startup_news.set()
        # Said at once: the socket closes before the kernel can report the exit code, which may take a moment.
        worker.detail = f"worker process {worker.process.pid} exited"
        if worker.writer is not None:
            worker.writer.close()
        worker.writer, worker.sock = None, None
        code = await self._reap(worker.process)
        for owner, future in list(self._pending.values()):
            if owner is worker and not future.done():
                future.set_exception(RemoteError(f"worker {worker.slot} exited before answering"))
        if self._closing or worker.fatal is not None:
            return
        lived = time.monotonic() - worker.started_at
        worker.failures_in_a_row = 1 if lived > STABLE_AFTER_S else worker.failures_in_a_row + 1
        first, cap = RESTART_BACKOFF_S
        delay = min(cap, first * 2 ** (worker.failures_in_a_row - 1))
        worker.detail = f"worker process {worker.process.pid} exited with code {code}; restarting in {delay:g} s"
        log.error("worker %d: %s", worker.slot, worker.detail)
        await asyncio.sleep(delay)
        if not self._closing:
            worker.restarts += 1
            self._spawn(worker)
            await self._attach(worker)

    @staticmethod
    async def _reap(process: Any, wait_s: float = 5.0) -> int | None:
        deadline = time.monotonic() + wait_s
        while process.exitcode is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if process.exitcode is None:
            process.kill()
            await asyncio.sleep(0.05)
        code: int | None = process.exitcode
        return code

    def _send(self, worker: WorkerHandle, header: Header) -> bool:
        if worker.writer is None or not worker.alive:
            return False
        worker.writer.writelines(encode_frame(header))
        return True

    def _send_demand(self) -> None:
        demand = [variant_to_json(v) for v in sorted(self.published.demand, key=str)]
        for worker in self._workers:
            self._send(worker, {"kind": "demand", "variants": demand})

    async def _build_variant(self, host: str, fmt: Format, gzipped: bool) -> None:
        await self.call("variant", {"format": fmt.name, "gzipped": gzipped}, host)

    async def call(self, method: str, args: dict[str, Any], host: str | None = None) -> Any:
        """Call ``method`` on ``host``'s collection (None: the only host); RemoteError if it fails or is gone."""
        if host is None:
            if len(self.plan.hosts) != 1:
                raise RemoteError(f"{method}: name a host, this process serves {len(self.plan.hosts)}")
            host = self.plan.hosts[0].name
        worker = self._owner.get(host)
        if worker is None:
            raise RemoteError(f"{method}: no host {host!r} here")
        return await self._request(worker, method, args, host)

    async def broadcast(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Call ``method`` on every host's collection, every worker at once; the results by host name."""
        replies = await asyncio.gather(*(self._request(worker, method, args, None) for worker in self._workers))
        results: dict[str, Any] = {}
        for worker, reply in zip(self._workers, replies, strict=True):
            results.update(reply if len(worker.hosts) > 1 else {worker.hosts[0].name: reply})
        return results

    async def fan_out(self, method: str, calls: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """``method`` on each host of ``calls`` with its args: one request per worker, all workers at once, each
        applying to all its hosts between two cycles. Results by host; RemoteError if a worker fails."""
        by_worker: dict[int, dict[str, dict[str, Any]]] = {}
        for host, args in calls.items():
            worker = self._owner.get(host)
            if worker is None:
                raise RemoteError(f"{method}: no host {host!r} here")
            by_worker.setdefault(worker.slot, {})[host] = args
        requests = [
            self._request(self._workers[slot], "fanout", {"method": method, "calls": mine}, None)
            for slot, mine in by_worker.items()
        ]
        results: dict[str, Any] = {}
        for reply in await asyncio.gather(*requests):
            results.update(reply)
        return results

    async def _request(self, worker: WorkerHandle, method: str, args: dict[str, Any], host: str | None) -> Any:
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (worker, future)
        request = {"kind": "request", "id": request_id, "method": method, "host": host, "args": args}
        if not self._send(worker, request):
            self._pending.pop(request_id, None)
            raise RemoteError(f"{method}: worker {worker.slot} is not running ({worker.detail})")
        try:
            return await asyncio.wait_for(future, CALL_TIMEOUT_S)
        except asyncio.TimeoutError as exc:
            raise RemoteError(f"{method}: no answer from worker {worker.slot} in {CALL_TIMEOUT_S:g} s") from exc
        finally:
            self._pending.pop(request_id, None)

    async def close(self, timeout_s: float = 20.0) -> None:
        """Close every worker's socket (it then stops by itself, flushing its pushes), wait, kill stragglers."""
        self._closing = True
        for worker in self._workers:
            if worker.writer is not None:
                worker.writer.close()
            elif worker.sock is not None:
                worker.sock.close()
        deadline = time.monotonic() + timeout_s
        for worker in self._workers:
            process = worker.process
            while process is not None and process.exitcode is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if process is not None and process.exitcode is None:
                log.warning("worker %d did not stop in %g s; killing it", worker.slot, timeout_s)
                process.kill()
                process.join(5)
        for task in list(self._tasks):
            task.cancel()

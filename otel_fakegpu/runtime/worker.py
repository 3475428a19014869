"""A worker process: simulates its hosts, runs their cycles and publishes the rendered bytes to the server.

Threads: the process's main thread answers the server's requests; one thread steps every host's simulator; one
runs every host's cycle on a fixed rate and publishes each host's exposition as soon as it is rendered. The
worker stops when the server closes the socket (a server that dies leaves no orphan behind).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from otel_fakegpu.engine import EngineUnavailable
from otel_fakegpu.host.spec import Handler, HostSpec
from otel_fakegpu.outputs import Exposition, Format, Variant
from otel_fakegpu.runtime.frames import Header, read_frame, write_frame
from otel_fakegpu.runtime.memory import hold_collection, settle_memory, trim_heap
from otel_fakegpu.telemetry.liveness import Liveness
from otel_fakegpu.telemetry.stats import RECENT_CYCLES

log = logging.getLogger(__name__)

ALL_VARIANTS: tuple[Variant, ...] = tuple((fmt, gz) for fmt in Format for gz in (False, True))


class Collection(Protocol):
    """One host's collection side (engine, simulator, pipeline, outputs) as a worker drives it."""

    def prepare(self) -> None: ...  # create the GPUs (before the server takes cycles)
    def start(self) -> None: ...  # create the GPUs unless prepared, and run the first cycle
    def step(self) -> None: ...  # advance the simulated values to now
    def run_cycle(self) -> bool: ...  # one engine read, one SDK collection, every output
    def latest(self) -> Exposition | None: ...
    def facts(self) -> dict[str, Any]: ...  # JSON-able health facts (see runtime.status.health_report)
    def handlers(self) -> Mapping[str, Handler]: ...  # request methods: control events, reload hooks
    def serving(self) -> tuple[str, float]: ...  # what its scrapers meet: reachability mode and delay (drills)
    def take_fired(self) -> list[dict[str, Any]]: ...  # scripted events applied since the last call (history)
    def stop(self) -> None: ...


CollectionFactory = Callable[[HostSpec], Collection]


@dataclass(frozen=True)
class WorkerSettings:
    collect_interval_s: float
    update_interval_s: float


def variant_to_json(variant: Variant) -> list[Any]:
    return [variant[0].name, variant[1]]


def variant_from_json(item: Any) -> Variant:
    return Format[str(item[0])], bool(item[1])


class Worker:
    """Drives the collections of its hosts and speaks the frame protocol to the server."""

    def __init__(
        self,
        sock: socket.socket,
        hosts: tuple[HostSpec, ...],
        factory: CollectionFactory,
        settings: WorkerSettings,
        demand: frozenset[Variant] = frozenset({(Format.PROMETHEUS, False)}),
    ) -> None:
        self._sock = sock
        self._hosts = hosts
        self._factory = factory
        self._settings = settings
        self._write_lock = threading.Lock()
        self._collections: dict[str, Collection] = {}
        self._published: dict[str, tuple[int, frozenset[Variant]]] = {}
        self._demand = demand  # the variants to build as each cycle is published; the server updates it
        self._durations: deque[float] = deque(maxlen=RECENT_CYCLES)
        self._stop = threading.Event()
        self._liveness = Liveness()  # a loop that dies is reported in every host's facts: /health fails
        # Held by a cycle over every host and by a fan-out over several: a scraper sees a fan-out on all of this
        # worker's hosts from the same pass, never on some hosts a pass before the others.
        self._pass_lock = threading.Lock()
        self._serving: dict[str, tuple[str, float]] = {}  # what the server was last told of each host's drill

    def run(self) -> None:
        """Start every host, publish its first cycle, then serve requests until the server goes away."""
        threads: list[threading.Thread] = []
        try:
            hold_collection()
            if not self._guarded(self._build_collections):
                return
            self._await_go()
            started = time.perf_counter()
            if not self._guarded(self._start_collections):
                return
            for name in self._collections:
                self._publish(name)
            self._durations.append(time.perf_counter() - started)
            self._send_status()
            self._send({"kind": "ready"})
            for name, loop in (("simulator", self._simulate), ("cycle", self._cycle)):
                guarded = self._liveness.guard_plain(name, loop, self._stop)
                threads.append(threading.Thread(target=guarded, name=name, daemon=True))
                threads[-1].start()
            self._serve_requests()
        except (EOFError, OSError):
            log.debug("server closed the connection")
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=30)
            for collection in self._collections.values():
                collection.stop()

    def _build_collections(self) -> None:
        """Each host's collection, its simulated GPUs made (while the serving process starts: cycles wait for go)."""
        for host in self._hosts:
            self._collections[host.name] = collection = self._factory(host)
            collection.prepare()

    def _await_go(self) -> None:
        """Until ``go``: a first cycle made while the serving process loads aiohttp would age unseen (a replay's)."""
        while (header := read_frame(self._sock)[0])["kind"] != "go":
            if header["kind"] == "demand":
                self._demand = frozenset(variant_from_json(v) for v in header["variants"])

    def _start_collections(self) -> None:
        for collection in self._collections.values():
            collection.start()

    def _guarded(self, step: Callable[[], None]) -> bool:
        """Run a start-up step; a failure is told to the server (``fatal``) instead of a traceback."""
        try:
            step()
        except EngineUnavailable as exc:  # the environment's fault: one line, exit code 2
            self._send({"kind": "fatal", "error": str(exc), "exit_code": 2})
            return False
        except Exception as exc:
            log.exception("worker start-up failed")
            self._send({"kind": "fatal", "error": f"worker start-up failed: {exc}", "exit_code": 1})
            return False
        return True

    def _send(self, header: Header, blobs: tuple[bytes, ...] = ()) -> None:
        with self._write_lock:
            write_frame(self._sock, header, blobs)

    def _serve_requests(self) -> None:
        while True:
            header, _ = read_frame(self._sock)
            if header["kind"] == "demand":
                self._demand = frozenset(variant_from_json(v) for v in header["variants"])
            elif header["kind"] == "request":
                self._answer(header)

    def _answer(self, request: Header) -> None:
        try:
            result = self._dispatch(str(request["method"]), request.get("host"), dict(request.get("args") or {}))
            reply: Header = {"kind": "reply", "id": request["id"], "ok": True, "result": result}
        except Exception as exc:  # the caller gets the error; the worker carries on
            reply = {"kind": "reply", "id": request["id"], "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        self._send(reply)

    def _dispatch(self, method: str, host: str | None, args: dict[str, Any]) -> Any:
        if method == "ping":
            return "pong"
        if method == "variant":
            name = host or next(iter(self._collections))
            return self._publish_variant(name, (Format[str(args["format"])], bool(args["gzipped"])))
        if method == "fanout":  # one method on several hosts of this worker, between two passes of the cycle
            with self._pass_lock:
                return self._run_on(
                    str(args["method"]), {str(h): {**a, "host": h} for h, a in dict(args["calls"]).items()}
                )
        targets = [host] if host is not None else list(self._collections)
        results = self._run_on(method, dict.fromkeys(targets, args))
        return results[targets[0]] if host is not None or len(targets) == 1 else results

    def _run_on(self, method: str, calls: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """``method`` on each host of ``calls`` with its args; every host's drill and page go out after all ran."""
        results = {}
        for name, args in calls.items():
            handler = self._collections[name].handlers().get(method)
            if handler is None:
                raise KeyError(f"no method {method!r}")
            results[name] = handler(args)
        for name in calls:
            self._tell_serving(name)  # before the reply: the server knows the drill when the request returns
            self._publish(name)  # a handler may have run a cycle (a reload does): scrapers see it at once
        return results

    def _tell_serving(self, name: str) -> None:
        """Tell the server what the host's scrapers meet now, when it changed (a drill or a scripted event)."""
        mode, delay_s = self._collections[name].serving()
        if self._serving.get(name, ("ok", 0.0)) != (mode, delay_s):
            self._serving[name] = (mode, delay_s)
            self._send({"kind": "serving", "host": name, "mode": mode, "delay_s": delay_s})

    def _publish(self, name: str) -> None:
        """Send the host's current exposition with the variants in demand (skipped if already sent). A cycle with
        nothing in demand is still sent, bare: the server then knows its older bytes are no longer current."""
        exposition = self._collections[name].latest()
        if exposition is None:
            return
        demand = self._demand
        built = tuple(v for v in ALL_VARIANTS if v in demand)
        if self._published.get(name) == (exposition.cycle, frozenset(built)):
            return  # before building anything: a compacted exposition would decompress its text for nothing
        self._published[name] = (exposition.cycle, frozenset(built))
        self._send_publication(name, exposition, built)

    def _publish_variant(self, name: str, variant: Variant) -> bool:
        """Build one variant of the current cycle and send it alone (the server merges it into that cycle)."""
        exposition = self._collections[name].latest()
        if exposition is None:
            return False
        exposition.prepare((variant,))
        self._send_publication(name, exposition, (variant,))
        return True

    def _send_publication(self, name: str, exposition: Exposition, built: tuple[Variant, ...]) -> None:
        header = {
            "kind": "publish",
            "host": name,
            "cycle": exposition.cycle,
            "collected_at": exposition.collected_at,
            "variants": [variant_to_json(v) for v in built],
        }
        self._send(header, tuple(exposition.variant(*v) for v in built))
        exposition.compact()  # the server holds what it was sent; keep the least here

    def _send_status(self) -> None:
        dead = self._liveness.dead()
        hosts = {
            name: {**c.facts(), "dead_loops": {**c.facts().get("dead_loops", {}), **dead}}
            for name, c in self._collections.items()
        }
        fired = {name: f for name, c in self._collections.items() if (f := c.take_fired())}
        status = {"kind": "status", "hosts": hosts, "recent_cycle_seconds": list(self._durations), "fired": fired}
        self._send(status)

    def _cycle(self) -> None:
        interval = self._settings.collect_interval_s
        next_at = time.monotonic() + interval
        # Settled <= 1 s after ready: the first scrapes are served without its full collection (~75 ms CPU) beside.
        if self._stop.wait(min(interval, 1.0)):
            return
        settle_memory()
        trim_heap()
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            started = time.perf_counter()
            try:
                with self._pass_lock:
                    for name, collection in self._collections.items():
                        if collection.run_cycle():
                            self._tell_serving(name)
                            self._publish(name)
                self._durations.append(time.perf_counter() - started)
                self._send_status()
                trim_heap()  # the pass's freed pages back to the system: a fleet's PSS, not its garbage
            except OSError:  # the server has gone; the main thread sees it too and stops the worker
                return
            except Exception:  # one bad cycle or publish must not end the loop
                log.exception("worker cycle failed; next one at the usual time")
            next_at += interval
            behind = time.monotonic() - next_at
            if behind > 0:  # a cycle longer than the interval: skip missed slots rather than burst
                next_at += interval * (int(behind / interval) + 1)

    def _simulate(self) -> None:
        while not self._stop.wait(self._settings.update_interval_s):
            for collection in self._collections.values():
                try:
                    collection.step()
                except Exception:
                    log.exception("simulator step failed; retrying next interval")


def child_main(
    sock: socket.socket, inherited: list[int], hosts: tuple[HostSpec, ...], factory: CollectionFactory,
    settings: WorkerSettings, demand: frozenset[Variant],
) -> None:  # fmt: skip
    """The worker's entry after fork: drop what belongs to the server, then run."""
    signal.set_wakeup_fd(-1)  # else a signal to the worker would wake the server's event loop
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the server decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    for fd in inherited:  # the server's ends: holding one would hide the server's death from a worker
        with contextlib.suppress(OSError):
            os.close(fd)
    Worker(sock, hosts, factory, settings, demand).run()

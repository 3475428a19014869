"""Forking a worker process: the serving process's part before its event loop exists, and again to restart one.

Nothing here loads asyncio: main.py forks the workers before it imports the event-loop side (pool.py, published.py,
aiohttp), so a worker's start does not wait for those imports (~17 ms of asyncio alone) and they load beside it.
"""

from __future__ import annotations

import multiprocessing
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from otel_fakegpu.host.spec import HostSpec
from otel_fakegpu.outputs import Format, Variant
from otel_fakegpu.runtime.fleet import FleetPlan
from otel_fakegpu.runtime.worker import CollectionFactory, WorkerSettings, child_main

if TYPE_CHECKING:
    import asyncio


@dataclass(frozen=True)
class StartupFailure:
    message: str
    exit_code: int


@dataclass
class WorkerHandle:
    slot: int
    hosts: tuple[HostSpec, ...]
    process: Any = None  # multiprocessing.Process (untyped in typeshed's fork context)
    sock: socket.socket | None = None
    writer: asyncio.Transport | None = None  # set by the pool once the event loop reads its frames
    started_at: float = 0.0
    alive: bool = False
    ready: bool = False
    restarts: int = 0
    failures_in_a_row: int = 0
    detail: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    cycle_seconds: list[float] = field(default_factory=list)
    fatal: StartupFailure | None = None  # why it could not start (then it is not restarted)


def first_variant(hosts: int) -> Variant:
    """What the workers build before any scrape asked: the text, gzipped in a fleet, whose pages are held gzipped
    only (PublishedFleet.gzip_only; published.py says why)."""
    return (Format.PROMETHEUS, hosts > 1)


def fork_workers(
    plan: FleetPlan, factory: CollectionFactory, settings: WorkerSettings, demand: frozenset[Variant]
) -> list[WorkerHandle]:
    """A handle for each worker of ``plan``, its process forked (the first cycle's publish builds ``demand``)."""
    workers = [WorkerHandle(slot, hosts) for slot, hosts in enumerate(plan.assignments)]
    for worker in workers:
        spawn_worker(worker, workers, factory, settings, demand)
    return workers


def spawn_worker(
    worker: WorkerHandle,
    workers: Sequence[WorkerHandle],
    factory: CollectionFactory,
    settings: WorkerSettings,
    demand: frozenset[Variant],
) -> None:
    """Fork ``worker``'s process; it closes the serving ends of every other worker's socket (``workers``)."""
    server_end, worker_end = socket.socketpair()
    inherited = [w.sock.fileno() for w in workers if w.sock is not None] + [server_end.fileno()]
    context = multiprocessing.get_context("fork")
    process = context.Process(
        target=child_main,
        args=(worker_end, inherited, worker.hosts, factory, settings, demand),
        name=f"otel-fakegpu-worker-{worker.slot}",
        daemon=True,
    )
    process.start()
    worker_end.close()
    worker.process, worker.sock, worker.started_at = process, server_end, time.monotonic()
    worker.alive, worker.ready, worker.detail = True, False, ""
    worker.facts, worker.cycle_seconds = {}, []  # its hosts are "starting" until it reports

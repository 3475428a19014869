"""Processes under test: start (the exporter on a free port), wait until ready, read their RSS and CPU time
from /proc, read the exporter's /health."""

from __future__ import annotations

import compileall
import functools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import free_port

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PACKAGE = Path(__file__).resolve().parent.parent / "otel_fakegpu"


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    started_at: float

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def cpu_seconds(self, pid: int | None = None) -> float:
        with open(f"/proc/{pid or self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def tree_pids(self) -> list[int]:
        """This process and its descendants (the exporter's worker processes)."""
        pids, frontier = [self.pid], [self.pid]
        while frontier:
            parent = frontier.pop()
            for task in Path(f"/proc/{parent}/task").glob("*/children"):
                children = [int(c) for c in task.read_text().split()]
                pids += children
                frontier += children
        return pids

    def tree_cpu_seconds(self, workers_only: bool = False) -> float:
        """CPU of the whole tree, or of the descendants only (the worker processes, without the server)."""
        pids = self.tree_pids()
        return sum(self.cpu_seconds(pid) for pid in (pids[1:] if workers_only else pids))

    def tree_memory_mb(self) -> dict[str, float]:
        """RSS and PSS summed over the process tree: PSS counts pages the fork shares once, RSS once per process."""
        rss = pss = 0
        for pid in self.tree_pids():
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                name, _, value = line.partition(":")
                if name == "Rss":
                    rss += int(value.split()[0])
                elif name == "Pss":
                    pss += int(value.split()[0])
        return {"rss": round(rss / 1024, 1), "pss": round(pss / 1024, 1)}

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@functools.cache
def compiled_sources() -> None:
    """The exporter's modules compiled, as an installed exporter holds them (pip and the image compile them), once
    per benchmark process. With PYTHONDONTWRITEBYTECODE set, as in some shells and CI runners, a clone's edited or
    new sources were compiled again at every start and never written: an 8-GPU start took 0.56 s instead of 0.35 s."""
    compileall.compile_dir(str(PACKAGE), quiet=1)


def start(module: str, args: Sequence[str], env: dict[str, str] | None = None) -> Proc:
    compiled_sources()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DCGM_", "OTEL_", "NUM_FAKE", "GPU_"))}
    full_env.update(env or {})
    popen = subprocess.Popen(
        [sys.executable, "-m", module, *args], env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return Proc(popen, time.perf_counter())


def get(url: str, timeout: float = 120.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return bytes(resp.read())


def wait_until(proc: Proc, url: str, needle: bytes, timeout: float = 180.0) -> float:
    """Seconds from the process's start until ``url`` answers with ``needle`` in its body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.popen.args!r} exited with {proc.popen.returncode}")
        try:
            if needle in get(url, timeout=30):
                return time.perf_counter() - proc.started_at
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} never showed {needle!r}")


def start_exporter(args: Sequence[str], needle: bytes, path: str = "/metrics") -> tuple[Proc, int, float]:
    """The exporter on a free loopback port, with the benchmark's seed and profiles: (process, port, seconds
    from its start until ``path`` showed ``needle``)."""
    port = free_port()
    proc = start(
        "otel_fakegpu", ["-a", f"127.0.0.1:{port}", "--seed", "1", "--gpu-profiles", "stable,wave,spike", *args]
    )
    return proc, port, wait_until(proc, f"http://127.0.0.1:{port}{path}", needle)


def cpu_pace_ms() -> float:
    """The machine's pace now: the best of five runs of a fixed CPU-bound loop, in ms (3.9-4.4 on the quiet 2-core
    machine of BENCHMARKS.md, 6.5-7.6 in its slow phases). Context for a run's figures, never part of a verdict."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        sum(i * i for i in range(100_000))
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 2)


def health(port: int) -> dict[str, Any]:
    result = json.loads(get(f"http://127.0.0.1:{port}/health"))
    assert isinstance(result, dict)
    return result

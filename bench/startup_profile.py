"""Where the exporter's start-up goes: the phases of one start, with timestamps from the command's spawn.

    python -m bench.startup_profile [--gpus 8] [--runs 3] [--imports]

Starts the exporter as bench/procs.py does (a fresh interpreter, a free port), with timing wrappers around the
start-up's steps in both processes (the serving process and the forked worker), and polls /metrics as
``start_exporter`` does until the page is complete. Each step is printed as milliseconds since the spawn: "+"
when it begins, "-" with its duration when it ends. ``--imports`` adds the heaviest imports (``-X importtime``).
The wrappers cost a few milliseconds; the end-to-end figure is the one to compare with ``start_exporter``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import compiled_sources, get
from tests.conftest import free_port

# Runs in the exporter's interpreter: wraps the steps, then calls the exporter's main as ``python -m`` would.
CHILD = r"""
import importlib.abc, os, sys, time
T0 = float(os.environ["STARTUP_T0"])
def mark(text):
    os.write(2, f"@@ {(time.time() - T0) * 1000:8.1f} ms  pid {os.getpid()}  {text}\n".encode())
mark("interpreter up")
def timed(owner, name, label=None):
    stock = getattr(owner, name)
    def wrapper(*args, **kwargs):
        mark(f"+ {label or name}")
        started = time.perf_counter()
        try:
            return stock(*args, **kwargs)
        finally:
            mark(f"- {label or name} ({(time.perf_counter() - started) * 1000:.1f} ms)")
    setattr(owner, name, wrapper)
# Wrappers go in when their module is first imported, wherever that is (before or after the fork): importing the
# modules here would move their import, which is part of what is measured.
PATCHES = {
    "otel_fakegpu.runtime.main": [("run", None), ("build_in_worker", "build collection")],
    "otel_fakegpu.runtime.spawn": [("spawn_worker", None)],
    "otel_fakegpu.runtime.pool": [("WorkerPool.wait_ready", None)],
    "otel_fakegpu.runtime.worker": [("Worker.run", "worker run (whole)"), ("Worker._publish", "publish")],
    "otel_fakegpu.runtime.serving": [("build_app", None), ("start", "listeners start (coroutine made)")],
    "otel_fakegpu.host.stack": [("build_host", None)],
    "otel_fakegpu.telemetry.sdk_fastpath": [("install", "sdk_fastpath.install")],
    "otel_fakegpu.telemetry.sdk_prune": [("install", "sdk_prune.install")],
    "otel_fakegpu.telemetry.cycle": [("CycleRunner.run_once", "cycle")],
    "otel_fakegpu.telemetry.pipeline": [("TelemetryPipeline.collect", "sdk collection")],
    "otel_fakegpu.sim.simulator": [("Simulator.start", "simulator start")],
}
class Patching(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in PATCHES:
            return None
        sys.meta_path.remove(self)
        try:
            import importlib.util
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        stock_exec = spec.loader.exec_module
        def exec_module(module):
            mark(f"+ import {name}")
            started = time.perf_counter()
            stock_exec(module)
            mark(f"- import {name} ({(time.perf_counter() - started) * 1000:.1f} ms)")
            for dotted, label in PATCHES[name]:
                owner = module
                *path, attr = dotted.split(".")
                for part in path:
                    owner = getattr(owner, part)
                timed(owner, attr, label or dotted)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, Patching())
started = time.perf_counter()
import otel_fakegpu.cli as cli
mark(f"- import cli ({(time.perf_counter() - started) * 1000:.1f} ms)")
timed(cli, "validate")
sys.argv = ["otel-fakegpu", *sys.argv[1:]]
raise SystemExit(cli.main())
"""


def profile(gpus: int, extra: list[str]) -> list[str]:
    """One start: the marks of both processes, and the poller's own, sorted by time."""
    port = free_port()
    args = ["-a", f"127.0.0.1:{port}", "--seed", "1", "--gpu-profiles", "stable,wave,spike", "--num-gpus", str(gpus)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCGM_", "OTEL_", "NUM_FAKE", "GPU_"))}
    compiled_sources()
    with tempfile.TemporaryFile() as err:
        t0 = time.time()
        env["STARTUP_T0"] = repr(t0)
        popen = subprocess.Popen(
            [sys.executable, *extra, "-c", CHILD, *args], env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        needle, url, tries = f'gpu="{gpus - 1}"'.encode(), f"http://127.0.0.1:{port}/metrics", 0
        while True:
            tries += 1
            try:
                if needle in get(url, timeout=30):
                    break
            except OSError:
                pass
            time.sleep(0.01)
        ready = (time.time() - t0) * 1000
        popen.terminate()
        popen.wait(30)
        err.seek(0)
        lines = err.read().decode(errors="replace").splitlines()
    marks = [line[3:] for line in lines if line.startswith("@@ ")]
    marks.append(f"{ready:8.1f} ms  poller     full page on /metrics after {tries} tries")
    imports = [line for line in lines if line.startswith("import time:")]
    return sorted(marks, key=lambda m: float(m.split()[0])) + _heaviest(imports)


def _heaviest(lines: list[str], count: int = 25) -> list[str]:
    """The imports with the largest cumulative time, when ``-X importtime`` ran (both processes' lines mixed)."""
    rows = []
    for line in lines[1:]:
        _, own, cumulative, name = (part.strip() for part in line.replace("import time:", "|").split("|"))
        rows.append((int(cumulative), int(own), name))
    rows.sort(reverse=True)
    return [f"import {cum / 1000:7.1f} ms (own {own / 1000:5.1f})  {name}" for cum, own, name in rows[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--imports", action="store_true", help="add the heaviest imports (-X importtime)")
    options = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    for run in range(options.runs):
        print(f"--- run {run + 1}: {options.gpus} GPUs")
        print("\n".join(profile(options.gpus, ["-X", "importtime"] if options.imports else [])))


if __name__ == "__main__":
    main()

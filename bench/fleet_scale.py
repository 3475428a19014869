"""What each simulated GPU of a fleet costs: the marginal PSS per GPU between two fleet sizes, and the workers'
CPU per series per cycle. CPU time, not wall time: on a shared machine the wall clock measures the neighbours."""

from __future__ import annotations

import json
import time
import urllib.error
from typing import Any

from bench.procs import Proc, get, start_exporter

GPUS_PER_HOST = 8


def start_fleet(
    hosts: int, interval_ms: int, workers: int, update_s: float, extra: tuple[str, ...] = ()
) -> tuple[Proc, int, float]:
    """A fleet of ``hosts`` x 8 GPUs; ready once the fleet's summary counts every GPU, that is once every worker
    has published its first complete cycle."""
    args = [
        "--hosts", str(hosts), "--num-gpus", str(GPUS_PER_HOST), "--workers", str(workers),
        "-c", str(interval_ms), "--update-interval", str(update_s), *extra,
    ]  # fmt: skip
    return start_exporter(args, f"otel_fakegpu_gpus {hosts * GPUS_PER_HOST}\n".encode())


def health(port: int) -> dict[str, Any]:
    """/health's facts, whether it answers 200 or 503 (a loaded machine runs a large fleet's cycles late)."""
    try:
        body = get(f"http://127.0.0.1:{port}/health")
    except urllib.error.HTTPError as exc:
        body = exc.read()
    facts = json.loads(body)
    assert isinstance(facts, dict)
    return facts


def process_memory(proc: Proc) -> list[dict[str, Any]]:
    """PSS and RSS of every process of the exporter (the server first, then its workers), in MB."""
    rows = []
    for pid in proc.tree_pids():
        pss = rss = 0
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                name, _, value = line.partition(":")
                if name in ("Pss", "Rss"):
                    kb = int(value.split()[0])
                    pss, rss = (pss + kb, rss) if name == "Pss" else (pss, rss + kb)
        rows.append({"pid": pid, "pss_mb": round(pss / 1024, 1), "rss_mb": round(rss / 1024, 1)})
    return rows


def _after_next_pass(port: int) -> dict[str, Any]:
    """/health's facts as soon as the worker's next pass has reported (its cycles_total moves by a whole pass)."""
    first = health(port)["cycles_total"]
    while True:
        time.sleep(0.02)
        facts = health(port)
        if facts["cycles_total"] != first:
            return facts


def measure_fleet_cost(hosts: int, interval_ms: int, window_s: float) -> dict[str, Any]:
    """One worker's fleet: start-up, PSS after the first cycles, worker CPU per series per cycle over ``window_s``.
    The simulator updates once an hour, so the window holds cycles only (a cycle's cost, as the cycle duration
    measures it on a quiet machine)."""
    proc, port, startup = start_fleet(hosts, interval_ms, 1, 3600.0)
    try:
        time.sleep(2 * interval_ms / 1000)  # the first cycles' garbage returned, the steady state reached
        # From the end of one pass to the end of another: a window cut mid-pass would count part of a pass's CPU
        # and none of its cycles (measured: 5.0 to 7.8 us per series in back-to-back runs of one code).
        before = _after_next_pass(port)
        cpu0, t0 = proc.tree_cpu_seconds(workers_only=True), time.monotonic()
        time.sleep(window_s)
        after = _after_next_pass(port)
        cpu_s = proc.tree_cpu_seconds(workers_only=True) - cpu0
        elapsed = time.monotonic() - t0
        memory = process_memory(proc)
    finally:
        proc.stop()
    series = after["last_cycle"]["series"]
    cycles = (after["cycles_total"] - before["cycles_total"]) / hosts
    return {
        "hosts": hosts,
        "gpus": hosts * GPUS_PER_HOST,
        "series": series,
        "startup_s": round(startup, 2),
        "pss_mb": round(sum(p["pss_mb"] for p in memory), 1),
        "processes": memory,
        "cycles_in_window": round(cycles, 2),
        "worker_cpu_s": round(cpu_s, 2),
        "worker_cores_busy": round(cpu_s / elapsed, 3),
        "cpu_us_per_series_cycle": round(cpu_s / cycles / series * 1e6, 2) if cycles >= 1 else None,
    }


def measure_marginal(quick: bool) -> dict[str, Any]:
    """256 and 1024 hosts x 8 GPUs (quick: 16 and 64) on one worker: what each added GPU costs."""
    small, large = (16, 64) if quick else (256, 1024)
    interval_ms = 2000 if quick else 5000
    window_s = 6.0 if quick else 20.0
    rows = [measure_fleet_cost(hosts, interval_ms, window_s) for hosts in (small, large)]
    added_gpus = (large - small) * GPUS_PER_HOST
    costs = [r["cpu_us_per_series_cycle"] for r in rows if r["cpu_us_per_series_cycle"] is not None]
    return {
        "interval_ms": interval_ms,
        "window_s": window_s,
        "fleets": rows,
        "marginal_pss_kb_per_gpu": round((rows[1]["pss_mb"] - rows[0]["pss_mb"]) * 1024 / added_gpus, 1),
        "cycle_cpu_us_per_series": costs[-1] if costs else None,  # the larger fleet's
    }

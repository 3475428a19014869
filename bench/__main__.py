"""``make bench``: the exporter against its peers, side by side in one run on one machine.

Prints a table and writes the same figures to bench/results.json. ``--quick`` runs a small version of
every measurement (for the test suite: it proves the benchmark works, its figures mean little).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.attribution import measure_attribution
from bench.fleet_scale import measure_marginal
from bench.load import LoadResult, Target, run_load
from bench.procs import Proc, cpu_pace_ms, get, health, start, start_exporter, wait_until
from bench.scale import STARTS, measure_scale, take_starts
from bench.scenario_cycle import measure_scenario_cycle, report_line
from bench.sdk_floor import sdk_floor_ms
from tests.conftest import free_port
from tests.receivers import OtlpGrpcReceiver

RESULTS = Path(__file__).parent / "results.json"


def _exporter(gpus: int, interval_ms: int, sock: Path, extra: tuple[str, ...] = ()) -> tuple[Proc, int, float]:
    args = ["--uds", str(sock), "--num-gpus", str(gpus), "-c", str(interval_ms), *extra]
    return start_exporter(args, f'gpu="{gpus - 1}"'.encode())


def measure_cycles(gpus: int, cycles: int, tmp: Path) -> dict[str, Any]:
    """Median cycle duration as the exporter itself reports it, over ``cycles`` cycles after warm-up."""
    interval_ms = max(250, int(gpus * 0.6))  # longer than a cycle, so cycles never queue
    proc, port, startup = _exporter(gpus, interval_ms, tmp / f"cycle{gpus}.sock")
    try:
        # Wait without polling (polling is load too), then read the exporter's last 32 cycle durations.
        time.sleep((cycles + 3) * interval_ms / 1000)
        deadline = time.monotonic() + 120
        last = health(port)
        while last["cycles_total"] < cycles + 2 and time.monotonic() < deadline:
            time.sleep(interval_ms / 1000)
            last = health(port)
        series = last["last_cycle"]["series"]
        measured = [d * 1000 for d in last["recent_cycle_durations_seconds"][-cycles:]]
        cycle_ms = statistics.median(measured)
        return {
            "gpus": gpus,
            "cycles": len(measured),
            "cycle_ms": round(cycle_ms, 3),
            "series": series,
            "us_per_series": round(cycle_ms * 1000 / series, 3),
            "startup_s": round(startup, 3),
        }
    finally:
        proc.stop()


def _load(target: Target, clients: int, big: bool, gzip: bool) -> LoadResult:
    per_client, seconds = (20, 2.0) if big else (200, 1.5)
    return run_load(target, clients, per_client, seconds, gzip, cap_s=60.0 if big else 10.0)


def _row(result: LoadResult) -> dict[str, Any]:
    return {
        "p50_ms": round(result.p50, 3),
        "p99_ms": round(result.p99, 3),
        "requests": len(result.latencies_ms),
        "bytes": result.bytes_per_response,
        "errors": result.errors,
    }


def measure_scrapes(gpus: int, concurrency: list[int], tmp: Path) -> dict[str, Any]:
    """Ours over TCP and UDS, then baselines (a), (b) and the floor over TCP, same clients."""
    big = gpus >= 1024
    rows: dict[str, Any] = {}
    sock = tmp / f"scrape{gpus}.sock"
    proc, port, _ = _exporter(gpus, 30000, sock)
    try:
        for gzip in (False, True):  # warm-up: one scrape of each variant, then the steady-state RSS
            run_load(Target(port=port), 1, 1, 0.0, gzip)
        warm = proc.tree_memory_mb()  # every process of the exporter
        for name, target in (("tcp", Target(port=port)), ("uds", Target(uds=str(sock)))):
            for gzip in (False, True):
                for clients in concurrency:
                    rows[f"otel-fakegpu/{name}/{'gzip' if gzip else 'plain'}/{clients}"] = _row(
                        _load(target, clients, big, gzip)
                    )
        after_load = proc.tree_memory_mb()
    finally:
        proc.stop()
    for label, module in (
        ("baseline-a-client_python", "bench.baseline_client_python"),
        ("baseline-b-otel-reader", "bench.baseline_otel_reader"),
        ("floor", "bench.floor_server"),
    ):
        bport = free_port()
        baseline = start(module, [str(bport), str(gpus)])
        try:
            wait_until(baseline, f"http://127.0.0.1:{bport}/metrics", b"DCGM_FI_DEV_GPU_TEMP")
            for gzip in (False, True):
                for clients in concurrency:
                    key = f"{label}/tcp/{'gzip' if gzip else 'plain'}/{clients}"
                    if big and label != "floor" and (clients > 8 or (clients > 1 and not gzip)):
                        # Each scrape re-collects and re-renders 100k series: these would take minutes.
                        rows[key] = {"skipped": "re-collects per scrape; would take minutes"}
                        continue
                    if big and label == "baseline-b-otel-reader" and clients > 1:
                        # Only baseline (a)'s 8 clients are a target's comparison; these 8 serialised
                        # re-collections took 32-43 s of the 600 s budget.
                        rows[key] = {"skipped": "no target compares with it; 8 re-collections take ~40 s"}
                        continue
                    if big and label != "floor":
                        rows[key] = _row(run_load(Target(port=bport), clients, 1, 0.0, gzip, cap_s=90.0))
                    else:
                        rows[key] = _row(_load(Target(port=bport), clients, big, gzip))
        finally:
            baseline.stop()
    memory = {"rss_mb": warm["rss"], "pss_mb": warm["pss"]}
    memory |= {"rss_after_load_mb": after_load["rss"], "pss_after_load_mb": after_load["pss"]}
    return {"gpus": gpus, **{k: round(v, 1) for k, v in memory.items()}, "rows": rows}


def measure_idle_cpu(seconds: float, tmp: Path) -> float:
    """CPU of an 8-GPU exporter (every process) with a 30 s cycle and one scrape every 15 s, in % of one core."""
    proc, port, _ = _exporter(8, 30000, tmp / "idle.sock", ("--update-interval", "30"))
    try:
        time.sleep(2.0)
        cpu0, t0 = proc.tree_cpu_seconds(), time.monotonic()
        while time.monotonic() - t0 < seconds:
            get(f"http://127.0.0.1:{port}/metrics")
            time.sleep(min(15.0, max(0.0, seconds - (time.monotonic() - t0))))
        return round(100.0 * (proc.tree_cpu_seconds() - cpu0) / (time.monotonic() - t0), 3)
    finally:
        proc.stop()


def measure_otlp_push(gpus: int, tmp: Path) -> dict[str, Any]:
    """A whole cycle pushed to a local OTLP/gRPC receiver; the push time is the exporter's own report,
    which the next cycle's exposition carries."""
    receiver = OtlpGrpcReceiver().start()
    extra = ("--otlp-protocol", "grpc", "--otlp-endpoint", f"127.0.0.1:{receiver.port}", "--otlp-insecure")
    proc, port, _ = _exporter(gpus, 10000, tmp / "push.sock", extra)
    try:
        expected = health(port)["last_cycle"]["series"]
        deadline = time.monotonic() + 120
        first: list[Any] = []
        while time.monotonic() < deadline and len(first) < expected:
            points = receiver.snapshot()
            cycle_time = min((p.time_unix_nano for p in points), default=0)
            first = [p for p in points if p.time_unix_nano == cycle_time]
            arrived_at = receiver.last_request_at
            time.sleep(0.05)
        delivery = None
        while time.monotonic() < deadline and delivery is None:
            body = get(f"http://127.0.0.1:{port}/metrics")
            delivery = re.search(rb'^otel_fakegpu_push_last_delivery_seconds\{target="otlp"\} (\S+)$', body, re.M)
            time.sleep(0.2)
        return {
            "gpus": gpus,
            "points_expected": expected,
            "points_received": len(first),
            "requests": receiver.requests,
            # The exporter's own report: from the cycle's hand-off to push to its last piece delivered.
            "otlp_push_s": round(float(delivery[1]), 3) if delivery else None,
            # From the start of the cycle's SDK collection to the arrival of its last piece.
            "collection_to_delivery_s": round(arrived_at - cycle_time / 1e9, 3),
        }
    finally:
        proc.stop()
        receiver.stop()


def _save(path: Path, results: dict[str, Any]) -> None:
    path.write_text(json.dumps(results, indent=2) + "\n")


def machine() -> dict[str, Any]:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "os": platform.platform()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--sections", default="all", help="comma list of: classic (cycles, scrapes, idle, push), scale, fleet"
    )
    args = parser.parse_args()
    every = {"classic", "scale", "fleet"}
    wanted = every if args.sections == "all" else set(args.sections.split(","))
    if not wanted <= every:
        parser.error(f"--sections {args.sections}: expected classic, scale, fleet or all")
    quick = args.quick
    sizes = [8, 64] if quick else [8, 64, 512, 4096]
    scrape_sizes = [8] if quick else [8, 4096]
    concurrency = [1, 8] if quick else [1, 8, 64]
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "quick": quick, "sections": args.sections}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        sections: dict[str, float] = {}
        results["section_seconds"] = sections
        probes: dict[str, float] = {}
        results["pace_ms"] = probes  # the machine's pace as each section starts, and at the end
        mark = time.monotonic()
        if "scale" in wanted:
            probes["scale"] = cpu_pace_ms()
            results["scale"] = measure_scale(tmp, quick)
            _save(args.out, results)
            sections["scale"], mark = round(time.monotonic() - mark, 1), time.monotonic()
        if "fleet" in wanted:
            probes["fleet"] = cpu_pace_ms()
            results["fleet"] = measure_marginal(quick)
            if "scale" in results:
                take_starts(results["scale"], 2)  # the start-up samples are spread over the run
            _save(args.out, results)
            sections["fleet"], mark = round(time.monotonic() - mark, 1), time.monotonic()
        if "classic" in wanted:
            probes["classic"] = cpu_pace_ms()
            _classic(results, sections, sizes, scrape_sizes, concurrency, quick, tmp, args.out)
    if "scale" in results:
        take_starts(results["scale"], STARTS)
    probes["end"] = cpu_pace_ms()
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    from bench.report import evaluate_targets, print_report  # noqa: PLC0415

    results["targets"] = evaluate_targets(results)
    _save(args.out, results)
    print_report(results)
    if "scenario_cycle" in results:
        print(report_line(results["scenario_cycle"]))
    print(f"\nwritten to {args.out}")


def _classic(
    results: dict[str, Any], sections: dict[str, float], sizes: list[int], scrape_sizes: list[int],
    concurrency: list[int], quick: bool, tmp: Path, out: Path,
) -> None:  # fmt: skip
    """The measurements against the baselines: cycles, scrapes (own load generator), idle CPU, OTLP push."""
    mark = time.monotonic()
    results["cycle"] = []
    for n in sizes:
        row = measure_cycles(n, 5 if quick else (10 if n > 1000 else 20), tmp)
        row["sdk_floor_ms"] = round(sdk_floor_ms(n, 3 if quick else (5 if n > 1000 else 20)), 3)
        row["cycle_over_floor"] = round(row["cycle_ms"] / row["sdk_floor_ms"], 3)
        results["cycle"].append(row)
        _save(out, results)  # a later failure still leaves what was measured
    sections["cycle"], mark = round(time.monotonic() - mark, 1), time.monotonic()
    results["scenario_cycle"] = measure_scenario_cycle(20 if quick else 300)
    sections["scenario_cycle"], mark = round(time.monotonic() - mark, 1), time.monotonic()
    results["scrape"] = []
    for n in scrape_sizes:
        results["scrape"].append(measure_scrapes(n, concurrency, tmp))
        _save(out, results)
        sections[f"scrape_{n}"], mark = round(time.monotonic() - mark, 1), time.monotonic()
    results["idle_cpu_pct"] = measure_idle_cpu(5.0 if quick else 30.0, tmp)
    sections["idle_cpu"], mark = round(time.monotonic() - mark, 1), time.monotonic()
    results["otlp_push"] = measure_otlp_push(64 if quick else 4096, tmp)
    sections["otlp_push"], mark = round(time.monotonic() - mark, 1), time.monotonic()
    results["attribution"] = measure_attribution(quick, tmp)
    sections["attribution"] = round(time.monotonic() - mark, 1)


if __name__ == "__main__":
    main()

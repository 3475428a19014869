"""The 8-GPU scrape tail against the fixed-body floor (bench/floor_server.py), the two servers alternating round
by round so that a shared machine's load falls on both alike; with each round's latency, the serving process's CPU
time per request (steadier than a percentile on a busy machine), and the p99 of all rounds' requests together.

Usage: python -m bench.tail [--rounds 6] [--seconds 5] [--threads 1] [--gzip] [--prometheus-accept]
"""

from __future__ import annotations

import argparse
import statistics

from bench.procs import Proc, start, start_exporter, wait_until
from bench.wrk import WrkResult, pooled, run_wrk
from tests.conftest import free_port

GPUS, CLIENTS = 8, 8
WITHIN_MS = 0.15  # issue 24's bound on p99 over the floor's
# What Prometheus 3 sends: its Accept takes a parse of every media range unless the answer is remembered.
PROMETHEUS_ACCEPT = (
    "Accept: application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


def _round(proc: Proc, url: str, args: argparse.Namespace, headers: list[str]) -> tuple[WrkResult, float]:
    cpu = proc.cpu_seconds()
    result = run_wrk(url, CLIENTS, args.seconds, args.gzip, threads=args.threads, headers=headers)
    return result, (proc.cpu_seconds() - cpu) / max(result.requests, 1) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tail", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (the bench uses 1)")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--prometheus-accept", action="store_true", help="send Prometheus's Accept header")
    args = parser.parse_args()
    headers = [PROMETHEUS_ACCEPT] if args.prometheus_accept else []
    ours, port, _ = start_exporter(["--num-gpus", str(GPUS), "-c", "1000"], f'gpu="{GPUS - 1}"'.encode())
    floor_port = free_port()
    servers = {"ours": (ours, f"http://127.0.0.1:{port}/metrics")}
    servers["floor"] = (
        start("bench.floor_server", [str(floor_port), str(GPUS)]),
        f"http://127.0.0.1:{floor_port}/metrics",
    )
    rows: dict[str, list[tuple[WrkResult, float]]] = {"ours": [], "floor": []}
    try:
        wait_until(servers["floor"][0], servers["floor"][1], b"DCGM_FI_DEV_GPU_TEMP")
        for _, url in servers.values():
            run_wrk(url, 1, 1, args.gzip, headers=headers)  # ours builds the variant every cycle from now on
        for n in range(args.rounds):
            for name in ("ours", "floor") if n % 2 == 0 else ("floor", "ours"):
                rows[name].append(_round(*servers[name], args, headers))
            line = " | ".join(
                f"{name} p50 {r.p50_ms:.3f} p99 {r.p99_ms:.3f} ms, {cpu:.0f} us CPU/req, {r.errors} errors"
                for name, (r, cpu) in ((name, rows[name][-1]) for name in rows)
            )
            print(f"round {n + 1}: {line}", flush=True)
    finally:
        for proc, _ in servers.values():
            proc.stop()
    for name, got in rows.items():
        p50 = statistics.median(r.p50_ms for r, _ in got)
        p99 = statistics.median(r.p99_ms for r, _ in got)
        cpu = statistics.median(c for _, c in got)
        print(f"{name}: median p50 {p50:.3f} ms, median p99 {p99:.3f} ms, median {cpu:.1f} us CPU/request")
    ours_p99, floor_p99 = (pooled([r for r, _ in rows[name]], 99.0) for name in ("ours", "floor"))
    print(f"all rounds' requests together: ours p99 {ours_p99:.3f} ms, floor's "
          f"{floor_p99:.3f} ms, {ours_p99 - floor_p99:+.3f} ms over it")  # fmt: skip
    over = [o.p99_ms - f.p99_ms for (o, _), (f, _) in zip(rows["ours"], rows["floor"], strict=True)]
    within = sum(d <= WITHIN_MS for d in over)
    print(f"p99 over the floor's, by round: {' '.join(f'{d:+.3f}' for d in over)} ms; within {WITHIN_MS} ms: "
          f"{within} of {len(over)}")  # fmt: skip


if __name__ == "__main__":
    main()

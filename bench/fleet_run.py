"""``make bench-fleet``: a whole cluster's fleet from one machine (12,500 hosts x 8 GPUs = 100,000 GPUs, a cycle
every 30 s), with /sd serving every host and a real VictoriaMetrics scraping a seeded sample of the hosts through
/sd for several cycles. Reports start to the first complete cycle, each worker's cycle durations, cycles late,
the PSS of every process, the scrape durations VictoriaMetrics saw, and the samples it ingested.

Before starting, the run checks the memory the machine has free against what the fleet is projected to need
(``--kb-per-gpu``, from ``make bench``'s fleet section) and, if it cannot hold it, runs the largest fleet that fits
and says so. Writes bench/fleet-run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
import urllib.parse
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bench.fleet_scale import GPUS_PER_HOST, health, process_memory
from bench.procs import Proc, get, start, wait_until
from tests.conftest import free_port
from tests.receivers import VICTORIA

OUT = Path(__file__).parent / "fleet-run.json"
HEADROOM = 0.7  # of MemAvailable: the rest stays for VictoriaMetrics and whoever else uses the machine


def mem_available_mb() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def scrape_config(sd_url: str, interval_s: int, sample_pct: int, seed: int) -> str:
    """Every host from /sd, kept when the hash of its path falls in the seed's bucket: a fixed sample of
    ``sample_pct`` % (100 / sample_pct buckets), the same hosts for the same seed."""
    buckets = max(1, round(100 / sample_pct))
    return (
        f"global:\n  scrape_interval: {interval_s}s\n  scrape_timeout: 10s\nscrape_configs:\n"
        f"  - job_name: fleet\n    http_sd_configs:\n      - url: {sd_url}\n    relabel_configs:\n"
        f"      - source_labels: [__metrics_path__]\n        modulus: {buckets}\n        target_label: __tmp_bucket\n"
        f"        action: hashmod\n"
        f"      - source_labels: [__tmp_bucket]\n        regex: '{seed % buckets}'\n        action: keep\n"
    )


class Victoria:
    """VictoriaMetrics scraping with ``config``; its data in ``folder``."""

    def __init__(self, folder: Path, config: str) -> None:
        (folder / "scrape.yml").write_text(config)
        self.port = free_port()
        self.log = (folder / "victoria.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(VICTORIA), f"-storageDataPath={folder / 'vm-data'}", f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-promscrape.config={folder / 'scrape.yml'}", "-search.latencyOffset=0s", "-retentionPeriod=100y",
            ],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def export(self, match: str) -> list[dict[str, Any]]:
        body = get(f"http://127.0.0.1:{self.port}/api/v1/export?match[]={urllib.parse.quote(match)}")
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def scraper_view(victoria: Victoria) -> dict[str, Any]:
    """What VictoriaMetrics saw: each scrape's duration (p50, p99, max), scrapes that failed, samples ingested."""
    durations = sorted(v for s in victoria.export("scrape_duration_seconds") for v in s["values"])
    ups = [v for s in victoria.export("up") for v in s["values"]]
    samples = sum(v for s in victoria.export("scrape_samples_scraped") for v in s["values"])

    def pick(q: float) -> float | None:
        return round(durations[min(len(durations) - 1, int(q * len(durations)))] * 1000, 1) if durations else None

    return {
        "targets": len(victoria.export("up")),
        "scrapes": len(ups),
        "scrapes_failed": sum(1 for v in ups if v == 0),
        "scrape_p50_ms": pick(0.5),
        "scrape_p99_ms": pick(0.99),
        "scrape_max_ms": round(durations[-1] * 1000, 1) if durations else None,
        "samples_ingested": int(samples),
    }


def run(hosts: int, workers: int, interval_s: int, cycles: int, sample_pct: int, seed: int) -> dict[str, Any]:
    port = free_port()
    args = [
        "-a", f"127.0.0.1:{port}", "--seed", "1", "--gpu-profiles", "stable,wave,spike", "--hosts", str(hosts),
        "--num-gpus", str(GPUS_PER_HOST), "--workers", str(workers), "-c", str(interval_s * 1000),
        "--update-interval", str(interval_s),
    ]  # fmt: skip
    proc: Proc = start("otel_fakegpu", args)
    result: dict[str, Any] = {"hosts": hosts, "gpus": hosts * GPUS_PER_HOST, "workers": workers}
    result |= {"interval_s": interval_s, "sample_pct": sample_pct, "seed": seed}
    try:
        needle = f"otel_fakegpu_gpus {hosts * GPUS_PER_HOST}\n".encode()
        result["start_to_first_complete_cycle_s"] = round(
            wait_until(proc, f"http://127.0.0.1:{port}/metrics", needle, timeout=1800.0), 1
        )
        result["memory_after_start"] = process_memory(proc)
        result["sd_targets"] = len(json.loads(get(f"http://127.0.0.1:{port}/sd")))
        with TemporaryDirectory() as folder:
            sd_url = f"http://127.0.0.1:{port}/sd"
            victoria = Victoria(Path(folder), scrape_config(sd_url, interval_s, sample_pct, seed))
            try:
                result |= _observe(proc, port, victoria, interval_s, cycles)
                result["scraper"] = scraper_view(victoria)
            finally:
                victoria.stop()
    finally:
        proc.stop()
    return result


def _observe(proc: Proc, port: int, victoria: Victoria, interval_s: int, cycles: int) -> dict[str, Any]:
    """``cycles`` whole cycles under the scraper (or as many as come in ``cycles + 1`` intervals): each worker's
    durations of the passes after the start, the passes that ran longer than the interval, and the missed ones."""
    first = health(port)
    known = [len(w["recent_cycle_seconds"]) for w in first["workers"]]
    t0 = time.monotonic()
    deadline = t0 + (cycles + 1) * interval_s + 10
    while True:
        time.sleep(5.0)
        last = health(port)
        done = (last["cycles_total"] - first["cycles_total"]) / last["hosts"]
        if done >= cycles or time.monotonic() > deadline:
            break
    elapsed = time.monotonic() - t0
    # recent_cycle_seconds holds the last 32 passes: those after ``first`` are the ones observed here.
    per_worker = [w["recent_cycle_seconds"][k:] for w, k in zip(last["workers"], known, strict=True)]
    return {
        "observed_s": round(elapsed, 1),
        "cycles_done_per_host": round(done, 2),
        "cycles_missed": max(0, cycles - int(done)),
        "cycle_seconds_per_worker": [[round(d, 2) for d in w] for w in per_worker],
        "cycles_late": sum(1 for w in per_worker for d in w if d > interval_s),
        "start_pass_seconds_per_worker": [round(w["recent_cycle_seconds"][0], 2) for w in first["workers"]],
        "restarts": sum(w["restarts"] for w in last["workers"]),
        "memory": process_memory(proc),
        "victoria_memory": process_memory(Proc(victoria.proc, 0.0)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.fleet_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=12_500)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--interval", type=int, default=30, help="seconds per cycle (and per scrape)")
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--sample-pct", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--kb-per-gpu", type=float, default=30.0, help="projected PSS per GPU, all processes")
    args = parser.parse_args()
    available = mem_available_mb()
    need = args.hosts * GPUS_PER_HOST * args.kb_per_gpu / 1024
    hosts = args.hosts
    verdict = {"asked_hosts": args.hosts, "projected_mb": round(need), "available_mb": round(available)}
    if need > HEADROOM * available:
        hosts = max(1, int(HEADROOM * available * 1024 / args.kb_per_gpu / GPUS_PER_HOST))
        verdict["why"] = f"{need:.0f} MB projected > {HEADROOM:g} x {available:.0f} MB available: ran {hosts} hosts"
    result = {**verdict, **run(hosts, args.workers, args.interval, args.cycles, args.sample_pct, args.seed)}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

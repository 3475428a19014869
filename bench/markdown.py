"""Markdown tables of a results.json, for BENCHMARKS.md: ``python -m bench.markdown [bench/results.json]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _scrape_table(block: dict[str, Any]) -> list[str]:
    lines = [
        "| server | transport | encoding | clients | p50 ms | p99 ms | requests | bytes | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, row in block["rows"].items():
        server, transport, encoding, clients = key.split("/")
        if "skipped" in row:
            lines.append(
                f"| {server} | {transport} | {encoding} | {clients} | - | - | - | - | not run: {row['skipped']} |"
            )
        else:
            lines.append(
                f"| {server} | {transport} | {encoding} | {clients} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
                f"| {row['requests']} | {row['bytes']} | {row['errors']} |"
            )
    return lines


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    out = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['os']}; run took {results['elapsed_s']} s.",
        "",
    ]
    out += [
        "| GPUs | series | cycle ms (median) | µs/series | SDK floor ms | cycle / floor | startup s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["cycle"]:
        out.append(
            f"| {r['gpus']} | {r['series']} | {r['cycle_ms']:.2f} | {r['us_per_series']:.2f} | {r['sdk_floor_ms']:.2f} "
            f"| {r['cycle_over_floor']:.2f} | {r['startup_s']:.2f} |"
        )
    for block in results["scrape"]:
        out += [
            "",
            f"Scrapes, {block['gpus']} GPUs (otel-fakegpu RSS after warm-up: {block['rss_mb']} MB; "
            f"after all the runs below: {block['rss_after_load_mb']} MB):",
            "",
        ]
        out += _scrape_table(block)
    push = results["otlp_push"]
    out += [
        "",
        f"Idle CPU, 8 GPUs, 30 s cycle, one scrape every 15 s: {results['idle_cpu_pct']} % of one core.",
        "",
        f"OTLP push, {push['gpus']} GPUs: {push['points_received']}/{push['points_expected']} points in "
        f"{push['requests']} requests; {push['otlp_push_s']} s from hand-off to the last piece delivered, "
        f"{push['collection_to_delivery_s']} s from the start of the SDK collection.",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    out += [f"| {t['target']} | {t['measured']} | {t['verdict']} |" for t in results["targets"]]
    return "\n".join(out)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results.json"
    print(render(json.loads(path.read_text())))

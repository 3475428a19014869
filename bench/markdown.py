"""Markdown tables of a results.json, for BENCHMARKS.md: ``python -m bench.markdown [bench/results.json]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from bench.report import pace_text, rounds_p99_text, rounds_text


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


def _paces(block: dict[str, Any]) -> str:
    paces = block.get("startup_paces_ms")
    return f" (the machine's pace before each: {', '.join(str(p) for p in paces)} ms)" if paces else ""


def _scale(scale: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for block in scale["scrapes"]:
        warm, after = block["memory_warm_mb"], block["memory_after_load_mb"]
        out += [
            "",
            f"wrk, {block['gpus']} GPUs, {block['clients']} keep-alive clients, {scale['wrk_window_s']:g} s per "
            f"server{rounds_text(block)}, a cycle every {block['interval_ms']} ms. "
            f"Memory of all {block['processes']} processes, RSS / PSS: "
            f"{warm['rss']} / {warm['pss']} MB warm, {after['rss']} / {after['pss']} MB after the runs. "
            f"Start to first full scrape: {block['startup_s']} s, the median of "
            f"{', '.join(str(s) for s in block.get('startup_samples_s', [block['startup_s']]))} s"
            f"{_paces(block)}.",
            "",
            "| server | encoding | p50 ms | p99 ms | max ms | requests | errors | cycles in the window "
            "| rounds' p99 ms: median | each round's |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for key, row in block["rows"].items():
            server, encoding = key.split("/")
            out.append(
                f"| {server} | {encoding} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['max_ms']:.2f} "
                f"| {row['requests']} | {row['errors']} | {row.get('cycles_in_window', '-')} "
                f"| {row.get('p99_median_of_rounds_ms', '-')} "
                f"| {rounds_p99_text(row) or '-'} |"
            )
    out += [
        "",
        "| hosts x GPUs | workers | cycle s (median) | cycles in window | scrape p50 / p99 ms via /sd | worker "
        "core-s per cycle | RSS / PSS MB (all processes) | PSS KB per GPU | start s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in scale["fleet"]:
        sd, mem = f["scrape_via_sd"], f["memory_mb"]
        out.append(
            f"| {f['hosts']} x {f['gpus'] // f['hosts']} | {f['workers']} | {f['cycle_s_median']} "
            f"| {f['cycles_in_window']} | {sd['p50_ms']:.2f} / {sd['p99_ms']:.2f} | {f['cpu_core_s_per_cycle']} "
            f"| {mem['rss']} / {mem['pss']} | {f['pss_kb_per_gpu']} | {f['startup_s']} |"
        )
    p = scale.get("projection")
    if p:
        out += [
            "",
            f"Projection: {p['gpus']:,} GPUs at a {p['interval_s']:g} s interval need about {p['cores']} cores of "
            f"collection and {p['memory_gb']} GB (PSS), linear from the `--workers {p['from_workers']}` run (its "
            "processes' fixed memory counted per GPU: an upper bound; the fleet section's marginal cost is the rate).",
        ]
    return out


def _targets(results: dict[str, Any]) -> list[str]:
    out = ["", "| target | measured | verdict |", "|---|---|---|"]
    out += [f"| {t['target']} | {t['measured']} | {t['verdict']} |" for t in results["targets"]]
    return out


def _fleet(fleet: dict[str, Any]) -> list[str]:
    """The fleet section (bench/fleet_scale.py): what each added GPU of a one-worker fleet costs."""
    out = [
        "",
        f"Fleet on one worker, 8 GPUs per host, a cycle every {fleet['interval_ms']} ms, worker CPU over "
        f"{fleet['window_s']} s:",
        "",
        "| hosts x GPUs | series | PSS MB (serving + worker) | worker CPU us per series per cycle | start s |",
        "|---|---|---|---|---|",
    ]
    for f in fleet["fleets"]:
        parts = " + ".join(str(p["pss_mb"]) for p in f["processes"])
        out.append(
            f"| {f['hosts']} x 8 | {f['series']} | {f['pss_mb']} ({parts}) | {f['cpu_us_per_series_cycle']} "
            f"| {f['startup_s']} |"
        )
    kb = fleet["marginal_pss_kb_per_gpu"]
    out += ["", f"Marginal PSS per added GPU: {kb} KB; 100,000 GPUs at that cost: {kb * 100_000 / 1024**2:.1f} GB "
                "(`make bench-fleet` measures it)."]  # fmt: skip
    return out


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    out = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['os']}; run took {results['elapsed_s']} s.",
    ]
    if paces := pace_text(results):
        out[0] += f" Pace, a fixed CPU-bound loop as each section started (ms, lower is faster): {paces}."
    if "scale" in results:
        out += _scale(results["scale"])
    if "fleet" in results:
        out += _fleet(results["fleet"])
    if "cycle" not in results:
        return "\n".join(out + _targets(results))
    out += [
        "",
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
            f"Scrapes, {block['gpus']} GPUs (otel-fakegpu, every process, RSS/PSS after warm-up: {block['rss_mb']}/"
            f"{block.get('pss_mb')} MB; after all the runs below: {block['rss_after_load_mb']}/"
            f"{block.get('pss_after_load_mb')} MB):",
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
    ]
    return "\n".join(out + _targets(results))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.markdown", description=__doc__.split(":")[0])
    parser.add_argument("results", nargs="?", type=Path, default=Path(__file__).parent / "results.json")
    path = parser.parse_args().results
    try:
        results = json.loads(path.read_text())
        text = render(results)
    except OSError as exc:
        _fail(f"{path}: {exc.strerror or exc}")
    except json.JSONDecodeError as exc:
        _fail(f"{path}:{exc.lineno}: not JSON ({exc.msg})")
    except (KeyError, TypeError) as exc:
        _fail(f"{path}: not a whole make bench result (missing {exc})")
    print(text)


def _fail(message: str) -> NoReturn:
    print(f"python -m bench.markdown: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()

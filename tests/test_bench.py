"""The benchmark itself works: a --quick run of every measurement produces every key of results.json.
Its figures are not asserted here (targets live in the benchmark, never in timed unit tests)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT


def _run_quick(module: str, out: Path, timeout_s: float) -> tuple[subprocess.CompletedProcess[str], Any]:
    """``python -m MODULE --quick --out OUT``, which must succeed; its output and the JSON it wrote."""
    result = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads(out.read_text())


@pytest.mark.slow
def test_quick_benchmark_produces_every_figure(tmp_path: Path) -> None:
    result, results = _run_quick("bench", tmp_path / "results.json", timeout_s=600)
    assert {"machine", "cycle", "scrape", "idle_cpu_pct", "otlp_push", "targets"} <= set(results)
    assert set(results["pace_ms"]) == {"scale", "fleet", "classic", "end"}, results["pace_ms"]
    assert all(ms > 0 for ms in results["pace_ms"].values()) and "pace (a fixed CPU-bound loop" in result.stdout
    for row in results["cycle"]:
        assert {"gpus", "cycle_ms", "sdk_floor_ms", "us_per_series", "startup_s", "series"} <= set(row)
    rows = results["scrape"][0]["rows"]
    for server in (
        "otel-fakegpu/tcp",
        "otel-fakegpu/uds",
        "baseline-a-client_python/tcp",
        "baseline-b-otel-reader/tcp",
        "floor/tcp",
    ):
        for encoding in ("plain", "gzip"):
            row = rows[f"{server}/{encoding}/8"]
            assert row["errors"] == 0 and row["requests"] >= 8, (server, encoding, row)
    assert results["otlp_push"]["points_received"] == results["otlp_push"]["points_expected"], results["otlp_push"]
    assert {"plain_ms", "scenario_ms", "overhead"} <= set(results["scenario_cycle"])
    assert "scenario cycle (8 GPUs, 4 workloads" in result.stdout
    assert result.stdout.count("\ntargets\n") == 1 and "met" in result.stdout
    assert all(block["pss_mb"] > 0 for block in results["scrape"]), [b["pss_mb"] for b in results["scrape"]]
    scale = results["scale"]
    for block in scale["scrapes"]:  # wrk windows spanning cycles, beside the floor
        assert set(block["rows"]) == {"otel-fakegpu/plain", "otel-fakegpu/gzip", "floor/plain", "floor/gzip"}
        assert all(row["errors"] == 0 and row["requests"] > 0 for row in block["rows"].values()), block["rows"]
        # Each server's window is taken in alternating rounds and read as one: every round's p99 is kept beside it.
        rounds = [row["rounds_p99_ms"] for row in block["rows"].values()]
        assert all(len(r) == block["rounds"] > 1 for r in rounds), rounds
        pooled = [row["p99_ms"] for row in block["rows"].values()]
        assert all(min(r) <= p99 <= max(r) for r, p99 in zip(rounds, pooled, strict=True)), (rounds, pooled)
        medians = [row["p99_median_of_rounds_ms"] for row in block["rows"].values()]
        assert medians == [statistics.median(r) for r in rounds], medians  # what the comparison with the floor reads
        assert block["processes"] == 2 and block["memory_warm_mb"]["pss"] > 0, (
            block["processes"],
            block["memory_warm_mb"],
        )
        starts = block["startup_samples_s"]  # fresh starts spread over the run; the targets check their median
        assert len(starts) == 3 and all(s > 0 for s in starts) and block["startup_s"] == sorted(starts)[1], block
        assert len(block["startup_paces_ms"]) == 3 and all(p > 0 for p in block["startup_paces_ms"]), block
    assert [f["workers"] for f in scale["fleet"]] == [2]
    assert all(f["targets_in_sd"] == f["hosts"] and f["scrape_via_sd"]["errors"] == 0 for f in scale["fleet"]), scale[
        "fleet"
    ]
    # A quick fleet's workers use a few ms of CPU per window, under /proc's 10 ms clock tick: their projected cores
    # read 0.0 now and then (2 of 13 runs here); the memory is measured to the KB.
    assert scale["projection"]["cores"] >= 0 and scale["projection"]["memory_gb"] > 0, scale["projection"]
    fleet = results["fleet"]  # what each GPU of a fleet costs, between two fleet sizes
    assert [f["hosts"] for f in fleet["fleets"]] == [16, 64]
    assert all(f["pss_mb"] > 0 and len(f["processes"]) == 2 for f in fleet["fleets"]), fleet["fleets"]
    assert fleet["marginal_pss_kb_per_gpu"] is not None
    assert any(t["target"].startswith("fleet: marginal PSS") for t in results["targets"])
    results_path = tmp_path / "results.json"
    tables = _markdown(results_path)  # the tables BENCHMARKS.md takes
    assert tables.returncode == 0 and "| start to first full scrape, 8 GPUs" in tables.stdout, tables.stderr
    results_path.write_text('{"machine":')
    broken = _markdown(results_path)
    expected = f"python -m bench.markdown: {results_path}:1: not JSON (Expecting value)\n"
    assert broken.returncode == 2 and broken.stderr == expected, (broken.returncode, broken.stderr)


def _markdown(path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bench.markdown", str(path)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.slow
def test_fleet_run_scraped_by_victoriametrics_through_sd(tmp_path: Path) -> None:
    """A small bench-fleet: VictoriaMetrics discovers the hosts through /sd, keeps its sample and scrapes them."""
    out = tmp_path / "fleet-run.json"
    args = [
        "--hosts",
        "8",
        "--workers",
        "2",
        "--interval",
        "2",
        "--cycles",
        "3",
        "--sample-pct",
        "50",
        "--out",
        str(out),
    ]
    result = subprocess.run(
        [sys.executable, "-m", "bench.fleet_run", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads(out.read_text())
    assert run["hosts"] == run["sd_targets"] == 8 and run["start_to_first_complete_cycle_s"] > 0
    assert len(run["cycle_seconds_per_worker"]) == 2 and run["memory"][0]["pss_mb"] > 0
    scraper = run["scraper"]
    assert 0 < scraper["targets"] < 8 and scraper["scrapes"] > 0 and scraper["samples_ingested"] > 0


@pytest.mark.slow
def test_quick_soak_runs_and_reports_every_phase(tmp_path: Path) -> None:
    _, soak = _run_quick("bench.soak", tmp_path / "soak.json", timeout_s=180)
    for phase in ("before", "at_restart", "drained", "later", "after_malloc_trim"):
        assert soak[phase]["rss_mb"] > 0
    assert soak["at_restart"]["buffered"] > 0 and soak["drained"]["buffered"] <= 8 * 40

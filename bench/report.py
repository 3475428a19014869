"""The benchmark's verdicts against the targets, and its table."""

from __future__ import annotations

from typing import Any

from bench.attribution import report_line


def _scrape(results: dict[str, Any], gpus: int, key: str) -> dict[str, Any] | None:
    for block in results.get("scrape", []):
        if block["gpus"] == gpus:
            row = block["rows"].get(key)
            return row if row and "p99_ms" in row else None
    return None


def _cycle(results: dict[str, Any], gpus: int) -> dict[str, Any] | None:
    return next((row for row in results.get("cycle", []) if row["gpus"] == gpus), None)


def _pss(results: dict[str, Any], gpus: int) -> float | None:
    """Every process of the exporter together: PSS, since RSS summed counts the pages the fork shares twice."""
    return next((b.get("pss_mb") for b in results.get("scrape", []) if b["gpus"] == gpus), None)


def _field(row: dict[str, Any] | None, key: str) -> float | None:
    return None if row is None else float(row[key])


def _attribution(results: dict[str, Any], key: str) -> float | None:
    ratio = results.get("attribution", {}).get(key)
    return None if ratio is None else float(ratio)


def _wrk(results: dict[str, Any], gpus: int) -> dict[str, Any] | None:
    return next((b for b in results.get("scale", {}).get("scrapes", []) if b["gpus"] == gpus), None)


def _typical_p99(block: dict[str, Any] | None, key: str) -> float | None:
    row = block["rows"].get(key) if block else None
    return None if row is None else float(row.get("p99_median_of_rounds_ms", row["p99_ms"]))


def _scale_checks(results: dict[str, Any]) -> list[tuple[str, float | None, str]]:
    """What a scraper meets over whole cycles (wrk), and the memory of every process together."""
    small, large = _wrk(results, 8), _wrk(results, 4096)
    small_pss = small["memory_warm_mb"]["pss"] if small else None
    large_pss = large["memory_warm_mb"]["pss"] if large else None
    small_p99 = small["rows"]["otel-fakegpu/plain"]["p99_ms"] if small else None
    small_gzip_p99 = small["rows"]["otel-fakegpu/gzip"]["p99_ms"] if small else None
    large_p99 = large["rows"]["otel-fakegpu/gzip"]["p99_ms"] if large else None
    # Against the floor, each server's median of its rounds' p99s: a second in which the shared machine stalls
    # (both servers met 5.8 ms in the same second once) decides a p99 of all requests by whose turn it was.
    ours_typical, floor_typical = (_typical_p99(small, name) for name in ("otel-fakegpu/plain", "floor/plain"))
    over_floor = ours_typical - floor_typical if ours_typical is not None and floor_typical is not None else None
    return [
        ("wrk over >= 3 cycles: p99, 8 GPUs, 8 clients <= 1 ms", small_p99, "<=1"),
        ("... and within 0.15 ms of the floor's (medians of 1 s rounds' p99)", over_floor, "<=0.15"),
        ("wrk over >= 3 cycles: p99, 8 GPUs, gzip, 8 clients <= 1 ms", small_gzip_p99, "<=1"),
        ("wrk over >= 3 cycles: p99, 4096 GPUs, gzip, 8 clients <= 50 ms", large_p99, "<=50"),
        ("start to first full scrape, 8 GPUs <= 0.5 s (median of 3)", _field(small, "startup_s"), "<=0.5"),
        ("start to first full scrape, 4096 GPUs <= 1.0 s (median of 3)", _field(large, "startup_s"), "<=1.0"),
        ("memory, every process (PSS), 8 GPUs <= 80 MB", small_pss, "<=80"),
        ("memory, every process (PSS), 4096 GPUs <= 300 MB", large_pss, "<=300"),
    ]


def _fleet_checks(results: dict[str, Any]) -> list[tuple[str, float | None, str]]:
    """What each simulated GPU of a fleet costs (bench.fleet_scale): memory and the workers' CPU time."""
    fleet = results.get("fleet", {})
    return [
        ("fleet: marginal PSS per GPU, 256 -> 1024 hosts x 8 <= 25 KB", fleet.get("marginal_pss_kb_per_gpu"), "<=25"),
        ("fleet: cycle CPU per series (1024 hosts x 8) <= 6 us", fleet.get("cycle_cpu_us_per_series"), "<=6"),
    ]


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured figure and met / missed / not measured (quick runs skip some)."""
    checks: list[tuple[str, float | None, str]] = [*_scale_checks(results), *_fleet_checks(results)]
    for transport in ("tcp", "uds"):
        row = _scrape(results, 8, f"otel-fakegpu/{transport}/plain/8")
        checks.append((f"scrape p99, 8 GPUs, {transport}, 8 clients <= 2 ms", _field(row, "p99_ms"), "<=2"))
    big = _scrape(results, 4096, "otel-fakegpu/tcp/gzip/8")
    base = _scrape(results, 4096, "baseline-a-client_python/tcp/gzip/8")
    checks.append(("scrape p99, 4096 GPUs, gzip, 8 clients <= 100 ms", _field(big, "p99_ms"), "<=100"))
    ratio = big["p99_ms"] / base["p99_ms"] if big and base else None
    checks.append(("... and <= 0.1 x baseline (a) p99", ratio, "<=0.1"))
    small, large = _cycle(results, 8), _cycle(results, 4096)
    checks.append(("cycle, 8 GPUs <= 5 ms", _field(small, "cycle_ms"), "<=5"))
    checks.append(("cycle, 4096 GPUs <= 1500 ms", _field(large, "cycle_ms"), "<=1500"))
    checks.append(("cycle, 4096 GPUs <= 1.3 x sdk_floor_ms", _field(large, "cycle_over_floor"), "<=1.3"))
    checks.append(("startup (8 GPUs) <= 1.5 s", _field(small, "startup_s"), "<=1.5"))
    checks.append(("memory after the scrapes' warm-up (PSS), 8 GPUs <= 80 MB", _pss(results, 8), "<=80"))
    checks.append(("memory after the scrapes' warm-up (PSS), 4096 GPUs <= 600 MB", _pss(results, 4096), "<=600"))
    checks.append(("idle CPU, 8 GPUs < 1 % of a core", results.get("idle_cpu_pct"), "<1"))
    push = results.get("otlp_push", {})
    whole = push.get("points_received") == push.get("points_expected")
    push_s = push.get("otlp_push_s") if push.get("gpus") == 4096 and whole else None
    checks.append(("OTLP push of a 4096-GPU cycle <= 3 s, all points", push_s, "<=3"))
    checks.append(
        ("cycle, 8 GPUs + 110 pods attributed <= 1.1 x unattributed", _attribution(results, "ratio"), "<=1.1")
    )
    checks.append(
        ("... kubelet call and mapping alone <= 1.1 x", _attribution(results, "fetch_and_map_ratio"), "<=1.1")
    )
    whole_run = not results.get("quick") and results.get("sections") == "all"  # a part says nothing of the whole
    checks.append(("the whole default make bench < 600 s", results.get("elapsed_s") if whole_run else None, "<600"))
    verdicts = []
    for name, value, rule in checks:
        limit = float(rule.lstrip("<="))
        if value is None:
            verdict = "not measured"
        else:
            ok = value < limit if rule.startswith("<") and not rule.startswith("<=") else value <= limit
            verdict = "met" if ok else "MISSED"
        verdicts.append({"target": name, "measured": None if value is None else round(value, 3), "verdict": verdict})
    return verdicts


def pace_text(results: dict[str, Any]) -> str:
    """The machine's pace as each section started, "section ms, ..." ("" for results from before it was taken)."""
    return ", ".join(f"{section} {ms}" for section, ms in results.get("pace_ms", {}).items())


def rounds_p99_text(row: dict[str, Any]) -> str:
    return " ".join(f"{p99:.2f}" for p99 in row.get("rounds_p99_ms", []))


def rounds_text(block: dict[str, Any]) -> str:
    rounds = block.get("rounds", 1)
    return f" in {rounds} alternating rounds (p50 and p99: of every round's requests together)" if rounds > 1 else ""


def print_scale(scale: dict[str, Any]) -> None:
    window = scale["wrk_window_s"]
    for block in scale["scrapes"]:
        print(
            f"\nwrk, {block['gpus']} GPUs, {block['clients']} clients, {window:g} s per server{rounds_text(block)}, "
            f"cycle every "
            f"{block['interval_ms']} ms; {block['processes']} processes, memory RSS/PSS "
            f"{block['memory_warm_mb']['rss']}/{block['memory_warm_mb']['pss']} MB warm, "
            f"{block['memory_after_load_mb']['rss']}/{block['memory_after_load_mb']['pss']} MB after; "
            f"start to first full scrape {block['startup_s']} s (median of {block.get('startup_samples_s')}, "
            f"paces before each {block.get('startup_paces_ms')} ms)"
        )
        head = f"{'server/encoding':<24} {'p50_ms':>9} {'p99_ms':>9} {'max_ms':>9} {'requests':>9}"
        print(f"{head} errors cycles  rounds' p99: median, each")
        for key, row in block["rows"].items():
            print(
                f"{key:<24} {row['p50_ms']:>9.2f} {row['p99_ms']:>9.2f} {row['max_ms']:>9.2f} {row['requests']:>9} "
                f"{row['errors']:>6} {row.get('cycles_in_window', '-')!s:>6}  "
                f"{row.get('p99_median_of_rounds_ms', '-')}, {rounds_p99_text(row)}"
            )
    print("\nfleet (scraped host by host through /sd, 8 gzip clients)")
    print(
        "hosts gpus workers cycle_s cycles scrape_p50 scrape_p99 core_s/cycle workers_busy server_busy "
        "rss_mb pss_mb pss_kb/gpu"
    )
    for f in scale["fleet"]:
        sd = f["scrape_via_sd"]
        print(
            f"{f['hosts']:>5} {f['gpus']:>4} {f['workers']:>7} {f['cycle_s_median']:>7} {f['cycles_in_window']:>6} "
            f"{sd['p50_ms']:>10.2f} {sd['p99_ms']:>10.2f} {f['cpu_core_s_per_cycle']!s:>12} "
            f"{f['cpu_cores_busy']:>12} {f['server_cores_busy']:>11} "
            f"{f['memory_mb']['rss']:>6} {f['memory_mb']['pss']:>6} {f['pss_kb_per_gpu']:>10}"
        )
    p = scale["projection"]
    if p:
        print(
            f"projection: {p['gpus']} GPUs at {p['interval_s']:g} s need ~{p['cores']} cores and "
            f"~{p['memory_gb']} GB (from the --workers {p['from_workers']} run, linear per GPU)"
        )


def print_fleet(fleet: dict[str, Any]) -> None:
    print(f"\nfleet cost (--workers 1, cycle every {fleet['interval_ms']} ms, workers' CPU over {fleet['window_s']} s)")
    print("hosts  gpus  series startup_s pss_mb (per process)        cycles cpu_us/series/cycle")
    for f in fleet["fleets"]:
        each = "+".join(str(p["pss_mb"]) for p in f["processes"])
        print(
            f"{f['hosts']:>5} {f['gpus']:>5} {f['series']:>7} {f['startup_s']:>9} {f['pss_mb']:>6} ({each:<18}) "
            f"{f['cycles_in_window']:>6} {f['cpu_us_per_series_cycle']!s:>19}"
        )
    print(f"marginal PSS per GPU: {fleet['marginal_pss_kb_per_gpu']} KB")


def print_report(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; run took {results['elapsed_s']} s")
    if paces := pace_text(results):
        print(f"pace (a fixed CPU-bound loop, ms; lower is faster, the run's context only): {paces}")
    if "scale" in results:
        print_scale(results["scale"])
    if "fleet" in results:
        print_fleet(results["fleet"])
    if "cycle" in results:
        print_classic(results)
    print("\ntargets")
    for t in results["targets"]:
        print(f"  {t['verdict']:<13} {t['target']:<66} measured {t['measured']}")


def print_classic(results: dict[str, Any]) -> None:
    print("\ncycle (median, exporter's own report)     sdk floor (stock SDK, in-memory reader)")
    header = ("gpus", "series", "cycle_ms", "us/series", "sdk_floor_ms", "ratio", "startup_s")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (6, 8, 10, 10, 13, 6, 10), strict=True)))
    for r in results["cycle"]:
        print(
            f"{r['gpus']:>6} {r['series']:>8} {r['cycle_ms']:>10.2f} {r['us_per_series']:>10.2f} "
            f"{r['sdk_floor_ms']:>13.2f} {r['cycle_over_floor']:>6.2f} {r['startup_s']:>10.2f}"
        )
    for block in results["scrape"]:
        print(
            f"\nscrapes, {block['gpus']} GPUs (otel-fakegpu, every process, RSS/PSS after warm-up: "
            f"{block['rss_mb']}/{block.get('pss_mb')} MB, after all runs: {block['rss_after_load_mb']}/"
            f"{block.get('pss_after_load_mb')} MB)"
        )
        columns = f"{'p50_ms':>9} {'p99_ms':>9} {'requests':>9} {'bytes':>10} errors"
        print(f"{'server/transport/encoding/clients':<48} {columns}")
        for key, row in block["rows"].items():
            if "skipped" in row:
                print(f"{key:<48} {'skipped: ' + row['skipped']}")
            else:
                print(
                    f"{key:<48} {row['p50_ms']:>9.2f} {row['p99_ms']:>9.2f} {row['requests']:>9} "
                    f"{row['bytes']:>10} {row['errors']}"
                )
    print(f"\nidle CPU, 8 GPUs, 30 s cycle, scrape every 15 s: {results['idle_cpu_pct']} % of one core")
    push = results["otlp_push"]
    print(
        f"OTLP push, {push['gpus']} GPUs: {push['points_received']}/{push['points_expected']} points "
        f"in {push['requests']} requests; push {push['otlp_push_s']} s (hand-off to last delivery), "
        f"{push['collection_to_delivery_s']} s from the start of the SDK collection"
    )
    print(report_line(results))

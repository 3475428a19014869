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


def _rss(results: dict[str, Any], gpus: int) -> float | None:
    return next((b["rss_mb"] for b in results.get("scrape", []) if b["gpus"] == gpus), None)


def _field(row: dict[str, Any] | None, key: str) -> float | None:
    return None if row is None else float(row[key])


def _attribution(results: dict[str, Any], key: str) -> float | None:
    ratio = results.get("attribution", {}).get(key)
    return None if ratio is None else float(ratio)


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured figure and met / missed / not measured (quick runs skip some)."""
    checks: list[tuple[str, float | None, str]] = []
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
    checks.append(("rss, 8 GPUs <= 80 MB", _rss(results, 8), "<=80"))
    checks.append(("rss, 4096 GPUs <= 600 MB", _rss(results, 4096), "<=600"))
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


def print_report(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; run took {results['elapsed_s']} s")
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
            f"\nscrapes, {block['gpus']} GPUs (otel-fakegpu rss after warm-up: {block['rss_mb']} MB, "
            f"after all runs: {block['rss_after_load_mb']} MB)"
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
    print("\ntargets")
    for t in results["targets"]:
        print(f"  {t['verdict']:<13} {t['target']:<52} measured {t['measured']}")

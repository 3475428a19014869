"""The compose demo brought up with podman-compose (tests/stack_compose.py says how) and checked end to end:
health, the Prometheus target and its 4 GPUs, the same value by pull (Prometheus) and by OTLP push through a real
collector (rotel) into VictoriaMetrics, the scenario's XID delivered as an alert by Alertmanager to the alert-log
webhook, traces in the sink, the dashboards' queries; then failure drills on the running stack, and `down -v`
leaving nothing. The tests run in file order against one stack. Run by `make stack-test`, skipped elsewhere."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack_compose import SERVICES, TIME_SCALE, Stack, dashboard_queries, down, json_objects, prepare, spans, up
from tests.stack_engine import PREFIX, healthy, leftovers, podman, podman_json, report, skip_unless_stack, wait_for

pytestmark = skip_unless_stack
CYCLE_S = 5.0  # compose.yaml's DCGM_EXPORTER_INTERVAL
GPU0_TEMP = '{__name__=~"(?i)DCGM_FI_DEV_GPU_TEMP", gpu="0"}'


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = prepare(f"{PREFIX}demo", tmp_path_factory.mktemp("compose"))
    try:
        up(running)
        yield running
    finally:
        down(running)  # again after test_down_leaves_nothing: a no-op then, the cleanup when a test failed


def test_every_service_becomes_healthy(stack: Stack) -> None:
    times = {}
    for service in SERVICES:
        name = stack.container(service)
        probed = podman_json("inspect", name)[0]["Config"].get("Healthcheck") is not None

        def ready(name: str = name, probed: bool = probed) -> bool:
            if probed:
                return healthy(name)
            return bool(podman("inspect", name, "--format", "{{.State.Running}}").stdout.strip() == "true")

        left = 120 - (time.monotonic() - stack.up_at)
        wait_for(f"{service} healthy", ready, timeout=max(left, 1))
        times[service] = time.monotonic() - stack.up_at
    slowest = max(times, key=times.__getitem__)
    report("compose up: every service healthy", f"{len(times)} services in {times[slowest]:.1f} s (slowest {slowest})")


def test_prometheus_scrapes_the_exporter_and_its_four_gpus(stack: Stack) -> None:
    def target_up() -> bool:
        targets = stack.prometheus("/api/v1/targets")["activeTargets"]
        return any(t["labels"]["job"] == "gpu-metrics" and t["health"] == "up" for t in targets)

    wait_for("the exporter's target up", target_up, timeout=60)
    temps = wait_for("4 GPU temperatures", lambda: len(stack.query("DCGM_FI_DEV_GPU_TEMP")) == 4 or None, timeout=30)
    series = stack.query("DCGM_FI_DEV_GPU_TEMP")
    assert temps and {s["metric"]["gpu"] for s in series} == {"0", "1", "2", "3"}, series
    assert {s["metric"]["Hostname"] for s in series} == {"demo-node"}
    total = int(float(stack.query("count({__name__=~'DCGM_.+'})")[0]["value"][1]))
    report("Prometheus target gpu-metrics", f"up; DCGM_FI_DEV_GPU_TEMP: {len(series)} GPUs; {total} DCGM series")


def pulled_by_cycle(stack: Stack) -> dict[int, float]:
    """GPU 0's temperature by cycle number, from Prometheus: each scrape's value with the page's own cycle count."""
    window = "[3m]"
    temps = stack.query(f'DCGM_FI_DEV_GPU_TEMP{{gpu="0"}}{window}')[0]["values"]
    cycles = stack.query(f"otel_fakegpu_cycles_total{window}")[0]["values"]
    cycle_at = {float(ts): int(value) for ts, value in cycles}
    return {cycle_at[float(ts)]: float(value) for ts, value in temps if float(ts) in cycle_at}


def pushed_cycles(stack: Stack) -> dict[int, float]:
    """Cycle number -> cycle timestamp (s), as pushed: every point of a cycle carries its collection time."""
    (cycles,) = stack.victoria_samples("otel_fakegpu_cycles_total")
    numbers = [int(value) for value in cycles["values"]]
    assert len(numbers) == len(set(numbers)), f"a cycle stored twice: {numbers}"
    return dict(zip(numbers, (ts / 1000 for ts in cycles["timestamps"]), strict=True))


def test_pull_and_otlp_push_agree_for_the_same_cycle(stack: Stack) -> None:
    def matched() -> dict[float, tuple[float, float]] | None:
        pulled, cycle_time = pulled_by_cycle(stack), pushed_cycles(stack)
        (pushed,) = stack.victoria_samples(GPU0_TEMP)
        by_time = dict(zip((ts / 1000 for ts in pushed["timestamps"]), pushed["values"], strict=True))
        both = {
            cycle_time[n]: (value, by_time[cycle_time[n]])
            for n, value in pulled.items()
            if cycle_time.get(n) in by_time
        }
        return both if len(both) >= 3 else None

    both = wait_for("3 cycles both pulled and pushed", matched, timeout=60, interval=2)
    disagree = {ts: pair for ts, pair in both.items() if pair[0] != pair[1]}
    assert not disagree, disagree
    report(
        "pull vs OTLP push (exporter -> rotel -> VictoriaMetrics)",
        f"GPU 0 temperature equal in {len(both)} of {len(both)} cycles (same cycle number and timestamp)",
    )


def test_scenario_xid_alert_reaches_the_webhook(stack: Stack) -> None:
    def delivered() -> dict[str, object] | None:
        for alert in json_objects(stack.logs("alert-log")):
            if alert.get("alertname") == "GpuXidError" and alert.get("status") == "firing":
                return alert
        return None

    alert = wait_for("GpuXidError at the webhook", delivered, timeout=120 / TIME_SCALE + 90, interval=2)
    assert alert["gpu"] == "0" and alert["Hostname"] == "demo-node", alert
    samples = stack.query('DCGM_FI_DEV_XID_ERRORS{gpu="0"}[10m]')[0]["values"]
    first_seen = min(float(ts) for ts, value in samples if float(value) != 0)
    delay = float(str(alert["received"])) - first_seen
    report(
        "XID alert delivered (Prometheus -> Alertmanager -> webhook)",
        f"GpuXidError gpu 0 Hostname demo-node, {delay:.1f} s after the first scrape that saw XID {samples[-1][1]}",
    )


def test_traces_reach_the_trace_sink(stack: Stack) -> None:
    def cycle_with_children() -> tuple[dict[str, str], list[dict[str, str]]] | None:
        found = spans(stack.logs("tempo"))
        for root in (s for s in found if s.get("Name") == "collection cycle"):
            children = [s for s in found if s.get("Parent ID") == root.get("ID")]
            if len(children) >= 2:
                return root, children
        return None

    _, children = wait_for("a cycle span with children in the sink", cycle_with_children, timeout=60, interval=2)
    names = sorted({child["Name"] for child in children})
    assert "engine read" in names and "sdk collection" in names, names
    report(
        "traces at the sink (rotel in Tempo's place)", f"cycle span with {len(children)} children: {', '.join(names)}"
    )


def test_dashboard_queries_run_against_prometheus(stack: Stack) -> None:
    queries = dashboard_queries()
    with_data = sum(1 for _, expr in queries if stack.query(expr))  # a failing query fails the test
    report("dashboard queries on Prometheus", f"{len(queries)} run, {with_data} with data, 0 errors")


# Failure drills on the running stack.


def _cycles_made(stack: Stack) -> int:
    """The cycles the exporter has made (its /health's ``cycles_total``)."""
    return int(json.loads(stack.exporter("/health")[1])["cycles_total"])


def test_collector_outage_loses_and_repeats_no_cycle(stack: Stack) -> None:
    collector = stack.container("otel-collector")
    podman("stop", "--time", "10", collector)
    stopped_at = time.time()
    # An outage of 3 cycles made after the stop: 4 published, the first may have been collected before it.
    made = _cycles_made(stack)
    wait_for("3 cycles made during the outage", lambda: _cycles_made(stack) >= made + 4, timeout=30 * CYCLE_S)
    podman("start", collector)
    restarted_at = time.time()

    def caught_up() -> dict[int, float] | None:
        cycles = pushed_cycles(stack)  # fails on a cycle stored twice
        return cycles if max(cycles.values()) > restarted_at + 2 * CYCLE_S else None

    cycles = wait_for("pushes after the collector is back", caught_up, timeout=120, interval=2)
    numbers = sorted(cycles)
    lost = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    during = [n for n, ts in cycles.items() if stopped_at <= ts <= restarted_at]
    (temps,) = stack.victoria_samples(GPU0_TEMP)
    assert not lost and len(temps["timestamps"]) == len(set(temps["timestamps"])), (lost, numbers)
    assert len(during) >= 3, cycles
    report(
        "drill: collector stopped 3 cycles",
        f"{len(during)} cycles made during the outage all in VictoriaMetrics; cycles {numbers[0]}-{numbers[-1]}: 0 lost, 0 twice",
    )


def test_exporter_restart_is_one_scrape_at_most(stack: Stack) -> None:
    before = time.time()
    podman("restart", "--time", "10", stack.container("otel-fakegpu"))
    wait_for("the exporter back", lambda: stack.exporter("/health")[0] == 200, timeout=60, interval=0.5)
    back = time.time()

    def four_more_scrapes() -> list[list[Any]] | None:
        span = int(time.time() - before) + 5
        (up,) = stack.query(f'up{{job="gpu-metrics"}}[{span}s]')
        values: list[list[Any]] = up["values"]
        return values if sum(1 for ts, _ in values if float(ts) >= back) >= 4 else None

    values = wait_for("four scrapes after the restart", four_more_scrapes, timeout=30 * CYCLE_S)
    down_scrapes = sum(1 for ts, value in values if float(ts) >= before and value == "0")
    assert down_scrapes <= 1, values
    assert not stack.query('ALERTS{alertname=~"GpuExporterStale|GpuExporterDown"}')
    report("drill: exporter container restarted", f"up == 0 for {down_scrapes} scrape(s); GpuExporterStale not firing")


def test_killed_worker_is_reported_and_replaced(stack: Stack) -> None:
    def health() -> tuple[int, dict[str, Any]]:
        status, body = stack.exporter("/health")
        return status, json.loads(body)

    _, before = health()
    worker: dict[str, Any] = before["workers"][0]  # one host, one worker
    exporter = stack.container("otel-fakegpu")
    killed = time.monotonic()
    podman("exec", exporter, "python3", "-c", f"import os, signal; os.kill({worker['pid']}, signal.SIGKILL)")

    def reported() -> tuple[int, dict[str, Any]] | None:
        answer = health()
        now = answer[1]["workers"][0]
        return answer if not now["alive"] or now["pid"] != worker["pid"] else None

    said_status, said = wait_for("/health reporting the dead worker", reported, timeout=20, interval=0.05)
    said_s = time.monotonic() - killed

    def recovered() -> dict[str, Any] | None:
        status, answer = health()
        now = answer["workers"][0]
        fresh = now["alive"] and now["restarts"] > worker["restarts"] and answer["status"] == "healthy"
        return answer if status == 200 and fresh else None

    wait_for("a new worker and a healthy /health", recovered, timeout=60, interval=0.5)
    report(
        "drill: worker process killed in the container",
        f"/health {said_status} {said.get('status')} after {said_s:.2f} s, healthy again after {time.monotonic() - killed:.1f} s",
    )


def test_down_leaves_nothing(stack: Stack) -> None:
    result = down(stack)
    assert result.returncode == 0, result.stderr[-3000:]
    left = leftovers("io.podman.compose.project", stack.project)
    volumes = podman("volume", "ls", "--quiet").stdout.split()  # anonymous ones carry no project label
    networks = [n for n in podman("network", "ls", "--format", "{{.Name}}").stdout.split() if n != "podman"]
    assert not any(left.values()) and not volumes and not networks, (left, volumes, networks)
    report("podman-compose down -v", "0 containers, 0 pods, 0 volumes, 0 networks left")

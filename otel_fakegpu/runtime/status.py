"""/health and the fleet summary from the facts the workers last reported (a dead worker's hosts: failed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from otel_fakegpu.attribution.stage import health_entry
from otel_fakegpu.engine import EngineState, EngineStatus
from otel_fakegpu.outputs import Format
from otel_fakegpu.runtime.spawn import WorkerHandle
from otel_fakegpu.serve import HealthReport, evaluate
from otel_fakegpu.serve.accept import PAUSES
from otel_fakegpu.telemetry import CycleStatsView

if TYPE_CHECKING:  # main.py renders the summary before the event-loop side loads (spawn.py)
    from otel_fakegpu.runtime.pool import WorkerPool


@dataclass(frozen=True)
class FleetFacts:
    engine: EngineStatus
    reads_total: int
    sdk_collections_total: int
    stats: CycleStatsView
    hosts: int
    restarts: int


def _engine(workers: Sequence[WorkerHandle], hosts: list[dict[str, Any]]) -> EngineStatus:
    dead = [w.detail or f"worker {w.slot} is not running" for w in workers if not w.alive]
    if dead:
        return EngineStatus("worker", EngineState.FAILED, "; ".join(dead))
    engines = [h["engine"] for h in hosts]
    if not engines:
        return EngineStatus("worker", EngineState.STARTING)
    failed = [e for e in engines if e["state"] == EngineState.FAILED.value]
    chosen = failed[0] if failed else engines[0]
    return EngineStatus(str(chosen["kind"]), EngineState(chosen["state"]), str(chosen["detail"]))


def gather(pool: WorkerPool) -> FleetFacts:
    """Sum and worst-of over every host: the whole process's view."""
    workers = pool.workers
    hosts = [facts for w in workers for facts in w.facts.values()]
    oks = [h["last_ok_at"] for h in hosts]
    slowest = max(workers, key=lambda w: w.cycle_seconds[-1] if w.cycle_seconds else 0.0)
    errors = [h["last_error"] for h in hosts if h["last_error"]]
    stats = CycleStatsView(
        cycles_total=sum(h["cycles_total"] for h in hosts),
        errors_total=sum(h["errors_total"] for h in hosts),
        last_ok_at=None if not oks or len(hosts) < len(pool.plan.hosts) or None in oks else min(oks),
        last_duration_s=slowest.cycle_seconds[-1] if slowest.cycle_seconds else None,
        last_error=errors[0] if errors else None,
        series=sum(h["series"] for h in hosts),
        gpus=sum(h["gpus"] for h in hosts),
        recent_durations_s=tuple(slowest.cycle_seconds),
    )
    return FleetFacts(
        _engine(workers, hosts),
        sum(h["reads_total"] for h in hosts),
        sum(h["sdk_collections_total"] for h in hosts),
        stats,
        len(pool.plan.hosts),
        sum(w.restarts for w in workers),
    )


def _host_facts(pool: WorkerPool) -> list[tuple[str, dict[str, Any]]]:
    return [(name, facts) for w in pool.workers for name, facts in w.facts.items()]


def health_report(pool: WorkerPool, now: float) -> HealthReport:
    facts = gather(pool)
    report = evaluate(
        facts.engine,
        facts.reads_total,
        facts.stats,
        pool.settings.collect_interval_s,
        now,
        facts.sdk_collections_total,
        _gpus_missing(pool),
        dead_loops={
            f"{name} ({host})": why for host, h in _host_facts(pool) for name, why in h.get("dead_loops", {}).items()
        },
    )
    report.body["hosts"] = facts.hosts
    # Each host's workload map (one host: an object; a fleet: one per host), its age taken now. A failing source
    # never makes /health unhealthy: a kubelet restart must not get the exporter restarted by its probe.
    maps = [health_entry(h["attribution"], now) for w in pool.workers for h in w.facts.values() if h.get("attribution")]
    if maps:
        report.body["attribution"] = maps[0] if len(maps) == 1 else maps
    report.body["accept_pauses"] = PAUSES.facts()  # out of descriptors: new connections waited, open ones served
    queues = _push_queues(pool, now)
    if queues is not None:
        report.body["push_queue"] = queues
        if queues["state"] == "degraded" and report.body["status"] == "healthy":
            report.body["status"] = "degraded"  # push works; a restart now could lose what is in memory only
    report.body["workers"] = [
        {
            "pid": w.process.pid if w.process else None,
            "hosts": len(w.hosts),
            "alive": w.alive,
            "restarts": w.restarts,
            "recent_cycle_seconds": w.cycle_seconds,  # this worker's own, oldest first (the fleet's are the slowest's)
        }
        for w in pool.workers
    ]
    return report


def _push_queues(pool: WorkerPool, now: float) -> dict[str, Any] | None:
    """The queue directory's state: ``degraded`` while any queue keeps requests in memory only (a disk
    below its free-space floor, a failing write); per target, ``host/target`` in a fleet. None: no queue."""
    fleet = len(pool.plan.hosts) > 1
    targets: dict[str, Any] = {}
    for host, facts in _host_facts(pool):
        for target, state in facts.get("push_queue", {}).items():
            oldest = state["oldest_created_at"]
            targets[f"{host}/{target}" if fleet else target] = {
                "records": state["records"],
                "bytes": state["bytes"],
                "oldest_age_seconds": None if oldest is None else round(max(0.0, now - oldest), 3),
                "corrupt_records": state["corrupt"],
                "degraded": state["degraded"],
            }
    if not targets:
        return None
    degraded = any(t["degraded"] for t in targets.values())
    return {"state": "degraded" if degraded else "ok", "targets": targets}


def _gpus_missing(pool: WorkerPool) -> list[int | str]:
    """GPUs off the bus: their indices on a single host, ``host/index`` in a fleet."""
    by_host = [(host, facts.get("gpus_missing", [])) for w in pool.workers for host, facts in w.facts.items()]
    if len(pool.plan.hosts) == 1:
        return [int(index) for _, missing in by_host for index in missing]
    return [f"{host}/{index}" for host, missing in by_host for index in missing]


_SUMMARY = (
    ("otel_fakegpu_hosts", "gauge", "Hosts this process simulates.", "hosts"),
    ("otel_fakegpu_gpus", "gauge", "GPUs in the last cycle, every host.", "gpus"),
    ("otel_fakegpu_workers", "gauge", "Worker processes running.", "workers"),
    ("otel_fakegpu_worker_restarts", "counter", "Worker processes restarted after they died.", "restarts"),
    ("otel_fakegpu_cycles", "counter", "Host collection cycles run, every host.", "cycles"),
    ("otel_fakegpu_cycle_errors", "counter", "Host collection cycles that failed.", "errors"),
    ("otel_fakegpu_engine_reads", "counter", "Engine reads, every host.", "reads"),
    ("otel_fakegpu_sdk_collections", "counter", "OpenTelemetry SDK collections, every host.", "collections"),
    ("otel_fakegpu_cycle_duration_seconds", "gauge", "Duration of the slowest worker's last cycle.", "duration"),
)


def render_summary(pool: WorkerPool, fmt: Format) -> bytes:
    """The fleet's /metrics: the process's own series (each host's GPUs are at /hosts/<host>/metrics)."""
    facts = gather(pool)
    values = {
        "hosts": facts.hosts,
        "gpus": facts.stats.gpus,
        "workers": sum(1 for w in pool.workers if w.alive),
        "restarts": facts.restarts,
        "cycles": facts.stats.cycles_total,
        "errors": facts.stats.errors_total,
        "reads": facts.reads_total,
        "collections": facts.sdk_collections_total,
        "duration": facts.stats.last_duration_s or 0.0,
    }
    lines = []
    openmetrics = fmt is Format.OPENMETRICS
    for name, kind, help_text, key in _SUMMARY:
        sample = f"{name}_total" if kind == "counter" else name
        family = name if openmetrics or kind != "counter" else sample
        lines += [f"# HELP {family} {help_text}", f"# TYPE {family} {kind}", f"{sample} {values[key]}"]
    if openmetrics:
        lines.append("# EOF")
    return ("\n".join(lines) + "\n").encode()

"""What simulation costs a cycle: 8 GPUs driven by 4 workloads against 8 GPUs on plain profiles.

Both fleets run in this process through the exporter's own stages (engine, simulator, pipeline, renderer);
simulator updates run between cycles, as in the exporter (its own thread), and are timed apart. Target:
workloads make a cycle at most 20 % slower than profiles.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from otel_fakegpu.engine import EmbeddedEngine
from otel_fakegpu.fields import default_collectors_path, load_collectors
from otel_fakegpu.outputs import PrometheusTextRenderer
from otel_fakegpu.sim import SKUS, FleetSpec, Simulator, Workload
from otel_fakegpu.telemetry import CycleStats, LabelScheme, TelemetryPipeline, default_resource

GPUS = 8
TARGET_RATIO = 1.2
WORKLOADS = (
    Workload("trainer-0", "ml", "pytorch", gpus=(0, 1, 2, 3), shape="training"),
    Workload("infer-0", "serving", "triton", gpus=(4, 5), shape="inference"),
    Workload("infer-1", "serving", "triton", gpus=(6,), shape="inference"),
    Workload("notebook", "research", "jupyter", gpus=(7,), shape="idle"),
)


class _Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class _Fleet:
    """One in-process exporter minus serving: engine, simulator, pipeline and renderer on a manual clock."""

    def __init__(self, with_workloads: bool) -> None:
        self.clock = _Clock()
        self.engine = EmbeddedEngine(self.clock)
        spec = FleetSpec(GPUS, ("stable", "wave", "spike"), (SKUS["h100-sxm"],), "bench-node", 1)
        self.simulator = Simulator(spec, self.engine, clock=self.clock)
        collectors = load_collectors(default_collectors_path())
        self.pipeline = TelemetryPipeline(
            collectors, LabelScheme("bench-node", collectors.labels), default_resource("bench", "bench-node"),
            CycleStats(), lambda: self.engine.reads_total,
        )  # fmt: skip
        self.renderer = PrometheusTextRenderer()
        self.simulator.start()
        for workload in WORKLOADS if with_workloads else ():
            self.simulator.add_workload(workload)
        self.cycle_s: list[float] = []
        self.update_s: list[float] = []

    def update_and_cycle(self) -> None:
        self.clock.now += 5.0
        started = time.perf_counter()
        self.simulator.step()
        self.update_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        self.renderer.render(self.pipeline.collect(self.pipeline.read(self.engine)))
        self.cycle_s.append(time.perf_counter() - started)


def measure_simulation(quick: bool) -> dict[str, Any]:
    """Both fleets cycle in turn (so machine noise hits both alike); medians after a warm-up."""
    cycles = 20 if quick else 300
    plain, busy = _Fleet(False), _Fleet(True)
    for _ in range(cycles + 10):
        plain.update_and_cycle()
        busy.update_and_cycle()
    plain.pipeline.shutdown()
    busy.pipeline.shutdown()

    def median_ms(values: list[float]) -> float:
        return round(statistics.median(values[10:]) * 1000, 3)

    ratio = median_ms(busy.cycle_s) / median_ms(plain.cycle_s)
    return {
        "gpus": GPUS,
        "workloads": len(WORKLOADS),
        "cycle_profiles_ms": median_ms(plain.cycle_s),
        "cycle_workloads_ms": median_ms(busy.cycle_s),
        "cycle_ratio": round(ratio, 3),
        "update_profiles_ms": median_ms(plain.update_s),
        "update_workloads_ms": median_ms(busy.update_s),
        "target_ratio": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
    }


def format_simulation(row: dict[str, Any]) -> str:
    verdict = "met" if row["met"] else "MISSED"
    return (
        f"simulation: {row['gpus']} GPUs cycle {row['cycle_profiles_ms']} ms on profiles, "
        f"{row['cycle_workloads_ms']} ms with {row['workloads']} workloads (x{row['cycle_ratio']}, target "
        f"<= x{row['target_ratio']}: {verdict}); simulator update {row['update_profiles_ms']} -> "
        f"{row['update_workloads_ms']} ms, outside the cycle"
    )

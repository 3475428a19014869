"""Cycle cost with a scenario running: 8 GPUs with 4 workloads and scripted faults (none that removes
series, so both runs export as many), next to the plain profile run. Measured in process (simulator update
+ engine read + SDK collection + render), the two runs interleaved so a busy machine slows both alike; the
simulator update (its own thread in the exporter, outside the cycle) is also reported on its own."""

from __future__ import annotations

import statistics
import time
from typing import Any

from otel_fakegpu.sim.scenario_file import parse_scenario
from tests.conftest import Stack, build_stack

GPUS = 8
STEP_S = 30.0
SCENARIO = """
seed: 1
gpus:
  - {count: 8, model: h100-sxm, profile: stable}
workloads:
  - {pod: trainer-0, namespace: ml, container: pytorch, gpus: [0, 1], shape: training}
  - {pod: trainer-1, namespace: ml, container: pytorch, gpus: [2, 3], shape: training, intensity: 0.8}
  - {pod: serve-0, namespace: serving, container: vllm, gpus: [4, 5], shape: inference}
  - {pod: batch-0, namespace: batch, container: spark, gpus: [6], shape: constant}
events:
  - {at: 1m, gpu: 0, xid: 48}
  - {at: 1m, gpu: 0, ecc: {dbe: 1, sbe: 5}}
  - {at: 2m, gpu: 2, fault: thermal_runaway}
  - {at: 3m, gpu: 4, fault: power_brake}
  - {at: 4m, gpu: 5, nvlink_crc: 10}
  - {at: 5m, gpu: 7, row_remap: pending}
"""


def _cycle_ms(stack: Stack) -> tuple[float, float]:
    """(update + cycle, update alone) in ms."""
    started = time.perf_counter()
    stack.clock.advance(STEP_S)
    stack.simulator.step()
    updated = time.perf_counter()
    stack.cycle()
    return (time.perf_counter() - started) * 1000.0, (updated - started) * 1000.0


def measure_scenario_cycle(cycles: int) -> dict[str, Any]:
    """Median ms of one update + cycle, plain profiles vs the scenario; ``overhead`` is their ratio - 1;
    ``*_update_ms``: the median simulator update alone."""
    plain = build_stack(GPUS, ("stable",), seed=1)
    scripted = build_stack(GPUS, ("stable",), scenario=parse_scenario(SCENARIO, "bench", GPUS), step_s=STEP_S)
    for stack in (plain, scripted):  # warm-up: caches, first variants
        _cycle_ms(stack)
    plain_ms, scenario_ms = [], []
    for _ in range(cycles):
        plain_ms.append(_cycle_ms(plain))
        scenario_ms.append(_cycle_ms(scripted))
    plain_median = statistics.median(total for total, _ in plain_ms)
    scenario_median = statistics.median(total for total, _ in scenario_ms)
    return {
        "gpus": GPUS,
        "workloads": 4,
        "cycles": cycles,
        "plain_ms": round(plain_median, 3),
        "scenario_ms": round(scenario_median, 3),
        "overhead": round(scenario_median / plain_median - 1.0, 3),
        "plain_update_ms": round(statistics.median(update for _, update in plain_ms), 3),
        "scenario_update_ms": round(statistics.median(update for _, update in scenario_ms), 3),
        "target_overhead": 0.2,
    }


def report_line(row: dict[str, Any]) -> str:
    verdict = "met" if row["overhead"] <= row["target_overhead"] else "NOT met"
    return (
        f"scenario cycle ({row['gpus']} GPUs, {row['workloads']} workloads, scripted faults): "
        f"{row['scenario_ms']} ms vs {row['plain_ms']} ms plain profiles, {row['overhead']:+.1%} "
        f"(target <= +{row['target_overhead']:.0%}: {verdict}); simulator update {row['scenario_update_ms']} ms "
        f"vs {row['plain_update_ms']} ms, in its own thread outside the cycle"
    )

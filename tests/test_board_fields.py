"""DCGM 4.6's new fields through the whole stack: a collectors file in their canonical names, a scenario that
degrades one GPU's NVSwitch fabric, and the page each cycle (the laws themselves: tests/physics_checker.py)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from otel_fakegpu.fields import CATALOG, MetricKind, ValueType, parse_collectors
from otel_fakegpu.sim.scenario_file import parse_scenario
from tests.conftest import build_stack

SCENARIO = """
seed: 4
gpus:
  - {count: 2, model: h100-sxm, profile: stable}
  - {count: 1, model: l4, profile: stable}
events:
  - {at: 60s, gpu: 1, fabric: degraded}
  - {at: 120s, gpu: 1, fabric: unhealthy}
  - {at: 180s, gpu: 1, fault: recover}
"""
NEW_FIELDS = {
    157: ("DCGM_FI_DEV_BOARD_POWER_RAW_WATTS", ValueType.DOUBLE, "W", MetricKind.GAUGE),
    160: ("DCGM_FI_DEV_BOARD_POWER_LIMIT_REQUESTED_WATTS", ValueType.DOUBLE, "W", MetricKind.GAUGE),
    164: ("DCGM_FI_DEV_BOARD_POWER_LIMIT_ENFORCED_WATTS", ValueType.DOUBLE, "W", MetricKind.GAUGE),
    174: ("DCGM_FI_DEV_FABRIC_HEALTH_MASK", ValueType.INT, "1", MetricKind.GAUGE),
    175: ("DCGM_FI_DEV_FABRIC_HEALTH_SUMMARY", ValueType.INT, "1", MetricKind.GAUGE),
    1085: ("DCGM_FI_PROF_SM_CYCLES_ACTIVE_TOTAL", ValueType.INT, "{cycle}", MetricKind.COUNTER),
    1090: ("DCGM_FI_PROF_DFMA_CYCLES_ACTIVE_TOTAL", ValueType.INT, "{cycle}", MetricKind.COUNTER),
}
COLLECTORS = "DCGM_FI_DEV_BOARD_POWER_WATTS, gauge, p\nDCGM_FI_PROF_SM_ACTIVE, gauge, s\n" + "".join(
    f"{name}, {kind.value}, x\n" for name, _, _, kind in NEW_FIELDS.values()
)


def test_new_fields_are_in_the_catalog_with_type_and_unit() -> None:
    for field_id, (name, value_type, unit, kind) in NEW_FIELDS.items():
        spec = CATALOG.by_name(name)
        assert (spec.id, spec.value_type, spec.unit, spec.kind) == (field_id, value_type, unit, kind), name


def _values(body: bytes) -> dict[str, dict[str, float]]:
    """Family -> gpu -> value."""
    return {
        f.name: {s.labels["gpu"]: s.value for s in f.samples if "gpu" in s.labels}
        for f in text_string_to_metric_families(body.decode())
    }


def test_fabric_degrades_and_recovers_and_counters_follow_their_ratios() -> None:
    stack = build_stack(3, ("stable",), scenario=parse_scenario(SCENARIO, "s.yaml", 3),
                        collectors=parse_collectors(COLLECTORS, "c.csv"))  # fmt: skip
    pages = []
    for _ in range(8):
        stack.clock.advance(30)
        stack.simulator.step()
        pages.append(_values(stack.cycle()))
    summary = [page.get("DCGM_FI_DEV_FABRIC_HEALTH_SUMMARY", {}) for page in pages]
    assert [s.get("1") for s in summary] == [1, 3, 3, 2, 2, 1, 1, 1]  # healthy, degraded, unhealthy, reset
    assert all(s.get("0") == 1 and "2" not in s for s in summary)  # the L4 has no NVSwitch fabric: no series
    assert {p["DCGM_FI_DEV_FABRIC_HEALTH_MASK"]["1"] for p in pages[3:5]} == {410.0}  # route-unhealthy bits
    for page in pages:
        assert page["DCGM_FI_DEV_BOARD_POWER_LIMIT_ENFORCED_WATTS"] == {"0": 700.0, "1": 700.0, "2": 72.0}
        for gpu, power in page["DCGM_FI_DEV_BOARD_POWER_WATTS"].items():
            assert abs(page["DCGM_FI_DEV_BOARD_POWER_RAW_WATTS"][gpu] - power) <= 0.06 * power + 1e-3
    cycles = [p["DCGM_FI_PROF_SM_CYCLES_ACTIVE_TOTAL"]["0"] for p in pages]
    assert cycles == sorted(cycles) and cycles[0] < cycles[-1]

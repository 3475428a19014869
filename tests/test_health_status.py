"""DCGM_EXP_GPU_HEALTH_STATUS and DCGM_EXP_P2P_STATUS, shaped as dcgm-exporter's gpu_health_collector.go and
p2p_status_collector.go produce them, driven by the simulated GPUs' health."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from otel_fakegpu.engine import Column, Snapshot
from otel_fakegpu.fields import CATALOG, parse_collectors
from otel_fakegpu.telemetry.dcgm_health import HEALTH_WATCHES, dcgm_health_points, p2p_points
from tests.conftest import Stack, build_stack

FILE = (
    "DCGM_FI_DRIVER_VERSION, label, Driver.\n"
    "DCGM_FI_DEV_GPU_TEMP, gauge, Temperature.\n"
    "DCGM_EXP_GPU_HEALTH_STATUS, gauge, Health status of each GPU health watch.\n"
    "DCGM_EXP_P2P_STATUS, gauge, P2P status of each GPU pair.\n"
)


def _families(stack: Stack) -> dict[str, list[Sample]]:
    return {f.name: f.samples for f in text_string_to_metric_families(stack.cycle().decode())}


HEALTHY = {230: 0, 112: 0, 150: 45.0, 155: 300.0, 311: 0, 395: 0, 396: 0}
FAULTY = {230: 79, 112: 0x40, 150: None, 155: None, 311: 1, 395: 1, 396: 1}  # every verdict drawn


class _Recording(Snapshot):
    """A snapshot that notes every field whose column is read."""

    def column(self, field_id: int) -> Column:
        self.__dict__.setdefault("read", set()).add(field_id)
        return super().column(field_id)


def test_catalog_reads_what_the_verdicts_use() -> None:
    """The catalog's derived_from is the cycle's read for 9003/9004: the status reads no column beyond it, and
    GPUs read through it alone pass when healthy and fail when faulty."""
    for field_id, points in ((9003, dcgm_health_points), (9004, p2p_points)):
        derived_from = CATALOG.by_id(field_id).derived_from
        for values, failing in ((HEALTHY, False), (FAULTY, True)):
            snapshot = _Recording.build((0, 1), {f: (values[f], values[f]) for f in derived_from}, 0.0)
            found = [value for _, _, value in points(snapshot)]
            assert snapshot.__dict__["read"] <= set(derived_from), field_id
            assert found and any(found) is failing, field_id


def test_healthy_gpus_pass_every_watch_and_every_peer_is_ok() -> None:
    stack = build_stack(3, ["stable"], collectors=parse_collectors(FILE))
    families = _families(stack)
    health = families["DCGM_EXP_GPU_HEALTH_STATUS"]
    assert len(health) == 3 * len(HEALTH_WATCHES) and {s.value for s in health} == {0}
    first = health[0].labels
    assert list(first)[-4:] == ["Hostname", "DCGM_FI_DRIVER_VERSION", "health_error_code", "health_watch"]
    assert {s.labels["health_watch"] for s in health} == set(HEALTH_WATCHES)
    assert {s.labels["health_error_code"] for s in health} == {"DCGM_FR_OK"}
    p2p = families["DCGM_EXP_P2P_STATUS"]
    assert sorted((s.labels["gpu"], s.labels["peer_gpu"]) for s in p2p) == [
        ("0", "1"), ("0", "2"), ("1", "0"), ("1", "2"), ("2", "0"), ("2", "1"),
    ]  # fmt: skip
    assert {(s.labels["link_status"], s.value) for s in p2p} == {("OK", 0)}
    assert list(p2p[0].labels)[-2:] == ["link_status", "peer_gpu"]


def test_a_gpu_fallen_off_the_bus_fails_and_its_peers_turn_unknown() -> None:
    stack = build_stack(2, ["stable"], collectors=parse_collectors(FILE))
    stack.engine.inject([(1, 230, 79)], stack.clock())  # XID 79: fallen off the bus
    families = _families(stack)
    failing = {(s.labels["gpu"], s.labels["health_watch"], s.labels["health_error_code"]): s.value
               for s in families["DCGM_EXP_GPU_HEALTH_STATUS"] if s.value}  # fmt: skip
    assert failing == {("1", "ALL", "DCGM_FR_FALLEN_OFF_BUS"): 20}
    assert {(s.labels["gpu"], s.labels["link_status"], s.value) for s in families["DCGM_EXP_P2P_STATUS"]} == {
        ("0", "Unknown", 6), ("1", "Unknown", 6),
    }  # fmt: skip


def test_a_faulty_gpu_turns_unhealthy_while_a_stable_one_stays_healthy() -> None:
    stack = build_stack(2, ["stable", "faulty"], collectors=parse_collectors(FILE))
    unhealthy: set[str] = set()
    for _ in range(40):
        stack.clock.advance(5)
        stack.simulator.step()
        unhealthy |= {s.labels["gpu"] for s in _families(stack)["DCGM_EXP_GPU_HEALTH_STATUS"] if s.value > 0}
    assert unhealthy == {"1"}

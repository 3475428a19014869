"""Workloads drive GPUs: placing, removing, stopping, sharing a GPU, and the one-line reasons for bad ones."""

from __future__ import annotations

import pytest

from otel_fakegpu.sim import SHAPE_NAMES, Workload, WorkloadError
from otel_fakegpu.sim.events import EventError, parse_event
from tests.conftest import build_stack

FIELDS = (1002, 1004, 1014, 1015, 252, 155, 449, 1011)


def _step(stack: object, times: int = 1, seconds: float = 30.0) -> None:
    for _ in range(times):
        stack.clock.advance(seconds)  # type: ignore[attr-defined]
        stack.simulator.step()  # type: ignore[attr-defined]


def test_shapes_registry_has_the_four_shapes_and_the_seven_profiles() -> None:
    assert SHAPE_NAMES[:4] == ("idle", "constant", "training", "inference")
    assert {"static", "stable", "spike", "wave", "degrading", "faulty", "chaos"} <= set(SHAPE_NAMES)


def test_a_workload_drives_its_gpus_and_others_keep_their_profile() -> None:
    stack = build_stack(3, ["static"], seed=1)
    sim = stack.simulator
    sim.add_workload(Workload("trainer", "ml", "pytorch", gpus=(0, 1), shape="training", fb_mib=60000, job_id="42"))
    _step(stack, 3)
    snap = stack.engine.read_latest(FIELDS)
    sm, tensor, fb = snap.column(1002), snap.column(1004), snap.column(252)
    assert sm[0] == sm[1] and float(sm[0] or 0) > 0.85 and float(tensor[0] or 0) > 0.6
    assert fb[0] == fb[1] == 60000
    assert float(sm[2] or 0) == pytest.approx(0.5 * 0.98 * 0.9)  # GPU 2 still runs its static profile
    hmma, dfma = snap.column(1014)[0], snap.column(1015)[0]
    assert isinstance(hmma, float) and isinstance(dfma, float) and hmma > 20 * dfma  # BF16 training
    assert float(snap.column(449)[0] or 0) > 0  # all-reduce traffic over NVLink, as a throughput
    assert [w.key for w in sim.workloads()] == ["ml/trainer/pytorch"] and sim.workloads()[0].job_id == "42"


def test_stop_time_and_removal_leave_the_gpu_idle() -> None:
    stack = build_stack(2, ["stable"], seed=1)
    sim = stack.simulator
    sim.add_workload(Workload("a", "ns", "c", gpus=(0,), shape="constant", start_s=60, stop_s=150))
    sim.add_workload(Workload("b", "ns", "c", gpus=(1,), shape="constant"))
    _step(stack, 1)
    assert stack.engine.read_latest((1002,)).column(1002)[0] == 0.0  # placed but not started: idle
    _step(stack, 2)
    assert float(stack.engine.read_latest((1002,)).column(1002)[0] or 0) > 0.7
    _step(stack, 3)
    assert [w.key for w in sim.workloads()] == ["ns/b/c"]  # past its stop time: dropped
    removed = sim.remove_workload("ns/b/c")
    assert removed.pod == "b"
    _step(stack, 1)
    snap = stack.engine.read_latest((1002, 112))
    assert snap.column(1002) == (0.0, 0.0) and snap.column(112) == (1, 1)  # idle clocks on both
    with pytest.raises(KeyError, match="no workload ns/b/c"):
        sim.remove_workload("ns/b/c")


def test_workloads_sharing_a_gpu_add_up() -> None:
    stack = build_stack(1, ["static"], seed=1)
    stack.simulator.add_workload(Workload("a", "ns", "c", gpus=(0,), shape="constant", intensity=0.3, fb_mib=1000))
    _step(stack)
    one = stack.engine.read_latest((1002, 252))
    stack.simulator.add_workload(Workload("b", "ns", "c", gpus=(0,), shape="constant", intensity=0.3, fb_mib=2000))
    _step(stack)
    two = stack.engine.read_latest((1002, 252))
    assert float(two.column(1002)[0] or 0) == pytest.approx(2 * float(one.column(1002)[0] or 0))
    assert two.column(252)[0] == 3000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape": "sprint"}, "unknown shape 'sprint'"),
        ({"gpus": ()}, "names no GPU and no MIG instance"),
        ({"gpus": (1, 1)}, "must be distinct"),
        ({"start_s": 10, "stop_s": 5}, "stop 5 must come after start 10"),
        ({"intensity": 1.5}, "intensity 1.5 must be within 0..1"),
        ({"pod": ""}, "pod must not be empty"),
    ],
)
def test_bad_workloads_are_refused_with_a_reason(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"pod": "p", "namespace": "ns", "container": "c", "gpus": (0,), **kwargs}
    with pytest.raises(WorkloadError, match=message):
        Workload(**fields)  # type: ignore[arg-type]


def test_placement_errors_name_the_gpu_and_duplicates() -> None:
    stack = build_stack(2, ["static"])
    with pytest.raises(WorkloadError, match="GPU 5 does not exist"):
        stack.simulator.add_workload(Workload("p", "ns", "c", gpus=(5,)))
    stack.simulator.add_workload(Workload("p", "ns", "c", gpus=(0,)))
    with pytest.raises(WorkloadError, match="already placed"):
        stack.simulator.add_workload(Workload("p", "ns", "c", gpus=(1,)))
    with pytest.raises(IndexError):
        stack.simulator.apply_event(9, parse_event({"xid": 79}))


def test_events_raise_xids_add_errors_and_brake() -> None:
    stack = build_stack(2, ["static"], seed=1)
    sim = stack.simulator
    sim.apply_event(1, parse_event({"xid": 79}))
    sim.apply_event(1, parse_event({"fault": "power_brake"}))
    sim.apply_event(1, parse_event({"ecc": {"dbe": 2}}))
    _step(stack)
    snap = stack.engine.read_latest((230, 311, 313, 112, 155))
    assert snap.column(230) == (0, 79) and snap.column(311)[1] == 2 and snap.column(313)[1] == 2
    assert snap.column(112)[1] == 128 and float(snap.column(155)[1] or 0) > float(snap.column(155)[0] or 0)
    _step(stack)
    assert stack.engine.read_latest((311,)).column(311)[1] == 2  # added once, not every update
    sim.apply_event(0, parse_event({"pcie_replay": 5}))  # counts alone, without an XID
    _step(stack)
    assert stack.engine.read_latest((202,)).column(202)[0] == 5
    with pytest.raises(EventError, match="unknown event key 'smoke'"):
        sim.apply_event(0, parse_event({"smoke": True}))

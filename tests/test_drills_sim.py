"""Drills in process: host events on a simulator (fabric, cooling, power), undo tokens, selectors, the history."""

from __future__ import annotations

import pytest

from otel_fakegpu.runtime.history import EventHistory
from otel_fakegpu.sim.host_control import HostControl, UndoRefusedError
from otel_fakegpu.sim.selectors import HostFacts, select_gpus, select_hosts
from tests.conftest import build_stack

FLEET = [HostFacts(f"node-{i}", f"r{i // 16}", {"rack": f"r{i // 16}", "instance": f"node-{i}"}) for i in range(64)]


def test_a_fabric_failure_zeroes_nvlink_traffic_and_counts_errors_on_every_gpu_until_undone() -> None:
    stack = build_stack(8, ["stable"], skus=("h100-sxm",))
    control = HostControl(stack.simulator, "node-0")
    crc_before = [gpu.physics.counters[409] for gpu in stack.simulator.gpus]
    answer = control.apply({"fabric": "fail"})
    assert answer["gpus"] == list(range(8)) and answer["undo"]["kind"] == "gpus"
    for gpu, before in zip(stack.simulator.gpus, crc_before, strict=True):
        assert gpu.faults.fabric_down and gpu.physics.counters[409] >= before + 1000
        assert gpu.physics.last_xid == 74
    stack.simulator.step()
    control.undo(answer["undo"])
    assert not any(gpu.faults.fabric_down for gpu in stack.simulator.gpus)
    assert all(gpu.physics.counters[409] >= 1000 for gpu in stack.simulator.gpus)  # counters never go back


def test_a_cooling_failure_runs_away_gpu_after_gpu_and_a_power_cycle_restarts_volatile_counters() -> None:
    stack = build_stack(4, ["stable"])
    control = HostControl(stack.simulator, "node-5", "r0", rack_position=2)
    t = stack.simulator.now_s()
    control.apply({"cooling": "fail"})
    starts = [gpu.faults.thermal_runaway_since for gpu in stack.simulator.gpus]
    assert starts == [t + (2 * 4 + i) * 20.0 for i in range(4)]  # staggered across the rack's hosts and GPUs
    control.apply({"ecc": {"sbe": 3, "dbe": 1}}, [1])
    gpu = stack.simulator.gpus[1]
    assert (gpu.physics.counters[310], gpu.physics.counters[312]) >= (3, 3)
    off = control.apply({"power": "off"})
    assert control.serving() == ("refused", 0.0) and off["undo"] == {"kind": "power", "was": True}
    control.apply({"power": "on"})
    assert control.serving() == ("ok", 0.0)
    assert gpu.physics.counters[310] == 0 and gpu.physics.counters[312] >= 3 and gpu.physics.counters[313] >= 1
    assert gpu.faults.thermal_runaway_since is None and gpu.physics.energy_mj == 0.0


def test_what_happened_cannot_be_undone_and_lasting_faults_can() -> None:
    stack = build_stack(2, ["static"])
    control = HostControl(stack.simulator, "node-0")
    assert control.apply({"xid": 48}, [0])["undo"] is None
    off_bus = control.apply({"fault": "fall_off_bus"}, [1])
    assert stack.simulator.gpus[1].faults.off_bus
    control.undo(off_bus["undo"])
    assert not stack.simulator.gpus[1].faults.off_bus
    load = control.apply({"load": 0.9}, "all")
    control.undo(load["undo"])
    assert all(gpu.physics.conditions.load_override is None for gpu in stack.simulator.gpus)
    with pytest.raises(UndoRefusedError):
        control.undo({"kind": "xid"})
    slow = control.apply({"reachability": "slow", "delay": "12s"})
    assert control.serving() == ("slow", 12.0)
    control.undo(slow["undo"])
    assert control.serving() == ("ok", 0.0)


def test_a_seeded_fraction_picks_the_same_hosts_and_gpus_every_time() -> None:
    first = select_hosts({"fraction": 0.05, "seed": 3}, FLEET)
    assert len(first) == 3 and first == select_hosts({"fraction": 0.05, "seed": 3}, list(reversed(FLEET)))[::-1]
    assert first != select_hosts({"fraction": 0.05, "seed": 4}, FLEET)
    assert select_hosts({"rack": "r2"}, FLEET) == [f"node-{i}" for i in range(32, 48)]
    assert select_hosts({"labels": {"rack": "r1"}, "hosts": ["node-16", "node-40"]}, FLEET) == ["node-16"]
    assert select_gpus({"fraction": 0.5, "seed": 1}, 8, "node-1") == select_gpus(
        {"fraction": 0.5, "seed": 1}, 8, "node-1"
    )
    assert len(select_gpus({"fraction": 0.5, "seed": 1}, 8, "node-1")) == 4


@pytest.mark.parametrize(
    ("selector", "says"),
    [
        ({"rack": "r9"}, "no rack 'r9'"),
        ({"fraction": 0}, "fraction: expected a number above 0"),
        ({"fraction": 0.1, "seed": -1}, "seed: expected a whole number"),
        ({"hosts": ["nope"]}, "no host 'nope'"),
        ({"zone": "a"}, "unknown key 'zone'"),
        ({"labels": {"rack": "r0"}, "rack": "r1"}, "matches no host"),
        ("some", 'expected "all"'),
    ],
)
def test_bad_host_selectors_are_one_line(selector: object, says: str) -> None:
    with pytest.raises((ValueError, LookupError)) as caught:
        select_hosts(selector, FLEET)
    assert says in str(caught.value.args[0]) and "\n" not in str(caught.value.args[0])


def test_the_history_is_bounded_drops_the_oldest_and_counts_them() -> None:
    history = EventHistory(limit=3)
    for i in range(5):
        history.add("api", {"xid": 40 + i}, {"node-0": [i % 2]}, {}, float(i))
    listing = history.listing()
    assert [e["id"] for e in listing["events"]] == [3, 4, 5] and listing["dropped"] == 2
    assert [e["id"] for e in history.listing(gpu=1)["events"]] == [4]
    assert history.listing(kind="power")["events"] == [] and history.get(1) is None

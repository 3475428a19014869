"""Physics invariants over 1,000 simulated updates of every profile, read back through the engine."""

from __future__ import annotations

import uuid

import pytest

from otel_fakegpu.sim import PROFILE_NAMES, SKUS, find_sku, make_identity
from otel_fakegpu.sim.identity import uuid5_text
from tests.conftest import build_stack

UPDATES = 1000
STEP_S = 7.5
FB_FIELDS = (250, 251, 252, 253)
UTIL_FIELDS = (203, 204, 206, 207)
RATIO_FIELDS = tuple(range(1001, 1009))
COUNTER_FIELDS = (156, 202, 240, 241, 244, 310, 312, 393, 394, 409)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_invariants_hold_for_every_profile(profile: str) -> None:
    stack = build_stack(3, [profile], seed=7, skus=("h100-sxm", "a100-80gb", "a100-40gb"))
    fields = (150, 155, 156, *FB_FIELDS, *UTIL_FIELDS, *RATIO_FIELDS, *COUNTER_FIELDS)
    previous = stack.engine.read_latest(fields)
    energy_start = previous.column(156)
    integral_mj = [0.0] * 3
    blanks = 0
    for _ in range(UPDATES):
        stack.clock.advance(STEP_S)
        stack.simulator.step()
        snap = stack.engine.read_latest(fields)
        for gpu in range(3):
            power = snap.column(155)[gpu]
            assert isinstance(power, float) and 0 < power <= 700.0
            integral_mj[gpu] += power * STEP_S * 1000.0
            energy = snap.column(156)[gpu]
            assert isinstance(energy, int)
            start = energy_start[gpu]
            assert isinstance(start, int)
            # The reported energy is the floor of the running integral: within 1 mJ (plus float rounding).
            assert abs((energy - start) - integral_mj[gpu]) <= 1.0 + 1e-9 * integral_mj[gpu]
            fb = [snap.column(f)[gpu] for f in FB_FIELDS]
            if all(isinstance(v, int) for v in fb):
                total, free, used, reserved = (int(v or 0) for v in fb)
                assert used + free + reserved == total
                assert min(free, used, reserved) >= 0
            for fid in UTIL_FIELDS:
                value = snap.column(fid)[gpu]
                blanks += value is None
                assert value is None or (isinstance(value, int) and 0 <= value <= 100)
            for fid in RATIO_FIELDS:
                value = snap.column(fid)[gpu]
                assert value is None or (isinstance(value, float) and 0.0 <= value <= 1.0)
            for fid in COUNTER_FIELDS:
                now, before = snap.column(fid)[gpu], previous.column(fid)[gpu]
                assert isinstance(now, int) and isinstance(before, int) and now >= before
        previous = snap
    if profile == "faulty":
        assert blanks > 0, "a faulty GPU must sometimes report nothing"
    else:
        assert blanks == 0


def test_static_profile_holds_its_values() -> None:
    stack = build_stack(1, ["static"])
    first = stack.engine.read_latest((150, 155, 203, 252))
    for _ in range(50):
        stack.clock.advance(30)
        stack.simulator.step()
    last = stack.engine.read_latest((150, 155, 203, 252))
    assert dict(first.columns) == dict(last.columns)


def test_degrading_gpu_heats_throttles_and_collects_errors() -> None:
    stack = build_stack(1, ["degrading"], seed=3)
    start = stack.engine.read_latest((150, 100, 394, 310))
    for _ in range(240):  # two hours
        stack.clock.advance(30)
        stack.simulator.step()
    end = stack.engine.read_latest((150, 100, 394, 310, 112))
    assert end.column(150)[0] > start.column(150)[0]  # type: ignore[operator]
    assert end.column(100)[0] < start.column(100)[0]  # type: ignore[operator]
    assert end.column(310)[0] > 0  # type: ignore[operator]
    assert end.column(112)[0] & 32  # type: ignore[operator]  # software thermal slowdown


def test_same_seed_same_values_and_identities() -> None:
    a, b = build_stack(4, ["chaos"], seed=11), build_stack(4, ["chaos"], seed=11)
    for stack in (a, b):
        for _ in range(20):
            stack.clock.advance(10)
            stack.simulator.step()
    fields = (54, 57, 150, 155, 203, 156)
    assert dict(a.engine.read_latest(fields).columns) == dict(b.engine.read_latest(fields).columns)
    c = build_stack(4, ["chaos"], seed=12)
    assert c.engine.read_latest((54,)).column(54) != a.engine.read_latest((54,)).column(54)


def test_identities_are_unique_and_well_formed_at_4096() -> None:
    sku = SKUS["h100-sxm"]
    ids = [make_identity(i, sku, "node-1", 0) for i in range(4096)]
    assert len({i.uuid for i in ids}) == 4096
    assert len({i.pci_bus_id for i in ids}) == 4096
    assert ids[0].pci_bus_id == "00000000:18:00.0" and ids[9].pci_bus_id == "00000001:2A:00.0"
    assert all(i.uuid.startswith("GPU-") and len(i.uuid) == 40 for i in ids)
    assert ids[5].device == "nvidia5" and len(ids[5].serial) == 13
    assert make_identity(3, sku, "node-2", 0).uuid != ids[3].uuid
    # The hand-made name-based UUID is uuid.uuid5's, so identities stay what earlier releases gave (goldens).
    namespace = uuid.UUID("6f1c2a52-5b0e-4c8e-9d55-3f0b7d9c4e21")
    for name in ("node-1/0/0", "node-1/0/4095", "h\u00e9te/7/1", "x" * 300):
        assert uuid5_text(name) == str(uuid.uuid5(namespace, name))
    assert ids[4095].uuid == f"GPU-{uuid.uuid5(namespace, 'node-1/0/4095')}"


def test_sku_lookup_by_key_or_model_name() -> None:
    assert find_sku("A100-SXM4-40GB") is not find_sku("a100-80gb")
    assert find_sku("NVIDIA A100-SXM4-40GB").fb_total_mib == 40960
    with pytest.raises(KeyError, match="known: h100-sxm"):
        find_sku("rtx-9090")

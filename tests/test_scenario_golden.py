"""A seeded scenario plays out byte for byte the same every run, each event at its scripted update."""

from __future__ import annotations

import os
from pathlib import Path

from otel_fakegpu.fields import parse_collectors
from otel_fakegpu.sim.scenario_file import parse_scenario
from tests.conftest import build_stack
from tests.pages import gpu_value

GOLDEN = Path(__file__).parent / "golden" / "scenario_faults.prom"
STEP_S = 30.0
CYCLES = 10
SCENARIO = """
seed: 11
time_scale: 2            # each 30 s update is a minute of scenario time
gpus:
  - {count: 4, model: h100-sxm, profile: stable}
events:
  - {at: 2m, gpu: 0, xid: 48}
  - {at: 3m, gpu: 1, ecc: {dbe: 1}}
  - {at: 4m, gpu: 2, fault: thermal_runaway}
  - {at: 5m, gpu: 3, fault: fall_off_bus}
  - {at: 8m, gpu: 3, fault: recover}
"""
COLLECTORS = """
DCGM_FI_DEV_GPU_TEMP, gauge, GPU temperature (in C).
DCGM_FI_DEV_SM_CLOCK, gauge, SM clock frequency (in MHz).
DCGM_FI_DEV_POWER_USAGE, gauge, Power draw (in W).
DCGM_FI_DEV_CLOCK_THROTTLE_REASONS, gauge, Current clock throttle reasons.
DCGM_FI_DEV_ECC_DBE_VOL_TOTAL, counter, Total number of double-bit volatile ECC errors.
DCGM_FI_DEV_XID_ERRORS, gauge, Value of the last XID error encountered.
DCGM_EXP_XID_ERRORS_COUNT, gauge, Count of XID Errors within user-specified time window.
"""


def _run() -> list[bytes]:
    scenario = parse_scenario(SCENARIO, "golden.yaml", 4)
    collectors = parse_collectors(COLLECTORS, "golden.csv")
    stack = build_stack(4, ("static",), scenario=scenario, step_s=STEP_S, collectors=collectors)
    bodies = [stack.cycle()]
    for _ in range(CYCLES):
        stack.clock.advance(STEP_S)
        stack.simulator.step()
        bodies.append(stack.cycle())
    return bodies


def test_same_bytes_every_run_and_matches_golden() -> None:
    first, second = _run(), _run()
    assert first == second
    text = "".join(f"# cycle {i}\n{body.decode()}" for i, body in enumerate(first))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "scenario exposition changed; rerun with UPDATE_GOLDEN=1 if intended"


def test_each_event_shows_at_its_scripted_cycle() -> None:
    bodies = _run()  # cycle i is scenario minute i (time_scale 2, 30 s updates)
    xids = [gpu_value(b, "DCGM_FI_DEV_XID_ERRORS", 0) for b in bodies]
    assert xids[:2] == ["0", "0"] and xids[2] == "48"
    assert 'xid="48"' in bodies[2].decode() and 'xid="48"' not in bodies[1].decode()
    dbe = [gpu_value(b, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", 1) for b in bodies]
    assert dbe[2] == "0" and dbe[3] == "1"
    temps = [int(gpu_value(b, "DCGM_FI_DEV_GPU_TEMP", 2) or 0) for b in bodies]
    assert temps[4] - temps[3] < 3 and temps[10] - temps[4] >= 6, temps  # heats up once cooling fails at minute 4
    reasons = [int(gpu_value(b, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", 2) or 0) for b in bodies]
    assert not reasons[3] & 0x20 and reasons[-1] & 0x20, reasons  # sw thermal slowdown by the end
    lost = [gpu_value(b, "DCGM_FI_DEV_GPU_TEMP", 3) for b in bodies]
    assert lost[4] is not None and lost[5] is None and lost[7] is None and lost[8] is not None
    assert gpu_value(bodies[5], "DCGM_FI_DEV_XID_ERRORS", 3) == "79"
    assert gpu_value(bodies[6], "DCGM_FI_DEV_XID_ERRORS", 3) is None
    assert gpu_value(bodies[8], "DCGM_FI_DEV_XID_ERRORS", 3) == "0"  # a reset GPU reports no XID
    assert 'gpu="3"' in bodies[6].decode().split("DCGM_EXP_XID_ERRORS_COUNT")[-1]  # the XID 79 stays counted

"""The physics invariant checker, vectorised over a run: given one GPU's readings for every update, it
checks each law over whole columns (C-speed min/max/sorted/zip) and fails naming the law and the update.

It knows which fields are rates (bounded by the SKU's physics, never required to grow) and which are running
totals (never decrease), docs/metrics.md's field table documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate, pairwise
from operator import itemgetter

from otel_fakegpu.fields import Value
from otel_fakegpu.sim import GpuSku
from otel_fakegpu.sim.board import CYCLE_COUNTERS, FABRIC_READINGS, RAW_SPREAD
from otel_fakegpu.sim.physics import (
    REASON_HW_POWER_BRAKE,
    REASON_HW_THERMAL,
    REASON_IDLE,
    REASON_SW_POWER_CAP,
    REASON_SW_THERMAL,
    RUNNING_TOTALS,
)

RATIO_FIELDS = (1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1013, 1014, 1015)
PIPE_FIELDS = {"imma": 1013, "hmma": 1014, "dfma": 1015}
UTIL_FIELDS = (203, 204, 206, 207)
TOTALS = (156, *RUNNING_TOTALS)
RATES = (200, 201, 1009, 1010, 1011, 1012, 449)
NS = 1_000_000_000
LIMIT_FIELDS = (160, 162, 163, 164)  # management, maximum, default and enforced power limits
BOARD_FIELDS = (157, *LIMIT_FIELDS, 174, 175, *CYCLE_COUNTERS)
CHECKED_FIELDS = (
    100,
    112,
    150,
    155,
    191,
    250,
    251,
    252,
    253,
    *RATIO_FIELDS,
    *UTIL_FIELDS,
    *TOTALS,
    *RATES,
    *BOARD_FIELDS,
)
VIOLATION_REASONS = {
    240: REASON_SW_POWER_CAP | REASON_HW_POWER_BRAKE,
    241: REASON_SW_THERMAL | REASON_HW_THERMAL,
    244: REASON_IDLE,
}

Readings = dict[int, Value | None]


class InvariantError(AssertionError):
    pass


@dataclass
class Run:
    """One GPU's updates: readings, step length, thermal state before/after each step and its target,
    fields a profile glitched or blanked on purpose, and whether a power brake was asserted."""

    sku: GpuSku
    dt: float
    readings: list[Readings]
    temp_before: list[float]
    temp_after: list[float]
    target: list[float]
    glitched: list[frozenset[int]]
    brake: list[bool]
    fabric: list[str] = field(default_factory=list)  # the fabric state of each update; empty: healthy throughout

    def column(self, field_id: int) -> list[Value | None]:
        columns = self.__dict__.get("_columns")
        if columns is None:  # every checked field's column in one C-level pass over the readings
            rows = map(itemgetter(*CHECKED_FIELDS), self.readings)
            columns = self.__dict__["_columns"] = dict(
                zip(CHECKED_FIELDS, map(list, zip(*rows, strict=True)), strict=True)
            )
        return columns[field_id]  # type: ignore[no-any-return]


def check_run(run: Run) -> set[int]:
    """Check every law over the run; returns the clock-event masks seen (for coverage assertions)."""
    _power_and_energy(run)
    _thermal(run)
    reasons = _clocks_and_violations(run)
    _ratios(run)
    _rates(run)
    _framebuffer(run)
    _totals(run)
    _fan(run)
    _board(run)
    return reasons


def _fail(run: Run, index: int, law: str) -> InvariantError:
    r = run.readings[index] if index < len(run.readings) else {}
    return InvariantError(f"{run.sku.key}, update {index}: broken: {law}; readings {dict(sorted(r.items()))}")


def _first(flags: Sequence[bool]) -> int:
    return next(i for i, ok in enumerate(flags) if not ok)


def _power_and_energy(run: Run) -> None:
    power = run.column(155)
    if not all(type(p) is float and p > 0 for p in power):
        raise _fail(run, _first([type(p) is float and p > 0 for p in power]), "power is a positive float")
    limit = run.sku.tdp_w + 1e-9
    within = [p <= limit or brake for p, brake in zip(power, run.brake, strict=True)]  # type: ignore[operator]
    if not all(within):
        raise _fail(run, _first(within), f"power within the {run.sku.tdp_w} W limit outside a power-brake event")
    energy = run.column(156)
    integral = list(accumulate(float(p) * run.dt * 1000.0 for p in power[1:]))  # type: ignore[arg-type]
    start = int(energy[0] or 0)
    ok = [abs((int(e or 0) - start) - s) <= 1.0 + 1e-9 * s for e, s in zip(energy[1:], integral, strict=True)]
    if not all(ok):
        raise _fail(run, _first(ok) + 1, "energy = integral of the reported power (within 1 mJ)")


def _thermal(run: Run) -> None:
    """Temperature lags power: each step moves toward the steady state of that step's power, never past it."""
    ok = [
        min(before, target) - 1e-9 <= after <= max(before, target) + 1e-9
        for before, after, target in zip(run.temp_before, run.temp_after, run.target, strict=True)
    ]
    if not all(ok):
        raise _fail(run, _first(ok), "temperature moves toward its steady state (first-order lag)")
    reported = [
        150 in g or r[150] is None or r[150] == round(t)
        for r, t, g in zip(run.readings, run.temp_after, run.glitched, strict=True)
    ]
    if not all(reported):
        raise _fail(run, _first(reported), "GPU_TEMP reports the thermal state")


def _clocks_and_violations(run: Run) -> set[int]:
    top = run.sku.sm_clock_max_mhz
    reasons = run.column(112)
    clocks = run.column(100)
    ok = [
        100 in g or c is None or ((c < top) == (m != 0))  # type: ignore[operator]
        for c, m, g in zip(clocks, reasons, run.glitched, strict=True)
    ]
    if not all(ok):
        raise _fail(run, _first(ok), "clock-event bits are set exactly when the SM clock is below its maximum")
    ns = round(run.dt * NS)
    for field_id, mask in VIOLATION_REASONS.items():
        col = run.column(field_id)
        got = [int(b or 0) - int(a or 0) for a, b in pairwise(col)]
        want = [ns if int(m or 0) & mask else 0 for m in reasons[1:]]
        if got != want:
            index = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w) + 1
            raise _fail(run, index, f"violation counter {field_id} advances by exactly the throttled time")
    return {int(m or 0) for m in reasons}


def _ratios(run: Run) -> None:
    pipes = run.sku.tensor_pipes
    for field_id in RATIO_FIELDS:
        values = [v for v in run.column(field_id) if v is not None]
        if values and not (min(values) >= 0.0 and max(values) <= 1.0):  # type: ignore[operator]
            raise _fail(run, 0, f"field {field_id} stays within 0..1")
    for name, field_id in PIPE_FIELDS.items():
        blank = [v is None for v in run.column(field_id)]
        if any(blank) if name in pipes else not all(blank):
            raise _fail(run, 0, f"tensor pipe {name} is produced exactly where {run.sku.architecture} has it")
    for field_id in UTIL_FIELDS:
        values = [v for v in run.column(field_id) if v is not None]
        if values and not (min(values) >= 0 and max(values) <= 100):  # type: ignore[operator]
            raise _fail(run, 0, f"utilisation {field_id} stays within 0..100")
    pipe_columns = [run.column(PIPE_FIELDS[name]) for name in sorted(pipes)]
    rows = zip(run.column(1001), run.column(1002), run.column(1004), *pipe_columns, strict=True)
    for index, (gr, sm, tensor, *parts) in enumerate(rows):
        if gr is None or tensor is None:
            continue  # a faulty GPU blanked them
        if not (sm <= gr + 1e-9 and tensor <= sm + 1e-9 and abs(sum(parts) - tensor) <= 2e-6):
            raise _fail(run, index, "tensor pipes add up to PIPE_TENSOR_ACTIVE (to 6 decimals) <= SM <= GR active")


def _rates(run: Run) -> None:
    """Rates stay within the SKU's physical bandwidth; 449 is blank without NVLink and zero without traffic."""
    sku = run.sku
    bounds = {1009: sku.pcie_bytes_per_s, 1010: sku.pcie_bytes_per_s}
    bounds |= {200: sku.pcie_bytes_per_s // 1024, 201: sku.pcie_bytes_per_s // 1024}
    bounds |= {1011: sku.nvlink_bytes_per_s // 2, 1012: sku.nvlink_bytes_per_s // 2}
    bounds[449] = round(sku.nvlink_bytes_per_s / 1024 / 1000)
    for field_id, bound in bounds.items():
        values = [v for v in run.column(field_id) if v is not None]
        if values and not (min(values) >= 0 and max(values) <= bound):  # type: ignore[operator]
            raise _fail(run, 0, f"rate {field_id} stays within its physical bound {bound}")
    bandwidth = run.column(449)
    if not sku.nvlink_links:
        if any(v is not None for v in bandwidth):
            raise _fail(run, 0, "NVLINK_BANDWIDTH_TOTAL is blank on a GPU without NVLink")
        return
    quiet = [r[449] == 0 for r in run.readings if r[1011] == 0 and r[1012] == 0]
    if not all(quiet):
        raise _fail(run, 0, "NVLINK_BANDWIDTH_TOTAL is zero without NVLink traffic")


def _framebuffer(run: Run) -> None:
    columns = zip(run.column(250), run.column(251), run.column(252), run.column(253), strict=True)
    ok = [
        None in (t, f, u, r) or (u + f + r == t and min(f, u, r) >= 0)  # type: ignore[operator,type-var]
        for t, f, u, r in columns
    ]
    if not all(ok):
        raise _fail(run, _first(ok), "FB_USED + FB_FREE + FB_RESERVED = FB_TOTAL, none negative")


def _totals(run: Run) -> None:
    for field_id in TOTALS:
        col = run.column(field_id)
        if set(map(type, col)) != {int} or col != sorted(col):  # type: ignore[type-var]
            raise _fail(run, 0, f"running total {field_id} is an integer that never decreases")


def _fan(run: Run) -> None:
    fan = run.sku.fan
    col = run.column(191)
    if fan is None:
        if any(v is not None for v in col):
            raise _fail(run, 0, "a board without a fan reports FAN_SPEED blank")
        return
    ok = [v == fan.percent(t) for v, t in zip(col, run.temp_after, strict=True)]
    if not all(ok):
        raise _fail(run, _first(ok), "FAN_SPEED follows the fan curve of the temperature")


def _board(run: Run) -> None:
    """157 is 155 with bounded zero-mean noise; the limits are the SKU's and hold 155; fabric health is blank without
    NVSwitches and follows the fabric state; each cycle counter grows by its ratio x SMs x clock x step."""
    sku, raw, power = run.sku, run.column(157), run.column(155)
    near = [type(r) is float and abs(r - p) <= RAW_SPREAD * p + 1e-3 for r, p in zip(raw, power, strict=True)]  # type: ignore[operator]
    if not all(near):
        raise _fail(run, _first(near), f"raw power within {RAW_SPREAD:.0%} of the averaged power")
    if len(raw) >= 1000:
        mean_raw, mean_power = sum(raw) / len(raw), sum(power) / len(power)  # type: ignore[arg-type]
        if (
            abs(mean_raw - mean_power) > 0.005 * mean_power
            or sum(r != p for r, p in zip(raw, power, strict=True)) < len(raw) // 2
        ):
            raise _fail(run, 0, "raw power has the averaged power's mean (within 0.5 %) and is noisier")
    for field_id in LIMIT_FIELDS:
        if set(run.column(field_id)) != {float(sku.tdp_w)}:
            raise _fail(run, 0, f"power limit {field_id} is the SKU's {sku.tdp_w} W")
    states = run.fabric or ["healthy"] * len(run.readings)
    want = [FABRIC_READINGS[s] if sku.nvswitch_links else (None, None) for s in states]
    got = list(zip(run.column(174), run.column(175), strict=True))
    if got != want:
        raise _fail(run, _first([g == w for g, w in zip(got, want, strict=True)]), "fabric health follows the fabric")
    for counter, ratio_field in CYCLE_COUNTERS.items():
        _cycles(run, counter, ratio_field)


def _cycles(run: Run, counter: int, ratio_field: int) -> None:
    col, ratios, clocks = run.column(counter), run.column(ratio_field), run.column(100)
    if not run.sku.sm_count:
        if any(v is not None for v in col):
            raise _fail(run, 0, f"cycle counter {counter} is blank without an SM count")
        return
    for index in range(1, len(col)):
        if {ratio_field, 100} & run.glitched[index]:
            continue  # a glitch rewrote the reading after the counter had advanced
        ratio, clock = ratios[index], clocks[index]
        grew = int(col[index] or 0) - int(col[index - 1] or 0)
        cycles = run.sku.sm_count * int(clock or 0) * 1_000_000 * run.dt
        want = round(float(ratio) * cycles) if ratio is not None else 0
        if grew != want:
            raise _fail(run, index, f"cycle counter {counter} grows by {ratio_field} x SMs x SM clock x step")

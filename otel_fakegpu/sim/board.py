"""Board readings DCGM 4.6 added, derived from one GPU's physics step: instantaneous power (157), the power limits
(160, 162-164), NVSwitch-fabric health (174, 175) and the raw profiling cycle counters (1085-1090).

- 157 is the unaveraged power: 155 (the averaged reading) with zero-mean noise of up to ``RAW_SPREAD``, drawn from
  a stream of its own so adding it changes no other simulated value.
- The enforced limit (164) is the SKU's power limit; the management (160), maximum (162) and default (163) limits
  equal it on these data-centre boards, which ship at their maximum. 155 stays at or below 164 but under a power brake.
- Fabric health (NVML's nvmlGpuFabricInfo health mask and summary) exists on boards with NVSwitches only; elsewhere
  it is blank. Healthy unless a ``fabric`` event degraded it; a GPU reset (``recover``) heals it.
- A cycle counter grows by its ratio field times the SMs times the SM clock over each step, so over any interval
  its growth divided by (SMs x clock x seconds) is the interval's cycle-weighted ratio. DMMA (1087) and DFMA (1090)
  both count the FP64 tensor pipe that ratio 1015 measures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from otel_fakegpu.fields import Value
from otel_fakegpu.sim.skus import GpuSku

RAW_SPREAD = 0.06  # 157 lies within +-6 % of 155
FABRIC_STATES = ("healthy", "degraded", "unhealthy")
# NVML_GPU_FABRIC_HEALTH_MASK_*: 2-bit fields at shifts 0 (degraded bandwidth), 2 (route recovery), 4 (route
# unhealthy), 6 (access-timeout recovery), each 1 true / 2 false; 4 bits at shift 8 (incorrect configuration, 1 none).
_FALSE, _TRUE = 2, 1
_HEALTHY_MASK = _FALSE | _FALSE << 2 | _FALSE << 4 | _FALSE << 6 | 1 << 8
FABRIC_READINGS: dict[str, tuple[int, int]] = {  # state -> (mask 174, summary 175)
    "healthy": (_HEALTHY_MASK, 1),  # NVML_GPU_FABRIC_HEALTH_SUMMARY_HEALTHY
    "degraded": (_HEALTHY_MASK & ~0b11 | _TRUE, 3),  # bandwidth degraded: LIMITED_CAPACITY
    "unhealthy": (_HEALTHY_MASK & ~(0b11 << 4) | _TRUE << 4, 2),  # a route unhealthy: UNHEALTHY
}
# Cycle counter -> the ratio field whose cycles it counts.
CYCLE_COUNTERS = {1085: 1002, 1086: 1004, 1087: 1015, 1088: 1014, 1089: 1013, 1090: 1015}
_M64 = (1 << 64) - 1


@dataclass
class BoardState:
    """What the board readings carry from one step to the next: the cycle totals and the noise stream."""

    noise_state: int
    cycles: dict[int, int] = field(default_factory=lambda: dict.fromkeys(CYCLE_COUNTERS, 0))

    def _uniform(self) -> float:
        """splitmix64: a tiny generator of its own, seeded per GPU, independent of the physics' random stream."""
        self.noise_state = (self.noise_state + 0x9E3779B97F4A7C15) & _M64
        z = self.noise_state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        return ((z ^ (z >> 31)) >> 11) / float(1 << 53)

    def raw_power(self, power_w: float) -> float:
        """Triangular noise: zero mean, at most RAW_SPREAD of the averaged reading."""
        noise = (self._uniform() + self._uniform() - 1.0) * RAW_SPREAD
        return round(power_w * (1.0 + noise), 3)

    def advance_cycles(self, readings: dict[int, Value | None], sku: GpuSku, sm_clock_mhz: int, dt: float) -> None:
        """Add this step's active cycles of each counter; a blank ratio (a pipe the GPU lacks) adds none."""
        elapsed = sku.sm_count * sm_clock_mhz * 1_000_000 * dt
        for counter, ratio_field in CYCLE_COUNTERS.items():
            ratio = readings.get(ratio_field)
            if isinstance(ratio, (int, float)):
                self.cycles[counter] += round(float(ratio) * elapsed)


def board_readings(state: BoardState, sku: GpuSku, power_w: float, fabric: str) -> dict[int, Value | None]:
    """157, 160, 162-164, 174, 175 and the cycle totals for one step (the totals advanced already)."""
    limit = float(sku.tdp_w)
    has_fabric = bool(sku.nvswitch_links)
    mask, summary = FABRIC_READINGS[fabric] if has_fabric else (None, None)
    board: dict[int, Value | None] = {
        157: state.raw_power(power_w),
        160: limit,
        162: limit,
        163: limit,
        164: limit,
        174: mask,
        175: summary,
    }
    board.update(state.cycles)
    if not sku.sm_count:  # a SKU whose SM count the presets do not name: no cycle counts
        board.update(dict.fromkeys(CYCLE_COUNTERS))
    return board

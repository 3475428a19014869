"""The NVSwitches of simulated HGX boards: each group of eight SXM GPUs sits on a board whose switches carry their
NVLinks, as on HGX H100 (4 switches, 5+4+4+5 links per GPU) and HGX A100 (6 switches, 2 links per GPU each).

A board with fewer than eight GPUs (the first of a small fleet) keeps its switches; only the links to GPUs that exist
are up, and dcgm-exporter reads only links that are up. Switch temperature follows the board's load; the throughput
counters add what the board's GPUs send over NVLink, shared between its switches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from otel_fakegpu.engine import Engine, link_entity_id
from otel_fakegpu.fields import Value
from otel_fakegpu.sim.gpus import SimulatedGpu
from otel_fakegpu.sim.skus import GpuSku

GPUS_PER_BOARD = 8
SWITCH_IDLE_C = 38.0
SWITCH_LOADED_RISE_C = 17.0
SLOWDOWN_C, SHUTDOWN_C = 95, 105
LINK_STATUS_FIELD = 870
LINK_ACTIVE = 2  # DCGM_FI_DEV_NVSWITCH_LINK_STATUS: -1 unknown, 0 off, 1 safe, 2 active, 3 error, 4 inactive
SWITCH_STATIC = ((856, 0), (857, 0), (859, SLOWDOWN_C), (860, SHUTDOWN_C))  # no SXid yet, temperature limits


@dataclass
class SimulatedSwitch:
    entity_id: int
    sku: GpuSku
    gpu_indexes: tuple[int, ...]  # fleet indexes of the board's GPUs
    link_ids: tuple[int, ...]  # link entities that are up
    tx_kib: float = 0.0
    rx_kib: float = 0.0
    temp_c: float = SWITCH_IDLE_C
    share: float = 0.25  # this switch's share of the board's NVLink traffic


def build_switches(skus: Sequence[GpuSku]) -> list[SimulatedSwitch]:
    """The switches of every board, for GPU SKUs given in fleet order; boards without switch topology get none."""
    switches: list[SimulatedSwitch] = []
    for board_start in range(0, len(skus), GPUS_PER_BOARD):
        gpu_indexes = tuple(range(board_start, min(board_start + GPUS_PER_BOARD, len(skus))))
        sku = skus[board_start]
        total_links = sum(sku.nvswitch_links)
        for links_per_gpu in sku.nvswitch_links:
            switch_id = len(switches)
            ports = links_per_gpu * len(gpu_indexes)  # port p serves the board's GPU p // links_per_gpu
            # Ports 0..n-1 are consecutive ids (link_entity_id checks the last one is a port).
            link_ids = range(link_entity_id(switch_id, 0), link_entity_id(switch_id, ports - 1) + 1) if ports else ()
            switches.append(
                SimulatedSwitch(
                    entity_id=switch_id,
                    sku=sku,
                    gpu_indexes=gpu_indexes,
                    link_ids=tuple(link_ids),
                    share=links_per_gpu / total_links,
                )
            )
    return switches


def start_switches(engine: Engine, switches: Sequence[SimulatedSwitch], now: float) -> bool:
    """Create ``switches`` and their links in ``engine`` with what is set once: temperature limits and no SXid yet
    on each switch, every link active (one column fill: 73,728 links at 4096 GPUs). False when the engine holds no
    such entities."""
    if not engine.create_entities("switch", [s.entity_id for s in switches]):
        return False
    links = [link for s in switches for link in s.link_ids]
    engine.create_entities("link", links)
    engine.inject_entities("switch", [(s.entity_id, f, v) for s in switches for f, v in SWITCH_STATIC], now)
    engine.inject_entity_field("link", LINK_STATUS_FIELD, links, LINK_ACTIVE, now)
    return True


def step_switch(
    switch: SimulatedSwitch, mean_load: float, board_nvlink_bps: float, dt: float
) -> list[tuple[int, int, Value | None]]:
    """Advance one switch by ``dt`` seconds given its board's mean GPU load (0..1) and the NVLink bytes/s its
    GPUs send (each direction); its new readings."""
    switch.temp_c = SWITCH_IDLE_C + SWITCH_LOADED_RISE_C * mean_load
    moved_kib = board_nvlink_bps * switch.share * dt / 1024
    switch.tx_kib += moved_kib
    switch.rx_kib += moved_kib
    return [
        (switch.entity_id, 858, round(switch.temp_c)),
        (switch.entity_id, 861, int(switch.tx_kib)),
        (switch.entity_id, 862, int(switch.rx_kib)),
    ]


@dataclass
class BoardSwitches:
    """The switches of a simulator's boards, made only once watched (a pipeline reads a switch or link field), as a
    hostengine samples only the fields it watches: the default field set reads none, and 2048 switches with 73,728
    links were ~25 ms of a 4096-GPU start and ~2 KB per GPU of a fleet. Callers hold the simulator's lock."""

    engine: Engine
    watched: bool = False
    switches: list[SimulatedSwitch] = field(default_factory=list)
    gpus: Sequence[SimulatedGpu] | None = None  # the simulator's GPUs, once it has made them

    def start(self, gpus: Sequence[SimulatedGpu], now: float) -> None:
        """The simulator's GPUs are made: their boards' switches too, if watched already."""
        self.gpus = gpus
        if self.watched:
            self._make(gpus, now)

    def watch(self, now: float) -> None:
        """A pipeline reads switch or link fields: make the switches now if the GPUs are made, else at ``start``."""
        if not self.watched:
            self.watched = True
            if self.gpus is not None:
                self._make(self.gpus, now)

    def _make(self, gpus: Sequence[SimulatedGpu], now: float) -> None:
        """Create the NVSwitches (and their up links) of every HGX board, if the engine holds such entities, with
        their first readings."""
        switches = build_switches([gpu.identity.sku for gpu in gpus])
        if switches and start_switches(self.engine, switches, now):
            self.switches = switches
            self.step(0.0, now)

    def step(self, dt: float, now: float) -> None:
        """Advance every switch by ``dt`` from its board's GPUs' last step."""
        if not self.switches or self.gpus is None:
            return
        gpus = self.gpus
        boards: dict[tuple[int, ...], tuple[float, int]] = {}  # a board's GPUs -> their mean load, NVLink bytes/s
        for switch in self.switches:
            if switch.gpu_indexes not in boards:
                board = [gpus[i] for i in switch.gpu_indexes]
                mean_load = sum(gpu.load for gpu in board) / len(board)
                boards[switch.gpu_indexes] = (mean_load, sum(gpu.nvlink_tx_bps for gpu in board))
        updates = [u for s in self.switches for u in step_switch(s, *boards[s.gpu_indexes], dt)]
        self.engine.inject_entities("switch", updates, now)

"""SIGHUP for the scenario file: re-read it and hand its events and workloads to the running simulator.

The new file's times count from the reload (its ``0s`` is that moment); the fleet it describes cannot change
without a restart, since the GPUs already exist.
"""

from __future__ import annotations

import logging
from pathlib import Path

from otel_fakegpu.sim.scenario import Scenario, ScenarioError
from otel_fakegpu.sim.simulator import Simulator

log = logging.getLogger(__name__)


class ScenarioReloader:
    """A reload hook: raises ScenarioError or WorkloadError (both ValueError) and changes nothing on a bad file."""

    def __init__(self, simulator: Simulator, running: Scenario, gpu_count: int) -> None:
        """``gpu_count``: the GPUs a scenario without a ``gpus`` section applies to (the command line's)."""
        self._simulator = simulator
        self._running = running
        self._gpu_count = gpu_count

    def __call__(self) -> None:
        source = self._running.source
        from otel_fakegpu.sim.scenario_file import load_scenario  # noqa: PLC0415 - PyYAML: only when a file is read

        scenario = load_scenario(Path(source), self._gpu_count)
        if scenario.groups != self._running.groups:
            raise ScenarioError(f"{source}: its gpus section changed; a new fleet needs a restart")
        self._simulator.replace_script(scenario.events, scenario.workloads, scenario.time_scale)
        self._running = scenario
        log.info(
            "scenario %s reloaded: %d events and %d workloads from now on",
            source,
            len(scenario.events),
            len(scenario.workloads),
        )

"""The exporter's own command line, with simulated workloads placed before its first update.

``python -m tests.workload_exporter WORKLOADS_JSON [exporter arguments…]`` runs ``otel_fakegpu.cli.main``
unchanged, except that the simulator it builds starts with the workloads of ``WORKLOADS_JSON`` (a JSON list
of ``Workload`` keyword arguments) already placed. A stand-in for a scenario file or the control API, which
place workloads the same way (``Simulator.add_workload``), so tests of consumer tools can run a real exporter
process whose GPUs run a known workload (a training job, say).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from otel_fakegpu import app, cli
from otel_fakegpu.sim import Simulator, Workload


def _simulator_with(workloads: Sequence[Workload]) -> type[Simulator]:
    class PlacedSimulator(Simulator):
        def start(self) -> None:
            super().start()  # the GPUs exist from here; the workloads drive them from the next update
            for workload in workloads:
                self.add_workload(workload)

    return PlacedSimulator


def main(argv: Sequence[str]) -> int:
    workloads = [Workload(**{**spec, "gpus": tuple(spec.get("gpus", ()))}) for spec in json.loads(argv[0])]
    app.Simulator = _simulator_with(workloads)  # type: ignore[attr-defined]
    return cli.main(list(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What replaying a capture costs next to simulating it: one host's collection cycle at 4096 GPUs, the simulator's
(its update + engine read + SDK collection + render) against the replay engine's (page parse + read + collection
+ render of the same pages), as process CPU time per cycle, in process and interleaved so a busy machine slows both
alike. The capture is of this very simulator: its pages are recorded first, then replayed one page per cycle.

``python -m bench.replay_cycle [--gpus N] [--cycles N]`` prints one JSON line; not part of ``make bench``."""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from otel_fakegpu.config.model import config_from, load_field_set
from otel_fakegpu.engine.recording import RecordingWriter
from otel_fakegpu.engine.replay import ReplayEngine
from otel_fakegpu.host.collection import HostCollection
from otel_fakegpu.host.replay import replay_collectors

EVERY_S = 30.0


def _cpu_ms(run: Any) -> float:
    started = time.process_time()
    run()
    return (time.process_time() - started) * 1000.0


def _simulated(gpus: int) -> HostCollection:
    config = config_from(["--num-gpus", str(gpus), "--seed", "7", "-c", "30000"], {"NODE_NAME": "bench-host"})
    collection = HostCollection(config, load_field_set(config))
    collection.start()
    return collection


def _record(collection: HostCollection, pages: int, path: Path) -> None:
    buffer = io.BytesIO()
    writer = RecordingWriter(buffer, {"source": "bench", "every_s": EVERY_S, "started_at": 0.0}, 1 << 34)
    for i in range(pages):
        collection.step()
        collection.run_cycle()
        latest = collection.latest()
        assert latest is not None and writer.append(i * EVERY_S, latest.body)
    path.write_bytes(buffer.getvalue())


def measure_replay_cycle(gpus: int, cycles: int) -> dict[str, Any]:
    """Median CPU ms per cycle: simulator (update + cycle) and replay (cycle, a new page each)."""
    simulated = _simulated(gpus)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "capture.bin"
        _record(simulated, cycles + 1, path)
        now = [0.0]
        engine = ReplayEngine(path, clock=lambda: now[0])
        config = config_from(["--engine", "replay", "--replay-file", str(path)], {"NODE_NAME": "bench-host"})
        replay = HostCollection(config, replay_collectors(engine), engine=engine)
        replay.start()
        sim_ms, sim_cycle_ms, replay_ms = [], [], []
        for _ in range(cycles):
            update = _cpu_ms(simulated.step)
            cycle = _cpu_ms(simulated.run_cycle)
            sim_ms.append(update + cycle)
            sim_cycle_ms.append(cycle)
            now[0] += EVERY_S
            replay_ms.append(_cpu_ms(replay.run_cycle))
        size = path.stat().st_size
    simulated.stop()
    replay.stop()
    return {
        "gpus": gpus,
        "cycles": cycles,
        "capture_bytes": size,
        "simulator_update_and_cycle_cpu_ms": round(statistics.median(sim_ms), 1),
        "simulator_cycle_cpu_ms": round(statistics.median(sim_cycle_ms), 1),
        "replay_cycle_cpu_ms": round(statistics.median(replay_ms), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gpus", type=int, default=4096)
    parser.add_argument("--cycles", type=int, default=8)
    args = parser.parse_args()
    print(json.dumps(measure_replay_cycle(args.gpus, args.cycles)))


if __name__ == "__main__":
    main()

"""Floor 10, one host's stack: the engine chosen by ``--engine`` (engine_choice.py), the collection that wires
engine, simulator, attribution, telemetry pipeline and outputs (collection.py), and the backfill command
(backfill.py). The runtime above drives it; spec.py holds what the two agree on.

This file imports nothing, so the backfill path and the runtime load only the modules they use.
"""

"""Floor 12, one host's stack: the engine chosen by ``--engine`` (engine_choice.py), ``build_host`` (stack.py), the
one place engine, simulator, attribution and telemetry pipeline are wired, the collection a worker drives with its
outputs (collection.py), and the backfill command (backfill.py). The runtime above drives it; spec.py holds what
the two agree on.

This file imports nothing, so the backfill path and the runtime load only the modules they use.
"""

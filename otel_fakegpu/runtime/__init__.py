"""Floor 13, the process shape: worker processes collect and render; the serving process (main.py) holds their
bytes and serves them.

Lower floors never import this one (see frames.py for the contract across the process boundary).
"""

from otel_fakegpu.runtime.fleet import FleetPlan, plan_fleet
from otel_fakegpu.runtime.frames import FrameReader, RemoteError, write_frame
from otel_fakegpu.runtime.memory import pin_mmap_threshold, settle_memory
from otel_fakegpu.runtime.pool import WorkerPool
from otel_fakegpu.runtime.published import PublishedFleet
from otel_fakegpu.runtime.status import health_report, render_summary
from otel_fakegpu.runtime.worker import Collection, CollectionFactory, WorkerSettings

__all__ = [
    "Collection",
    "CollectionFactory",
    "FleetPlan",
    "FrameReader",
    "PublishedFleet",
    "RemoteError",
    "WorkerPool",
    "WorkerSettings",
    "health_report",
    "pin_mmap_threshold",
    "plan_fleet",
    "render_summary",
    "settle_memory",
    "write_frame",
]

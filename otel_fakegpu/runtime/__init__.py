"""Floor 13, the process shape: worker processes collect and render; the serving process (main.py) holds their
bytes and serves them.

Lower floors never import this one (see frames.py for the contract across the process boundary).
"""

from typing import TYPE_CHECKING

from otel_fakegpu import lazy_exports

if TYPE_CHECKING:  # the names load with their module, on first use (lazy_exports)
    from otel_fakegpu.runtime.fleet import FleetPlan, plan_fleet
    from otel_fakegpu.runtime.frame_reader import FrameReader
    from otel_fakegpu.runtime.frames import RemoteError, write_frame
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

if not TYPE_CHECKING:  # mypy sees the imports above, and no __getattr__ that would accept any name
    __getattr__ = lazy_exports(
        __name__,
        {
            "fleet": ("FleetPlan", "plan_fleet"),
            "frame_reader": ("FrameReader",),
            "frames": ("RemoteError", "write_frame"),
            "memory": ("pin_mmap_threshold", "settle_memory"),
            "pool": ("WorkerPool",),
            "published": ("PublishedFleet",),
            "status": ("health_report", "render_summary"),
            "worker": ("Collection", "CollectionFactory", "WorkerSettings"),
        },
    )

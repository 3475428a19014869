"""SIGHUP on the serving side: re-read the web config here, hand the rest to the collection side's ``reload``.

``reload`` takes the serving side's failure (or None) and returns plain data: it is awaited on the event loop while
the worker processes reload; this module never reaches into the engine, the simulator or the pipeline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from otel_fakegpu.serve.webconfig import LiveWebConfig, WebConfigError, load_web_config

log = logging.getLogger(__name__)

Reload = Callable[[str | None], Awaitable[dict[str, object]]]


def reload_on_sighup(reload: Reload, live_web: LiveWebConfig, web_config_path: Path | None) -> Callable[[], None]:
    """The SIGHUP handler for the event loop. A second SIGHUP during a reload runs after it."""
    lock = asyncio.Lock()
    tasks: set[asyncio.Task[None]] = set()

    async def reload_all() -> None:
        async with lock:
            web_error = None
            if web_config_path is not None:
                try:
                    live_web.replace(load_web_config(web_config_path))
                except WebConfigError as exc:
                    web_error = str(exc) if str(web_config_path) in str(exc) else f"{web_config_path}: {exc}"
                    log.error("reload of the web config failed, keeping the running one: %s", web_error)
            await reload(web_error)

    def handle() -> None:
        task = asyncio.ensure_future(reload_all())
        tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(tasks.discard)

    return handle

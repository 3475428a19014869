"""A client for the exporter's control API on its Unix socket: inject a fault the way an operator would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import uds_get

JSON = {"Content-Type": "application/json"}


def control_event(sock: Path, gpu: int, event: dict[str, Any]) -> None:
    """POST one event (``{"xid": 79}``, ``{"fault": "fall_off_bus"}``) for GPU ``gpu``; it must be accepted."""
    body = json.dumps(event).encode()
    status, answer, _ = uds_get(sock, f"/control/v1/gpus/{gpu}/events", JSON, "POST", body)
    assert status == 200, answer

"""A client for the exporter's control API on its Unix socket: inject a fault the way an operator would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import UnixHTTPConnection


def control_event(sock: Path, gpu: int, event: dict[str, Any]) -> None:
    """POST one event (``{"xid": 79}``, ``{"fault": "fall_off_bus"}``) for GPU ``gpu``; it must be accepted."""
    conn = UnixHTTPConnection(sock)
    try:
        conn.request("POST", f"/control/v1/gpus/{gpu}/events", json.dumps(event), {"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200, response.read()
    finally:
        conn.close()

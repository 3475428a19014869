"""Helpers of the drill tests: control requests over the exporter's Unix socket, Prometheus's view of targets."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.conftest import http_get, uds_get
from tests.prometheus_server import PrometheusServer

JSON = {"Content-Type": "application/json"}


def control(sock: Path, method: str, url: str, body: object = None) -> tuple[int, Any]:
    """One control request; its status and JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    status, answer, _ = uds_get(sock, url, JSON, method, data)
    return status, json.loads(answer or b"{}")


def applied(sock: Path, url: str, body: object) -> Any:
    """POST an event that must be accepted; its answer."""
    status, answer = control(sock, "POST", url, body)
    assert status == 200, answer
    return answer


def targets(server: PrometheusServer) -> dict[str, dict[str, Any]]:
    """Prometheus's active targets by instance: health, lastError, lastScrapeDuration."""
    status, body, _ = http_get(f"{server.base}/api/v1/targets")
    assert status == 200
    return {t["labels"]["instance"]: t for t in json.loads(body)["data"]["activeTargets"]}


def up_by_instance(server: PrometheusServer, job: str) -> dict[str, float]:
    return {r["metric"]["instance"]: float(r["value"][1]) for r in server.query(f'up{{job="{job}"}}')}


def wait_until(check: Any, timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{what} not met in {timeout:.0f} s (last: {last!r})")

"""The compose demo as tests/test_stack_compose.py runs it: compose.yaml with deploy/compose/local.yaml (the
images this machine cannot pull, swapped for ones built here) and a run-made file that mounts the demo
scenario with a ``time_scale`` so its minutes pass in seconds; free ports through compose.yaml's variables;
the peers' APIs read from inside the stack's network (Prometheus's container has wget)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import free_port, http_get
from tests.stack_engine import ROOT, compose_command, podman

SERVICES = (
    "otel-fakegpu",
    "socket-reader",
    "otel-collector",
    "prometheus",
    "alertmanager",
    "alert-log",
    "mimir",
    "tempo",
)
PORT_VARIABLES = ("OTEL_FAKEGPU_PORT", "PROMETHEUS_PORT", "ALERTMANAGER_PORT", "GRAFANA_PORT")
TIME_SCALE = 3.0  # scenario seconds per second: the XID at 2 min comes 40 s after the exporter starts,
# after Prometheus has seen GPU 0 without one (GpuXidError fires on a change)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Stack:
    project: str
    folder: Path
    ports: dict[str, int] = field(default_factory=dict)
    up_at: float = 0.0

    def env(self) -> dict[str, str]:
        return {**os.environ, **{name: str(port) for name, port in self.ports.items()}}

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        files = (ROOT / "compose.yaml", ROOT / "deploy" / "compose" / "local.yaml", self.folder / "scaled.yaml")
        return subprocess.run(
            [*compose_command(self.project, *files), *args],
            capture_output=True, text=True, env=self.env(), timeout=timeout, cwd=ROOT, check=False,
        )  # fmt: skip

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def prometheus(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        status, body, _ = http_get(f"http://127.0.0.1:{self.ports['PROMETHEUS_PORT']}{path}?{query}", timeout=10)
        assert status == 200, body[:500]
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.prometheus("/api/v1/query", query=promql)["result"]
        return result

    def inside(self, url: str) -> str:
        """GET a URL from inside the stack's network (service names resolve there)."""
        return podman("exec", self.container("prometheus"), "wget", "-q", "-O", "-", url, timeout=60).stdout

    def victoria_samples(self, match: str) -> list[dict[str, Any]]:
        """Raw samples VictoriaMetrics (the mimir service) stored for the series matching ``match``."""
        text = self.inside("http://mimir:9009/api/v1/export?" + urllib.parse.urlencode({"match[]": match}))
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def logs(self, service: str) -> str:
        result = podman("logs", self.container(service), timeout=60)
        return ANSI.sub("", result.stdout + result.stderr)

    def exporter(self, path: str) -> tuple[int, bytes]:
        status, body, _ = http_get(f"http://127.0.0.1:{self.ports['OTEL_FAKEGPU_PORT']}{path}", timeout=5)
        return status, body


def prepare(project: str, folder: Path) -> Stack:
    """Free ports, and the demo scenario with a time scale, mounted where compose.yaml mounts the scenario."""
    scenario = yaml.safe_load((ROOT / "deploy" / "compose" / "scenario.yaml").read_text())
    scenario["time_scale"] = TIME_SCALE
    (folder / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    scaled = {
        "services": {"otel-fakegpu": {"volumes": [f"{folder / 'scenario.yaml'}:/etc/otel-fakegpu/scenario.yaml:ro"]}}
    }
    (folder / "scaled.yaml").write_text(yaml.safe_dump(scaled))
    return Stack(project, folder, {name: free_port() for name in PORT_VARIABLES})


def up(stack: Stack) -> None:
    stack.up_at = time.monotonic()
    result = stack.compose("up", "-d", *SERVICES)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def down(stack: Stack) -> subprocess.CompletedProcess[str]:
    return stack.compose("down", "-v", "--timeout", "10", timeout=180)


def json_objects(log: str) -> list[dict[str, Any]]:
    """Every JSON object in a log (podman may join a container's lines that were written back to back)."""
    decoder, found, at = json.JSONDecoder(), [], log.find("{")
    while at != -1:
        try:
            value, end = decoder.raw_decode(log, at)
        except ValueError:
            end = at + 1
        else:
            found.append(value)
        at = log.find("{", end)
    return found


def spans(log: str) -> list[dict[str, str]]:
    """Spans from rotel's detailed debug log: one dict per "Span #" block (Trace ID, Parent ID, ID, Name)."""
    found: list[dict[str, str]] = []
    for line in log.splitlines():
        if line.startswith("Span #"):
            found.append({})
        elif found and ":" in line:
            key, _, value = line.strip().partition(":")
            found[-1].setdefault(key.strip(), value.strip())
    return found


def dashboard_queries() -> list[tuple[str, str]]:
    """(dashboard file, expression) of every panel target, Grafana's variables replaced for a plain query."""
    out = []
    for path in sorted((ROOT / "dashboards").glob("*.json")):

        def walk(node: Any, name: str = path.name) -> None:
            if isinstance(node, dict):
                if isinstance(node.get("expr"), str):
                    out.append((name, node["expr"]))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(json.loads(path.read_text()))
    # host_label names a label (Hostname or hostname: docs/migration.md); the demo serves dcgm-exporter 4.8.2's.
    substitutions = {
        "$__rate_interval": "1m", "$__range": "5m", "$__interval": "30s",
        "${host_label}": "Hostname", "$host_label": "Hostname",
    }  # fmt: skip
    queries = []
    for name, written in out:
        expr = written
        for variable, value in substitutions.items():
            expr = expr.replace(variable, value)
        queries.append((name, re.sub(r"\$\{?\w+\}?", ".+", expr)))  # every template variable: all values
    return queries

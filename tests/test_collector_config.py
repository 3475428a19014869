"""The shipped Prometheus scrape config is valid for a real promtool."""

from __future__ import annotations

import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.prometheus_server import PROMTOOL


def test_scrape_config_passes_promtool() -> None:
    assert PROMTOOL.exists(), f"{PROMTOOL} missing: run `make peers`"
    config = Path(ROOT / "collector-config" / "prometheus.yml")
    result = subprocess.run(
        [str(PROMTOOL), "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


OTELCOL_CONFIGS = sorted((ROOT / "collector-config").glob("otelcol*.yaml"))


def _tenant_of(exporter: dict[str, Any]) -> tuple[str, str]:
    """(backend host, tenant) an exporter writes to: Mimir's tenant is its X-Scope-OrgID header."""
    host = urllib.parse.urlsplit(str(exporter.get("endpoint", ""))).hostname or ""
    return host, str((exporter.get("headers") or {}).get("X-Scope-OrgID", "anonymous"))


def double_writes(config: dict[str, Any]) -> list[str]:
    """Every (receiver, backend, tenant) that more than one pipeline/exporter pair writes: each is a double write."""
    writers: dict[tuple[str, str, str], list[str]] = {}
    for name, pipeline in config["service"]["pipelines"].items():
        for receiver in pipeline["receivers"]:
            for exporter in pipeline["exporters"]:
                key = (receiver, *_tenant_of(config["exporters"][exporter]))
                writers.setdefault(key, []).append(f"{name}->{exporter}")
    return [f"{key}: {', '.join(paths)}" for key, paths in writers.items() if len(paths) > 1]


def test_one_collector_config_per_path() -> None:
    names = [path.name for path in OTELCOL_CONFIGS]
    assert names == ["otelcol-mimir-otlp.yaml", "otelcol-remotewrite.yaml"]


@pytest.mark.parametrize("path", OTELCOL_CONFIGS, ids=lambda p: p.name)
def test_each_collector_config_loads_alone_and_writes_once(path: Path) -> None:
    """No collector binary is installable here; check what a collector would load, file by file."""
    config = yaml.safe_load(path.read_text())
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317" and protocols["http"]["endpoint"] == "0.0.0.0:4318"
    used = set()
    for name, pipeline in config["service"]["pipelines"].items():
        assert name.startswith("metrics/")
        assert pipeline["receivers"] == ["otlp"]
        assert pipeline["processors"] == ["memory_limiter", "batch"]  # memory_limiter first
        for receiver in pipeline["receivers"]:
            assert receiver in config["receivers"]
        for processor in pipeline["processors"]:
            assert processor in config["processors"]
        for exporter in pipeline["exporters"]:
            assert exporter in config["exporters"]
            used.add(exporter)
    assert used == set(config["exporters"]), "an exporter is defined but not wired"
    assert double_writes(config) == []
    rw = config["exporters"].get("prometheusremotewrite")
    if rw is not None:
        assert rw["add_metric_suffixes"] is False


def test_the_double_write_check_catches_two_pipelines_into_one_tenant() -> None:
    """The old combined config (remote write AND OTLP into the same tenant) must fail the check."""
    configs = [yaml.safe_load(path.read_text()) for path in OTELCOL_CONFIGS]
    combined: dict[str, Any] = {"exporters": {}, "service": {"pipelines": {}}}
    for config in configs:
        combined["exporters"].update(config["exporters"])
        combined["service"]["pipelines"].update(config["service"]["pipelines"])
    problems = double_writes(combined)
    assert len(problems) == 1 and "('otlp', 'mimir', 'gpu-fleet')" in problems[0]

"""The shipped Prometheus scrape config is valid for a real promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import PEERS, ROOT

PROMTOOL = PEERS / "prometheus" / "usr" / "bin" / "promtool"


def test_scrape_config_passes_promtool() -> None:
    assert PROMTOOL.exists(), f"{PROMTOOL} missing: run `make peers`"
    config = Path(ROOT / "collector-config" / "prometheus.yml")
    result = subprocess.run(
        [str(PROMTOOL), "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_otelcol_config_wires_otlp_to_both_mimir_paths() -> None:
    """No collector binary is installable here; check the structure a collector would load."""
    import yaml

    config = yaml.safe_load((ROOT / "collector-config" / "otelcol.yaml").read_text())
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317" and protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["exporters"]["prometheusremotewrite"]["add_metric_suffixes"] is False
    for name, pipeline in config["service"]["pipelines"].items():
        assert name.startswith("metrics/")
        assert pipeline["receivers"] == ["otlp"]
        assert pipeline["processors"] == ["memory_limiter", "batch"]  # memory_limiter first
        assert all(exporter in config["exporters"] for exporter in pipeline["exporters"])

"""4096 simulated GPUs: every GPU in every family, no cardinality overflow point, /health agrees."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_fakegpu.fields import default_collectors_path, load_collectors
from tests.conftest import ExporterProcess

GPUS = 4096


@pytest.mark.slow
def test_4096_gpus_all_present_without_overflow(exporter_factory: Callable[..., ExporterProcess]) -> None:
    exporter = exporter_factory("--num-gpus", str(GPUS), "-c", "600000", "--gpu-profiles", "stable,wave,spike")
    status, body, _ = exporter.get("/metrics", timeout=60)
    assert status == 200
    text = body.decode()
    assert "overflow" not in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    collectors = load_collectors(default_collectors_path())
    all_gpus = {str(i) for i in range(GPUS)}
    for collector in collectors.metrics:
        family = collector.name.removesuffix("_total")
        samples = families[family].samples
        assert len(samples) == GPUS, collector.name
        assert {s.labels["gpu"] for s in samples} == all_gpus, collector.name
    uuids = {s.labels["UUID"] for s in families["DCGM_FI_DEV_GPU_TEMP"].samples}
    assert len(uuids) == GPUS
    _, health_body, _ = exporter.get("/health")
    health = json.loads(health_body)
    assert health["gpus"] == GPUS
    sample_lines = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    assert health["last_cycle"]["series"] == sample_lines
    assert sample_lines >= GPUS * len(collectors.metrics)

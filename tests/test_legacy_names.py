"""Older names: go-dcgm's legacy lower-case names in a collectors file, as dcgm-exporter's own 1.x compatibility
file uses them (kept unchanged in tests/data with its source named)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_fakegpu.fields import CATALOG, load_collectors, parse_collectors
from otel_fakegpu.fields.legacy import GO_DCGM_LEGACY_NAMES, PROTOTYPE_NAMES
from tests.conftest import build_stack

COMPAT_CSV = Path(__file__).parent / "data" / "1.x-compatibility-metrics.csv"


def _listed_names(path: Path) -> list[str]:
    rows = csv.reader(line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return list(dict.fromkeys(row[0].strip() for row in rows))


def test_series_carry_the_name_as_written() -> None:
    collectors = parse_collectors("dcgm_gpu_temp, gauge, GPU temperature (in C).\n", "f.csv")
    assert collectors.metrics[0].name == "dcgm_gpu_temp" and collectors.metrics[0].field.id == 150


def test_every_legacy_name_resolves_to_its_go_dcgm_id_or_is_refused_by_name() -> None:
    for name, field_id in {**GO_DCGM_LEGACY_NAMES, **PROTOTYPE_NAMES}.items():
        try:
            CATALOG.by_id(field_id)
        except LookupError:
            with pytest.raises(ValueError, match=f"{name} is an older name of DCGM field {field_id}"):
                parse_collectors(f"{name}, gauge, x\n", "f.csv")
            continue
        assert parse_collectors(f"{name}, gauge, x\n", "f.csv").metrics[0].field.id == field_id


def test_dcgm_exporters_1x_compatibility_csv_gives_a_series_for_every_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        collectors = load_collectors(COMPAT_CSV)  # lists the two PCIe fields twice, as upstream does
    assert any("listed again" in r.getMessage() for r in caplog.records)
    names = _listed_names(COMPAT_CSV)
    assert len(names) == 20 and [c.name for c in collectors.metrics] == names
    stack = build_stack(4, ["stable"], collectors=collectors)
    stack.clock.advance(30)
    stack.simulator.step()
    families = {f.name: f for f in text_string_to_metric_families(stack.cycle().decode())}
    for name in names:  # every listed field is one an H100 supports, so every name must have a series per GPU
        family = families.get(name) or families.get(name.removesuffix("_total"))
        assert family is not None, f"no series for {name}"
        assert {s.labels["gpu"] for s in family.samples} == {"0", "1", "2", "3"}, name

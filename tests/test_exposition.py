"""The exposition contract (compat §1), pinned by golden output of a seeded run and by its parts."""

from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from otel_fakegpu.fields import parse_collectors
from otel_fakegpu.outputs import format_value
from otel_fakegpu.sim import PROFILE_NAMES
from tests.conftest import build_stack

GOLDEN = Path(__file__).parent / "golden" / "seed42_7gpus.prom"
LABEL_ORDER = ["gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION"]


def _golden_body() -> bytes:
    stack = build_stack(7, PROFILE_NAMES, seed=42, skus=("h100-sxm", "a100-80gb", "a100-40gb"))
    for _ in range(3):
        stack.clock.advance(30)
        stack.simulator.step()
    return stack.cycle()


def test_seeded_run_matches_golden_output() -> None:
    body = _golden_body()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_bytes(body)
    assert body.decode() == GOLDEN.read_text(), "exposition changed; rerun with UPDATE_GOLDEN=1 if intended"


def test_body_parses_and_every_family_has_help_and_type() -> None:
    text = _golden_body().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["DCGM_FI_DEV_GPU_TEMP"].type == "gauge"
    # prometheus_client strips _total from counter family names; the raw text must not carry it.
    assert families["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"].type == "counter"
    assert "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION_total" not in text
    names = set(re.findall(r"^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]", text, re.M))
    for name in names:
        assert f"# HELP {name} " in text and f"# TYPE {name} " in text
    assert "otel_scope" not in text and "target_info" not in text


def test_label_order_and_values_follow_dcgm_exporter() -> None:
    text = _golden_body().decode()
    line = next(line for line in text.splitlines() if line.startswith("DCGM_FI_DEV_GPU_TEMP{"))
    keys = re.findall(r'([A-Za-z_]+)="', line)
    assert keys == LABEL_ORDER
    assert re.match(
        r'DCGM_FI_DEV_GPU_TEMP\{gpu="0",UUID="GPU-[0-9a-f-]{36}",pci_bus_id="00000000:18:00.0",'
        r'device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="golden-host",'
        r'DCGM_FI_DRIVER_VERSION="550.54.15"\} \d+$',
        line,
    )
    power = next(line for line in text.splitlines() if line.startswith("DCGM_FI_DEV_POWER_USAGE{"))
    assert re.search(r" \d+\.\d{6}$", power)  # doubles print as decimals


def test_one_series_per_gpu_per_family_and_blank_gives_no_series() -> None:
    stack = build_stack(7, PROFILE_NAMES, seed=42)
    faulty = PROFILE_NAMES.index("faulty")
    stack.engine.inject([(faulty, 150, None)], stack.clock())
    families = {f.name: f for f in text_string_to_metric_families(stack.cycle().decode())}
    temps = {s.labels["gpu"] for s in families["DCGM_FI_DEV_GPU_TEMP"].samples}
    assert temps == {str(i) for i in range(7)} - {str(faulty)}
    assert len(families["DCGM_FI_DEV_POWER_USAGE"].samples) == 7


def test_no_hostname_drops_the_label_and_label_fields_follow_the_csv() -> None:
    csv = "DCGM_FI_DEV_GPU_TEMP, gauge, t\nDCGM_FI_DEV_VBIOS_VERSION, label, v\nDCGM_FI_DRIVER_VERSION, label, d\n"
    stack = build_stack(1, ["static"], hostname=None, collectors=parse_collectors(csv))
    line = next(line for line in stack.cycle().decode().splitlines() if line.startswith("DCGM_FI_DEV_GPU_TEMP{"))
    keys = re.findall(r'([A-Za-z_]+)="', line)
    assert keys == [
        "gpu",
        "UUID",
        "pci_bus_id",
        "device",
        "modelName",
        "DCGM_FI_DEV_VBIOS_VERSION",
        "DCGM_FI_DRIVER_VERSION",
    ]


def test_label_values_are_escaped() -> None:
    stack = build_stack(1, ["static"])
    stack.engine.inject([(0, 50, 'Weird "GPU"\\ name\nline2')], stack.clock())
    text = stack.cycle().decode()
    assert 'modelName="Weird \\"GPU\\"\\\\ name\\nline2"' in text
    list(text_string_to_metric_families(text))  # still parses


def test_value_formatting() -> None:
    assert format_value(41) == "41"
    assert format_value(2**62) == str(2**62)
    assert format_value(0.5) == "0.500000"
    assert format_value(float("nan")) == "NaN"
    assert format_value(float("-inf")) == "-Inf"


def test_text_in_a_numeric_field_is_dropped_not_fatal() -> None:
    stack = build_stack(2, ["static"])
    stack.engine.inject([(1, 150, "hot")], stack.clock())
    families = {f.name: f for f in text_string_to_metric_families(stack.cycle().decode())}
    assert [s.labels["gpu"] for s in families["DCGM_FI_DEV_GPU_TEMP"].samples] == ["0"]

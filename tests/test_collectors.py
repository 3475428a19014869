"""Collectors CSV: dcgm-exporter's format, the stock default set, and FILE:LINE errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from otel_fakegpu.fields import (
    CollectorsError,
    MetricKind,
    default_collectors_path,
    load_collectors,
    parse_collectors,
)

STOCK_DEFAULT = [
    ("DCGM_FI_DEV_SM_CLOCK", "gauge"), ("DCGM_FI_DEV_MEM_CLOCK", "gauge"), ("DCGM_FI_DEV_MEMORY_TEMP", "gauge"),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge"), ("DCGM_FI_DEV_POWER_USAGE", "gauge"),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter"), ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter"),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge"), ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge"), ("DCGM_FI_DEV_ENC_UTIL", "gauge"),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge"), ("DCGM_FI_DEV_XID_ERRORS", "gauge"), ("DCGM_FI_DEV_FB_FREE", "gauge"),
    ("DCGM_FI_DEV_FB_USED", "gauge"), ("DCGM_FI_DEV_FB_RESERVED", "gauge"),
    ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter"), ("DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge"),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter"), ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter"),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge"), ("DCGM_FI_DRIVER_VERSION", "label"),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge"), ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge"),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge"), ("DCGM_FI_PROF_PCIE_TX_BYTES", "gauge"),
    ("DCGM_FI_PROF_PCIE_RX_BYTES", "gauge"),
]  # fmt: skip


def test_shipped_default_is_the_stock_26_line_set() -> None:
    collectors = load_collectors(default_collectors_path())
    by_line = sorted((*collectors.metrics, *collectors.labels), key=lambda c: c.line)
    assert [(c.name, c.kind.value) for c in by_line] == STOCK_DEFAULT
    assert all(c.help for c in by_line)


def test_format_details_comments_blank_lines_spaces_and_quotes() -> None:
    text = (
        "# comment\n\n   # indented comment\n"
        "  DCGM_FI_DEV_GPU_TEMP ,  gauge ,  GPU temperature (in C).  \n"
        'DCGM_FI_DEV_POWER_USAGE, gauge, "Power draw, in W"\n'
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS, gauge, new spelling\n"
        "DCGM_FI_DRIVER_VERSION, label, driver\n"
    )
    collectors = parse_collectors(text, "x.csv")
    assert [c.name for c in collectors.metrics] == [
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
    ]
    assert collectors.metrics[0].help == "GPU temperature (in C)."
    assert collectors.metrics[1].help == "Power draw, in W"
    assert collectors.metrics[2].field.id == 112
    assert [c.kind for c in collectors.labels] == [MetricKind.LABEL]
    assert collectors.field_ids == (150, 155, 112, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("DCGM_FI_DEV_GPU_TEMP, gauge, ok\nDCGM_FI_DEV_NOPE, gauge, x\n", r"^f\.csv:2: unknown DCGM field 'DCGM_FI_DEV_NOPE'$"),
        ("DCGM_FI_DEV_GPU_TEMP, gaug, x\n", r"^f\.csv:1: unknown type 'gaug'"),
        ("\n\nDCGM_FI_DEV_GPU_TEMP, gauge\n", r"^f\.csv:3: expected 3 comma-separated columns"),
        ("DCGM_FI_DEV_GPU_TEMP, gauge, a, b\n", r"^f\.csv:1: expected 3"),
        ("DCGM_FI_DRIVER_VERSION, gauge, x\n", r"^f\.csv:1: DCGM_FI_DRIVER_VERSION holds text"),
        ("DCGM_FI_DEV_GPU_TEMP, histogram, x\n", r"^f\.csv:1: type 'histogram' is never produced"),
        ('DCGM_FI_DEV_GPU_TEMP, gauge, "unterminated\n', r"^f\.csv:1: malformed CSV"),
        ("# only comments\n", r"^f\.csv: no gauge or counter fields"),
    ],
)  # fmt: skip
def test_bad_lines_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(CollectorsError, match=message):
        parse_collectors(text, "f.csv")


def test_health_status_fields_are_computed_from_the_fields_they_need() -> None:
    collectors = parse_collectors("DCGM_EXP_P2P_STATUS, gauge, x\nDCGM_EXP_GPU_HEALTH_STATUS, gauge, t\n", "p.csv")
    assert [c.field.id for c in collectors.computed] == [9004, 9003]
    assert collectors.field_ids == () and 230 in collectors.derived_field_ids
    with pytest.raises(CollectorsError, match=r"^p\.csv:1: DCGM_EXP_P2P_STATUS is a status"):
        parse_collectors("DCGM_EXP_P2P_STATUS, label, x\n", "p.csv")


def test_window_counts_are_computed_fields_never_read_from_the_engine(caplog: pytest.LogCaptureFixture) -> None:
    text = (
        "DCGM_EXP_XID_ERRORS_COUNT, gauge, x\nDCGM_EXP_CLOCK_EVENTS_COUNT, counter, c\nDCGM_FI_DEV_GPU_TEMP, gauge, t\n"
    )
    with caplog.at_level(logging.WARNING):
        collectors = parse_collectors(text, "w.csv")
    assert [c.name for c in collectors.computed] == ["DCGM_EXP_XID_ERRORS_COUNT", "DCGM_EXP_CLOCK_EVENTS_COUNT"]
    assert [c.field.counts_field for c in collectors.computed] == [230, 112]
    assert collectors.field_ids == (150,)
    # Declared counter is kept (the exposition must match the file) but the user hears why gauge fits.
    assert collectors.computed[1].kind is MetricKind.COUNTER
    assert "w.csv:2: DCGM_EXP_CLOCK_EVENTS_COUNT is a sliding-window count" in caplog.text
    with pytest.raises(CollectorsError, match=r"l\.csv:1: DCGM_EXP_XID_ERRORS_COUNT is a count"):
        parse_collectors("DCGM_EXP_XID_ERRORS_COUNT, label, x\n", "l.csv")


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CollectorsError, match=r"missing\.csv: cannot read collectors file"):
        load_collectors(tmp_path / "missing.csv")

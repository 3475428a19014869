"""DCGM 4.6 field names: the generated table (otel_fakegpu/fields/dcgm-fields.csv) against the counts its generator
saw in dcgm_fields.h and against compat.md §10's figures; the generator itself on a small header; every name, canonical
or alias, accepted in a collectors file with its series named as written; one field under two names."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_fakegpu.fields import CATALOG, default_collectors_path, load_collectors, parse_collectors
from otel_fakegpu.fields.dcgm_names import DCGM_NAMES, parse_table
from otel_fakegpu.fields.field_table import FIELDS
from tests.conftest import build_stack

ROOT = Path(__file__).resolve().parent.parent
# What tools/gen_dcgm_fields.py counted in NVIDIA/DCGM 72fa3fe's dcgm_fields.h (and dcgm_fields.cpp for types): 642
# field ids defined by number; 326 "#define OLD NEW" aliases, 325 of them in the header's DCGM_DEPRECATED block at its
# end and DCGM_FI_DEV_CLOCK_THROTTLE_REASONS earlier. compat.md §10 says 329 aliases; a strict count of the header
# finds 326 (two more "#define DCGM_FI_MAX_* A - B" lines are arithmetic, not aliases).
GENERATED_COUNTS = {"fields": 642, "aliases": 326, "typed": 587}
# compat.md §10's examples: canonical 4.6 name -> (id, the older name it replaced).
COMPAT_EXAMPLES = {
    "DCGM_FI_DEV_GPU_TEMP_CELSIUS": (150, "DCGM_FI_DEV_GPU_TEMP"),
    "DCGM_FI_DEV_MEMORY_TEMP_CELSIUS": (140, "DCGM_FI_DEV_MEMORY_TEMP"),
    "DCGM_FI_DEV_BOARD_POWER_WATTS": (155, "DCGM_FI_DEV_POWER_USAGE"),
    "DCGM_FI_DEV_GPU_UTIL_RATIO": (203, "DCGM_FI_DEV_GPU_UTIL"),
    "DCGM_FI_PROF_TENSOR_UTIL_RATIO": (1004, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"),
    "DCGM_FI_PROF_IMMA_UTIL_RATIO": (1013, "DCGM_FI_PROF_PIPE_TENSOR_IMMA_ACTIVE"),
    "DCGM_FI_PROF_HMMA_UTIL_RATIO": (1014, "DCGM_FI_PROF_PIPE_TENSOR_HMMA_ACTIVE"),
    "DCGM_FI_PROF_DFMA_UTIL_RATIO": (1015, "DCGM_FI_PROF_PIPE_TENSOR_DFMA_ACTIVE"),
    "DCGM_FI_DEV_NVLINK_THROUGHPUT_TOTAL": (449, "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL"),
}
COMPAT_NEW_FIELDS = {
    "DCGM_FI_DEV_BOARD_POWER_RAW_WATTS": 157, "DCGM_FI_DEV_FABRIC_HEALTH_SUMMARY": 175,
    "DCGM_FI_PROF_SM_CYCLES_ACTIVE_TOTAL": 1085, "DCGM_FI_PROF_MMA_CYCLES_ACTIVE_TOTAL": 1086,
    "DCGM_FI_PROF_DMMA_CYCLES_ACTIVE_TOTAL": 1087, "DCGM_FI_PROF_HMMA_CYCLES_ACTIVE_TOTAL": 1088,
    "DCGM_FI_PROF_IMMA_CYCLES_ACTIVE_TOTAL": 1089, "DCGM_FI_PROF_DFMA_CYCLES_ACTIVE_TOTAL": 1090,
}  # fmt: skip


def test_table_holds_what_the_generator_counted_in_the_header() -> None:
    assert DCGM_NAMES.counts == GENERATED_COUNTS
    canonical = [n for n in DCGM_NAMES.names.values() if not n.alias_of]
    aliases = [n for n in DCGM_NAMES.names.values() if n.alias_of]
    assert len(canonical) == GENERATED_COUNTS["fields"] and len(aliases) == GENERATED_COUNTS["aliases"]
    assert sum(1 for n in canonical if n.value_type) == GENERATED_COUNTS["typed"]
    assert "72fa3feaa67d716a75323a8f47c34ff3ee73f824" in DCGM_NAMES.source and "dcgm_fields.h" in DCGM_NAMES.source
    assert "Apache-2.0" in (ROOT / "otel_fakegpu" / "fields" / "dcgm-fields.csv").read_text().splitlines()[2]
    for alias in aliases:  # an alias names a canonical field of the same id, with its type
        target = DCGM_NAMES.names[alias.alias_of]
        assert not target.alias_of and (target.id, target.value_type) == (alias.id, alias.value_type), alias


def test_table_agrees_with_compat_md_and_the_detailed_catalog() -> None:
    for new, (field_id, old) in COMPAT_EXAMPLES.items():
        assert DCGM_NAMES.names[new].id == field_id and DCGM_NAMES.names[old].alias_of == new
    for name, field_id in COMPAT_NEW_FIELDS.items():
        assert DCGM_NAMES.names[name].id == field_id and not DCGM_NAMES.names[name].alias_of
    for spec in FIELDS:  # every name the catalog knows in detail is one of DCGM's names for that id
        if spec.id < 9000:
            assert {spec.name, *spec.aliases} <= {n.name for n in DCGM_NAMES.by_id[spec.id]}, spec.name


def test_generator_reads_fields_aliases_and_types(tmp_path: Path) -> None:
    header = tmp_path / "dcgm_fields.h"
    header.write_text(
        "#define DCGM_FI_DEV_GPU_TEMP_CELSIUS 150\n#define DCGM_FI_FIRST_VGPU_FIELD_ID 520\n"
        "#define DCGM_FI_MAX_VGPU_FIELDS DCGM_FI_LAST_VGPU_FIELD_ID - DCGM_FI_FIRST_VGPU_FIELD_ID\n"
        "#define DCGM_FI_DEV_GPU_TEMP   DCGM_FI_DEV_GPU_TEMP_CELSIUS   //  150\n"
    )
    cpp = tmp_path / "dcgm_fields.cpp"
    cpp.write_text("DcgmFieldsPopulateOneFieldWithFormatting(DCGM_FI_DEV_GPU_TEMP_CELSIUS,\n DCGM_FT_INT64, 8, \"t\", "
                   "DCGM_FS_DEVICE, 0, \"T\", \"C\", DCGM_FE_GPU, 5);\n")  # fmt: skip
    out = tmp_path / "t.csv"
    tool = ROOT / "tools" / "gen_dcgm_fields.py"
    args = [sys.executable, str(tool), str(header), "--types", str(cpp), "--commit", "abc", "-o", str(out)]
    subprocess.run(args, check=True, capture_output=True)
    table = parse_table(out.read_text())
    assert table.counts == {"fields": 1, "aliases": 1, "typed": 1} and "commit abc" in table.source
    assert [(n.name, n.id, n.value_type, n.entity) for n in table.by_id[150]] == [
        ("DCGM_FI_DEV_GPU_TEMP_CELSIUS", 150, "int", "gpu"), ("DCGM_FI_DEV_GPU_TEMP", 150, "int", "gpu"),
    ]  # fmt: skip
    header.write_text("#define DCGM_FI_OLD DCGM_FI_MISSING\n")
    failed = subprocess.run([*args[:3], "-o", str(out)], check=False, capture_output=True, text=True)
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1 and "DCGM_FI_OLD" in failed.stderr


def test_every_name_in_the_table_is_accepted_with_its_id() -> None:
    for name, entry in DCGM_NAMES.names.items():
        kind = "label" if entry.value_type in ("str", "binary") else "gauge"
        collectors = parse_collectors(f"{name}, {kind}, x\nDCGM_EXP_P2P_STATUS, gauge, a metric besides\n", "f.csv")
        collector = (*collectors.labels, *collectors.metrics)[0]
        assert (collector.name, collector.field.id) == (name, entry.id)


def _canonical_copy(path: Path) -> str:
    """The stock collectors file with every field renamed to its DCGM 4.6 canonical name."""
    lines = []
    for line in path.read_text().splitlines():
        name = line.split(",")[0].strip()
        entry = DCGM_NAMES.names.get(name)
        lines.append(line.replace(name, entry.alias_of, 1) if entry and entry.alias_of else line)
    return "\n".join(lines) + "\n"


def _families(collectors_text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    stack = build_stack(2, ["stable"], collectors=parse_collectors(collectors_text, "c.csv"))
    stack.clock.advance(30)
    stack.simulator.step()
    body = stack.cycle().decode()
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(body)}


def test_stock_file_in_canonical_names_serves_every_series_under_the_name_written() -> None:
    stock = default_collectors_path()
    canonical_text = _canonical_copy(stock)
    assert "DCGM_FI_DEV_GPU_TEMP_CELSIUS," in canonical_text and "DCGM_FI_DEV_BOARD_POWER_WATTS," in canonical_text
    renamed = {c.name: DCGM_NAMES.names[c.name].alias_of or c.name for c in load_collectors(stock).metrics}
    old, new = _families(stock.read_text()), _families(canonical_text)
    served = {name for name in old if name.startswith("DCGM_")}
    assert len(served) >= 20
    label = "DCGM_FI_DRIVER_VERSION"  # a label-type field keeps its label name as written too
    for name in served:
        assert new[renamed[name]] == [({k: v for k, v in lb.items() if k != label} | _driver(lb, canonical_text), v)
                                      for lb, v in old[name]], name  # fmt: skip


def _driver(labels: dict[str, str], text: str) -> dict[str, str]:
    written = re.search(r"^(DCGM_FI_\w*DRIVER_VERSION),", text, re.M)
    return (
        {written.group(1): labels["DCGM_FI_DRIVER_VERSION"]} if written and "DCGM_FI_DRIVER_VERSION" in labels else {}
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [("DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_GPU_TEMP_CELSIUS"), ("DCGM_FI_DEV_GPU_TEMP_CELSIUS", "dcgm_gpu_temp")],
)
def test_one_field_under_two_names_is_served_under_the_first(
    first: str, second: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        collectors = parse_collectors(f"{first}, gauge, a\n{second}, gauge, b\n", "d.csv")
    assert [c.name for c in collectors.metrics] == [first]
    assert f"d.csv:2: {second} names field 150, which line 1 already exports as {first}" in caplog.text
    families = _families(f"{first}, gauge, a\n{second}, gauge, b\n")
    assert first in families and second not in families


def test_fields_not_simulated_are_accepted_and_yield_no_series() -> None:
    spec = CATALOG.by_name("DCGM_FI_DEV_C2C_MAX_BANDWIDTH")
    assert spec.id == DCGM_NAMES.names["DCGM_FI_DEV_C2C_MAX_BANDWIDTH"].id
    families = _families("DCGM_FI_DEV_GPU_TEMP_CELSIUS, gauge, t\nDCGM_FI_DEV_C2C_MAX_BANDWIDTH, gauge, c\n")
    assert "DCGM_FI_DEV_GPU_TEMP_CELSIUS" in families and "DCGM_FI_DEV_C2C_MAX_BANDWIDTH" not in families

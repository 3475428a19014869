"""Every field name DCGM 4.6 defines, canonical or legacy alias, with its id: the table ``dcgm-fields.csv``,
generated from DCGM's ``dcgm_fields.h`` by ``tools/gen_dcgm_fields.py`` (its header names the source commit and
licence, and the counts the generator saw).

DCGM 4.6 renamed most fields to carry their unit (``DCGM_FI_DEV_GPU_TEMP`` became ``DCGM_FI_DEV_GPU_TEMP_CELSIUS``)
and kept the old names as ``#define OLD NEW`` aliases: both name the same id and the same values.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from otel_fakegpu.config.files import read_config_text

TABLE_FILE = "dcgm-fields.csv"
_COUNTS = re.compile(r"^# Counts the generator saw: (.*)$")


@dataclass(frozen=True)
class DcgmName:
    """One ``#define`` of the header: a field (``alias_of`` empty) or a legacy alias of one."""

    id: int
    name: str
    value_type: str  # int, double, str, binary; empty where DCGM populates no such field
    entity: str  # gpu, gpu_i, gpu_ci, switch, link, cpu, ...; empty as above
    alias_of: str  # the canonical name this alias stands for, "" for a canonical name


@dataclass(frozen=True)
class DcgmNameTable:
    names: dict[str, DcgmName]  # every name, canonical and alias
    by_id: dict[int, tuple[DcgmName, ...]]  # every name of an id, the canonical one first
    counts: dict[str, int]  # what the generator counted in the header (fields, aliases, typed)
    source: str  # the table's Source line


def parse_table(text: str) -> DcgmNameTable:
    """The generated CSV: ``#`` lines are its header, then ``id,name,type,entity,alias_of`` rows."""
    names: dict[str, DcgmName] = {}
    counts: dict[str, int] = {}
    source = ""
    rows = []
    for line in text.splitlines():
        if match := _COUNTS.match(line):
            counts = {key: int(value) for key, value in (part.split("=") for part in match.group(1).split())}
        elif line.startswith("# Source: "):
            source = line.removeprefix("# Source: ")
        elif line and not line.startswith("#"):
            rows.append(line)
    for field_id, name, value_type, entity, alias_of in csv.reader(rows):
        names[name] = DcgmName(int(field_id), name, value_type, entity, alias_of)
    by_id: dict[int, list[DcgmName]] = {}
    for entry in sorted(names.values(), key=lambda n: bool(n.alias_of)):
        by_id.setdefault(entry.id, []).append(entry)
    return DcgmNameTable(names, {k: tuple(v) for k, v in by_id.items()}, counts, source)


def load_table() -> DcgmNameTable:
    """The table shipped in the package, read through the one bounded reader like every file."""
    path = Path(str(resources.files("otel_fakegpu.fields").joinpath(TABLE_FILE)))
    return parse_table(read_config_text(path, 1 << 20, "DCGM field table"))


DCGM_NAMES = load_table()

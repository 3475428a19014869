"""Compare the NVML engine (and the DCGM engine where DCGM is installed) with nvidia-smi on a real NVIDIA GPU.

Prints a dated Markdown table (device, driver, each engine's value beside nvidia-smi's, the tolerance and a
verdict) to commit into docs/real-gpu.md. Exit 0 when every reading agrees within its tolerance, 1 when one
does not, 2 when there is no GPU to check. Run through tools/check-real-gpu.sh.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from otel_fakegpu.engine import Engine, EngineError, EngineSettings, EngineUnavailable
from otel_fakegpu.fields import CATALOG, Value

Check = Callable[[Value, Value], bool]


def exact(engine: Value, smi: Value) -> bool:
    return engine == smi


def within(absolute: float, relative: float = 0.0) -> Check:
    def check(engine: Value, smi: Value) -> bool:
        if not isinstance(engine, int | float) or not isinstance(smi, int | float):
            return False
        return abs(engine - smi) <= max(absolute, relative * abs(smi))

    return check


@dataclass(frozen=True)
class Row:
    field_id: int
    query: str  # nvidia-smi --query-gpu name; "a|b": the first this nvidia-smi knows (older names after)
    check: Check
    tolerance: str
    convert: Callable[[str], Value] = float


def _pstate(text: str) -> Value:
    return int(text.lstrip("P"))


def _yes_no(text: str) -> Value:
    return 1 if text.strip().lower() == "yes" else 0


def _bitmask(text: str) -> Value:
    return int(text, 16)


ROWS = (
    Row(50, "name", exact, "exact", str),
    Row(54, "uuid", exact, "exact", str),
    Row(57, "pci.bus_id", exact, "exact", str),
    Row(1, "driver_version", exact, "exact", str),
    Row(53, "serial", exact, "exact", str),
    Row(85, "vbios_version", exact, "exact", str),
    Row(150, "temperature.gpu", within(3), "±3 °C"),
    Row(140, "temperature.memory", within(3), "±3 °C"),
    Row(155, "power.draw", within(15, 0.1), "±max(15 W, 10%)"),
    Row(100, "clocks.sm", within(100, 0.1), "±max(100 MHz, 10%)"),
    Row(101, "clocks.mem", within(50, 0.05), "±max(50 MHz, 5%)"),
    Row(203, "utilization.gpu", within(10), "±10 points"),
    Row(204, "utilization.memory", within(10), "±10 points"),
    Row(250, "memory.total", within(1), "±1 MiB"),
    Row(251, "memory.free", within(64, 0.02), "±max(64 MiB, 2%)"),
    Row(252, "memory.used", within(64, 0.02), "±max(64 MiB, 2%)"),
    Row(253, "memory.reserved", within(64, 0.02), "±max(64 MiB, 2%)"),
    Row(191, "fan.speed", within(5), "±5 points"),
    Row(190, "pstate", exact, "exact", _pstate),
    Row(206, "utilization.encoder", within(10), "±10 points"),
    Row(207, "utilization.decoder", within(10), "±10 points"),
    Row(112, "clocks_event_reasons.active|clocks_throttle_reasons.active", exact, "exact (may flicker)", _bitmask),
    Row(310, "ecc.errors.corrected.volatile.total", exact, "exact"),
    Row(311, "ecc.errors.uncorrected.volatile.total", exact, "exact"),
    Row(312, "ecc.errors.corrected.aggregate.total", exact, "exact"),
    Row(313, "ecc.errors.uncorrected.aggregate.total", exact, "exact"),
    Row(390, "retired_pages.single_bit_ecc.count", exact, "exact"),
    Row(391, "retired_pages.double_bit.count", exact, "exact"),
    Row(392, "retired_pages.pending", exact, "exact", _yes_no),
    Row(393, "remapped_rows.uncorrectable", exact, "exact"),
    Row(394, "remapped_rows.correctable", exact, "exact"),
    Row(396, "remapped_rows.pending", exact, "exact", _yes_no),
    Row(395, "remapped_rows.failure", exact, "exact", _yes_no),
)
BLANK_TEXTS = ("[N/A]", "N/A", "[Not Supported]", "Not Supported", "[Unknown Error]", "")


NOT_QUERYABLE = "not in this nvidia-smi"


def query_smi(index: int, queries: str) -> tuple[Value | None, str]:
    """One nvidia-smi field (one call each: an unknown field fails the whole query on older drivers)."""
    for query in queries.split("|"):
        result = subprocess.run(
            ["nvidia-smi", f"--id={index}", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        text = result.stdout.strip()
        if result.returncode == 0:
            return (None, text) if text in BLANK_TEXTS else (text, text)
    return None, NOT_QUERYABLE


def _engine_values(make: Callable[[], Engine]) -> tuple[dict[int, dict[int, Value | None]] | None, str]:
    """{gpu: {field: value}} from one read of the engine, or None and why not."""
    try:
        engine = make()
        snapshot = engine.read_latest([row.field_id for row in ROWS])
    except (EngineUnavailable, EngineError) as exc:
        return None, str(exc)
    engine.close()
    return {eid: {row.field_id: snapshot.value(eid, row.field_id) for row in ROWS} for eid in snapshot.entity_ids}, ""


def nvml_engine() -> Engine:
    from otel_fakegpu.engine.nvml import NvmlEngine, load_pynvml  # noqa: PLC0415 - only on a GPU host

    return NvmlEngine(load_pynvml(), EngineSettings("nvml"))


def dcgm_engine() -> Engine:
    from otel_fakegpu.engine.dcgm import DcgmEngine  # noqa: PLC0415
    from otel_fakegpu.engine.dcgm_loader import load_dcgm  # noqa: PLC0415

    remote = os.environ.get("DCGM_REMOTE_HOSTENGINE_INFO") or None
    return DcgmEngine(load_dcgm(os.environ, inject=False), EngineSettings("dcgm", remote), 1.0)


def _show(value: Value | None) -> str:
    if value is None:
        return "blank"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def verdict(row: Row, engine: Value | None, smi_text: Value | None, shown: str) -> str:
    if shown == NOT_QUERYABLE:
        return "not compared"
    if engine is None and smi_text is None:
        return "ok (both blank)"
    if engine is None or smi_text is None:
        return "MISMATCH"
    try:
        smi = row.convert(str(smi_text))
    except ValueError:
        return "MISMATCH"
    return "ok" if row.check(engine, smi) else "MISMATCH"


def report(engines: Sequence[tuple[str, Callable[[], Engine]]]) -> tuple[list[str], bool]:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    readings = [(name, *_engine_values(make)) for name, make in engines]
    nvml = readings[0][1]
    if nvml is None:
        return [f"check-real-gpu: the NVML engine cannot read this host: {readings[0][2]}"], False
    lines, good = [f"### {now} on {platform.node()}", ""], True
    for name, values, why in readings[1:]:
        if values is None:
            lines.append(f"- {name} engine not checked: {why}")
    for gpu in sorted(nvml):
        model, driver = query_smi(gpu, "name")[1], query_smi(gpu, "driver_version")[1]
        lines += ["", f"GPU {gpu}: {model}, driver {driver}", ""]
        header = ["field", "nvidia-smi", *(f"{n} engine" for n, v, _ in readings if v), "tolerance", "verdict"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in ROWS:
            smi_value, smi_text = query_smi(gpu, row.query)
            cells, verdicts = [], []
            for _, values, _ in readings:
                if values is not None:
                    value = values.get(gpu, {}).get(row.field_id)
                    cells.append(_show(value))
                    verdicts.append(verdict(row, value, smi_value, smi_text))
            overall = "MISMATCH" if "MISMATCH" in verdicts else verdicts[0]
            good = good and overall != "MISMATCH"
            name = f"{CATALOG.by_id(row.field_id).name} (`{row.query.split('|')[0]}`)"
            lines.append("| " + " | ".join([name, smi_text, *cells, row.tolerance, overall]) + " |")
    return lines, good


def main() -> int:
    lines, good = report([("nvml", nvml_engine), ("dcgm", dcgm_engine)])
    print("\n".join(lines))
    if len(lines) == 1:
        return 2
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())

"""SKU presets: --list-gpu-models, lookups, the figures consumers compare against, and --mig on the CLI."""

from __future__ import annotations

import pytest

from otel_fakegpu.fields import CollectorsError, parse_collectors
from otel_fakegpu.fields.legacy import GO_DCGM_LEGACY_NAMES
from otel_fakegpu.sim import SKUS, find_sku
from tests.conftest import run_cli

REQUIRED = ("a100-40gb", "a100-80gb", "a100-pcie-80gb", "h100-sxm", "h100-pcie", "h200", "b200", "l40s", "l4", "t4")


def test_list_gpu_models_prints_a_table_and_exits_0() -> None:
    result = run_cli("--list-gpu-models")
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["model", "name"]
    assert len(lines) == 1 + len(SKUS) >= 11
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(REQUIRED) <= set(rows) and "rtx6000-ada" in rows
    assert "NVIDIA H100 80GB HBM3" in rows["h100-sxm"] and "81559" in rows["h100-sxm"]
    assert "18 x 50 GB/s" in rows["h100-sxm"] and "1g.10gb" in rows["h100-sxm"]
    assert "yes" in rows["rtx6000-ada"].split() and "turing" in rows["t4"]


def test_presets_are_internally_consistent() -> None:
    for sku in SKUS.values():
        assert sku.idle_w < sku.tdp_w and sku.sm_clock_idle_mhz < sku.sm_clock_max_mhz
        assert sku.slowdown_temp_c < sku.shutdown_c and sku.fb_reserved_mib < sku.fb_total_mib
        assert (sku.nvlink_links == 0) == (sku.nvlink_bytes_per_s == 0)
        assert sku.source, f"{sku.key} names no source"
        for profile in sku.mig_profiles:
            assert profile.fb_mib * 8 <= sku.fb_total_mib * profile.memory_slices
    assert find_sku("NVIDIA A100 80GB PCIe") is SKUS["a100-pcie-80gb"]
    assert find_sku("tesla t4") is SKUS["t4"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--mig", "0:2g.10gb"], {}, "--mig='0:2g.10gb': GPU 0: MIG profile 2g.10gb is not offered by h100-sxm"),
        ([], {"OTEL_FAKEGPU_MIG": "0:7g.80gb+1g.10gb"}, "OTEL_FAKEGPU_MIG='0:7g.80gb+1g.10gb': GPU 0: MIG layout"),
        (["--gpu-model", "l40s", "--mig", "all:1g.10gb"], {}, "GPU 0: GPU model l40s does not support MIG"),
        (["--engine", "nvml", "--mig", "0:1g.10gb"], {}, "simulated by the embedded engine only (the engine is nvml)"),
    ],
)
def test_bad_mig_is_one_line_exit_2(args: list[str], env: dict[str, str], message: str) -> None:
    result = run_cli(*args, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_legacy_pcie_throughput_names_now_resolve_and_unknown_legacy_ids_stay_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collectors = parse_collectors("dcgm_pcie_rx_throughput, gauge, x\n", "f.csv")
    assert collectors.metrics[0].field.id == 201  # produced since the simulator models PCIe throughput (200/201)
    monkeypatch.setitem(GO_DCGM_LEGACY_NAMES, "dcgm_made_up", 9999)
    with pytest.raises(CollectorsError, match=r"^f\.csv:1: dcgm_made_up is an older name of DCGM field 9999"):
        parse_collectors("dcgm_made_up, gauge, x\n", "f.csv")

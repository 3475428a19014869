"""MIG as dcgm-exporter shows it (docs/mig.md): only instances, labelled GPU_I_PROFILE and GPU_I_ID after
modelName; framebuffer and profiling per instance, every other field the parent GPU's; no GPU_UTIL."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_fakegpu.config.errors import ConfigError
from otel_fakegpu.fields import load_collectors, parse_collectors
from otel_fakegpu.sim import MigError, MigRef, Workload, parse_mig_spec
from otel_fakegpu.sim.events import parse_event
from tests.conftest import Stack, build_stack

GOLDEN = Path(__file__).parent / "golden" / "mig_a100x7_h100x2.prom"
COLLECTORS = Path(__file__).parent / "data" / "mig-counters.csv"
SPEC = "0:1g.10gb*7,1:3g.40gb*2"


def _mig_stack() -> Stack:
    stack = build_stack(
        2, ["static"], seed=5, skus=("a100-80gb", "h100-sxm"), collectors=load_collectors(COLLECTORS), mig=SPEC
    )
    sim = stack.simulator
    sim.add_workload(Workload("infer-0", "serving", "triton", instances=(MigRef(0, 7),), shape="inference"))
    sim.add_workload(Workload("infer-1", "serving", "triton", instances=(MigRef(0, 9),), shape="constant"))
    sim.add_workload(Workload("train-0", "ml", "pytorch", instances=(MigRef(1, 1),), shape="training", fb_mib=30000))
    for _ in range(3):
        stack.clock.advance(30)
        sim.step()
    return stack


def _families(body: bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(body.decode())}


def test_mig_exposition_matches_golden() -> None:
    body = _mig_stack().cycle()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_bytes(body)
    assert body.decode() == GOLDEN.read_text(), "MIG exposition changed; rerun with UPDATE_GOLDEN=1 if intended"


def test_only_instances_are_exported_with_their_labels_in_order() -> None:
    text = _mig_stack().cycle().decode()
    temps = [line for line in text.splitlines() if line.startswith("DCGM_FI_DEV_GPU_TEMP{")]
    assert len(temps) == 9  # seven 1g.10gb instances + two 3g.40gb, no parent series
    keys = re.findall(r'([A-Za-z_]+)="', temps[0])
    assert keys == [
        "gpu", "UUID", "pci_bus_id", "device", "modelName", "GPU_I_PROFILE", "GPU_I_ID", "Hostname",
        "DCGM_FI_DRIVER_VERSION",
    ]  # fmt: skip
    ids = [(m[0], m[1], m[2]) for m in re.findall(r'gpu="(\d)".*GPU_I_PROFILE="([^"]+)",GPU_I_ID="(\d+)"', text)]
    assert sorted(set(ids)) == sorted(
        [("0", "1g.10gb", str(i)) for i in range(7, 14)] + [("1", "3g.40gb", "1"), ("1", "3g.40gb", "2")]
    )
    assert "DCGM_FI_DEV_GPU_UTIL" not in _families(text.encode())  # not available under MIG


def test_per_instance_values_and_parent_values() -> None:
    fams = _families(_mig_stack().cycle())

    def by_instance(name: str) -> dict[tuple[str, str], float]:
        return {(labels["gpu"], labels["GPU_I_ID"]): value for labels, value in fams[name]}

    totals, used = by_instance("DCGM_FI_DEV_FB_TOTAL"), by_instance("DCGM_FI_DEV_FB_USED")
    assert {totals[("0", str(i))] for i in range(7, 14)} == {9728}
    assert totals[("1", "1")] == totals[("1", "2")] == 40192
    assert used[("1", "1")] == 30000 and used[("1", "2")] == 0
    assert sum(v for k, v in totals.items() if k[0] == "0") <= 81920
    gr = by_instance("DCGM_FI_PROF_GR_ENGINE_ACTIVE")
    assert gr[("1", "1")] > 0.8 and gr[("1", "2")] == 0.0 and gr[("0", "9")] > 0.8
    hmma, tensor = by_instance("DCGM_FI_PROF_PIPE_TENSOR_HMMA_ACTIVE"), by_instance("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE")
    assert all(hmma[k] <= tensor[k] for k in tensor)
    for name in ("DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"):
        values = by_instance(name)
        for gpu in ("0", "1"):
            assert len({v for k, v in values.items() if k[0] == gpu}) == 1  # the parent's value on each instance


def test_bad_specs_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"GPU 0: MIG profile 2g\.10gb is not offered by a100-80gb"):
        build_stack(1, ["static"], skus=("a100-80gb",), mig="0:2g.10gb")
    with pytest.raises(ConfigError, match=r"3g\.40gb\+3g\.40gb\+1g\.10gb does not fit one h100-sxm"):
        build_stack(1, ["static"], mig="0:3g.40gb*2+1g.10gb")
    with pytest.raises(ConfigError, match="t4 does not support MIG"):
        build_stack(1, ["static"], skus=("t4",), mig="all:1g.5gb")
    with pytest.raises(MigError, match="is not a MIG profile"):
        parse_mig_spec("0:big")
    assert parse_mig_spec("0-1:1g.10gb*2+2g.20gb, 3:7g.80gb") == {
        0: ("1g.10gb", "1g.10gb", "2g.20gb"),
        1: ("1g.10gb", "1g.10gb", "2g.20gb"),
        3: ("7g.80gb",),
    }


def test_workloads_must_name_existing_instances() -> None:
    stack = build_stack(1, ["static"], skus=("h100-sxm",), mig="0:3g.40gb*2")
    with pytest.raises(ValueError, match="GPU 0 is MIG-partitioned"):
        stack.simulator.add_workload(Workload("p", "ns", "c", gpus=(0,)))
    with pytest.raises(ValueError, match="no MIG instance 5"):
        stack.simulator.add_workload(Workload("p", "ns", "c", instances=(MigRef(0, 5),)))


def test_instances_follow_the_gpu_profile_until_a_workload_is_placed() -> None:
    stack = build_stack(1, ["static"], skus=("h100-sxm",), mig="0:3g.40gb+2g.20gb*2")
    stack.clock.advance(30)
    stack.simulator.step()
    snap = stack.engine.read_latest((1002, 252, 250))
    assert len(snap.entity_ids) == 3
    assert all(float(v or 0) > 0.4 for v in snap.column(1002))  # static profile: half load on every instance
    assert [round(int(u or 0) / int(t or 1), 2) for u, t in zip(snap.column(252), snap.column(250), strict=True)] == [
        0.5
    ] * 3


def test_an_xid_of_a_mig_gpu_is_counted_on_each_of_its_instances() -> None:
    """Event samples are stored on the parent GPU; its instances repeat its XID field, so they repeat its count."""
    collectors = parse_collectors(
        "DCGM_FI_DEV_XID_ERRORS, gauge, last XID\nDCGM_EXP_XID_ERRORS_COUNT, gauge, XIDs in the window\n"
    )
    stack = build_stack(2, ["static"], seed=5, skus=("a100-80gb", "h100-sxm"), collectors=collectors, mig=SPEC)
    stack.simulator.apply_event(1, parse_event({"xid": 48}))
    stack.clock.advance(30)
    stack.simulator.step()
    counts = _families(stack.cycle())["DCGM_EXP_XID_ERRORS_COUNT"]
    with_xid = sorted((labels["gpu"], labels["GPU_I_ID"], value) for labels, value in counts if labels.get("xid"))
    assert with_xid == [("1", "1", 1.0), ("1", "2", 1.0)]
    assert all(value == 0 for labels, value in counts if labels["gpu"] == "0")

"""--dcgm-exporter-compat: each known release's page byte for byte (a 4-GPU page with MIG instances), the host label
reaching every output (/metrics, /hosts/<h>/metrics, the Prometheus-text push, backfill), unknown releases refused."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_fakegpu.fields import RELEASES, find_release, load_collectors
from otel_fakegpu.sim import MigRef, Workload
from tests.conftest import ExporterProcess, build_stack, run_cli
from tests.receivers import wait_for
from tests.test_digitalocean import receiver  # noqa: F401 - the fixture

GOLDEN_DIR = Path(__file__).parent / "golden"
COLLECTORS = Path(__file__).parent / "data" / "mig-counters.csv"


def _page(version: str) -> bytes:
    """Four GPUs: an A100 in seven 1g.10gb instances, an H100 in two 3g.40gb, two whole H100s, with workloads."""
    stack = build_stack(
        4,
        ["static", "stable", "wave", "spike"],
        seed=11,
        skus=("a100-80gb", "h100-sxm"),
        collectors=load_collectors(COLLECTORS),
        mig="0:1g.10gb*7,1:3g.40gb*2",
        release=version,
    )
    stack.simulator.add_workload(Workload("infer", "serving", "triton", instances=(MigRef(0, 7),), shape="constant"))
    for _ in range(3):
        stack.clock.advance(30)
        stack.simulator.step()
    return stack.cycle()


@pytest.mark.parametrize("version", [r.version for r in RELEASES])
def test_each_release_page_matches_its_golden(version: str) -> None:
    golden = GOLDEN_DIR / f"dcgm-exporter-{version}.prom"
    body = _page(version)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_bytes(body)
    assert body.decode() == golden.read_text(), f"{version} page changed; rerun with UPDATE_GOLDEN=1 if intended"


def test_releases_differ_in_the_host_label_only() -> None:
    old, new = (_page(v).decode() for v in ("4.8.2", "4.8.3"))
    assert ',Hostname="golden-host"' in old and "hostname=" not in old
    assert ',hostname="golden-host"' in new and "Hostname=" not in new
    assert new.replace(',hostname="', ',Hostname="') == old
    instance = next(line for line in new.splitlines() if line.startswith("DCGM_FI_DEV_FB_USED{"))
    keys = re.findall(r'([A-Za-z_]+)="', instance)
    assert keys[:8] == ["gpu", "UUID", "pci_bus_id", "device", "modelName", "GPU_I_PROFILE", "GPU_I_ID", "hostname"]


def test_release_is_found_by_version_or_tag() -> None:
    assert find_release("4.6.0-4.8.3") == find_release(" 4.8.3 ")
    with pytest.raises(KeyError, match=r"known: 4\.8\.2 \(4\.5\.3-4\.8\.2\), 4\.8\.3"):
        find_release("4.9.0")


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--dcgm-exporter-compat", "3.3.5"], {}, "--dcgm-exporter-compat='3.3.5'"),
        ([], {"OTEL_FAKEGPU_DCGM_EXPORTER_COMPAT": "latest"}, "OTEL_FAKEGPU_DCGM_EXPORTER_COMPAT='latest'"),
    ],
)
def test_unknown_release_is_one_line_listing_the_known_ones(args: list[str], env: dict[str, str], named: str) -> None:
    result = run_cli(*args, "--check-config", env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and named in result.stderr and "4.8.2" in result.stderr, result.stderr


def test_host_label_reaches_metrics_hosts_pages_and_push(
    exporter_factory: Callable[..., ExporterProcess],
    receiver: tuple[str, list[bytes]],  # noqa: F811 - the fixture
) -> None:
    url, bodies = receiver
    fleet = exporter_factory(
        "--hosts", "2", "--num-gpus", "1", "-c", "600000", "--workers", "1",
        env={"NODE_NAME": "rack", "OTEL_FAKEGPU_DCGM_EXPORTER_COMPAT": "4.8.3"},
    )  # fmt: skip
    page = fleet.get("/hosts/rack-1/metrics")[1].decode()
    assert ',hostname="rack-1"' in page and "Hostname" not in page
    single = exporter_factory(
        "--dcgm-exporter-compat", "4.6.0-4.8.3", "-c", "600000", "--push-prometheus-url", url, env={"NODE_NAME": "n"}
    )
    page = single.get("/metrics")[1].decode()
    assert ',hostname="n"' in page and "Hostname" not in page
    wait_for(lambda: len(bodies) >= 1)
    pushed = [s for f in text_string_to_metric_families(bodies[0].decode()) for s in f.samples]
    assert pushed and all(s.labels.get("hostname") == "n" and "Hostname" not in s.labels for s in pushed)


@pytest.mark.parametrize(("version", "label"), [("4.8.2", "Hostname"), ("4.8.3", "hostname")])
def test_backfill_writes_the_release_host_label(tmp_path: Path, version: str, label: str) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("seed: 1\ngpus:\n  - {count: 1, model: h100-sxm}\n")
    out = tmp_path / "o.om"
    result = run_cli(
        "backfill", "--scenario", str(scenario), "--start", "-2m", "--step", "30s", "--out", str(out),
        "--dcgm-exporter-compat", version, env={"NODE_NAME": "bf"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    other = "hostname" if label == "Hostname" else "Hostname"
    assert f',{label}="bf"' in out.read_text() and f"{other}=" not in out.read_text()
    bad = run_cli(
        "backfill", "--scenario", str(scenario), "--out", str(out), env={"OTEL_FAKEGPU_DCGM_EXPORTER_COMPAT": "9"}
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "4.8.3" in bad.stderr, bad.stderr


def test_exporter_metrics_add_the_process_family_and_keep_ours(
    exporter_factory: Callable[..., ExporterProcess],
) -> None:
    plain = exporter_factory("-c", "600000", "--num-gpus", "1")
    assert "process_cpu_seconds_total" not in plain.get("/metrics")[1].decode()
    exporter = exporter_factory(
        "-c", "600000", "--num-gpus", "1", env={"DCGM_EXPORTER_ENABLE_EXPORTER_METRICS": "true"}
    )
    families = {f.name: f for f in text_string_to_metric_families(exporter.get("/metrics")[1].decode())}
    assert families["process_cpu_seconds"].type == "counter"  # the parser drops _total from a counter's name
    for name in ("process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
                 "process_max_fds", "process_start_time_seconds"):  # fmt: skip
        assert families[name].type == "gauge" and families[name].samples[0].value > 0, name
    resident = families["process_resident_memory_bytes"].samples[0].value
    assert families["process_virtual_memory_bytes"].samples[0].value > resident > 10_000_000
    assert "otel_fakegpu_cycles" in families and "DCGM_FI_DEV_GPU_TEMP" in families  # ours stay

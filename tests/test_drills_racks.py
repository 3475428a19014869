"""Racks through a real Prometheus: a rack's power-off takes exactly its hosts down within one scrape, power-on
brings them back as after a power cycle (volatile counters and energy restart, aggregate ones do not, no XID)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ExporterProcess, run_cli
from tests.drill_client import applied, control, up_by_instance, wait_until
from tests.prometheus_server import PrometheusServer

Factory = Callable[..., ExporterProcess]
JOB = "racks"
COLLECTORS = """\
DCGM_FI_DEV_GPU_TEMP, gauge, Temperature.
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION, counter, Energy since boot (mJ).
DCGM_FI_DEV_ECC_SBE_VOL_TOTAL, counter, Volatile single-bit ECC errors.
DCGM_FI_DEV_ECC_SBE_AGG_TOTAL, counter, Aggregate single-bit ECC errors.
DCGM_FI_DEV_XID_ERRORS, gauge, Last XID.
"""


def _scrape(sd_url: str) -> str:
    return (
        f"  - job_name: {JOB}\n    scrape_interval: 1s\n    scrape_timeout: 1s\n"
        f"    http_sd_configs:\n      - url: {sd_url}\n        refresh_interval: 2s\n"
    )


@pytest.mark.slow
def test_a_racks_power_loss_takes_down_exactly_its_hosts_and_power_on_reboots_them(
    tmp_path: Path, exporter_factory: Factory, prometheus: Callable[..., PrometheusServer]
) -> None:
    sock = tmp_path / "ctl.sock"
    collectors = tmp_path / "counters.csv"
    collectors.write_text(COLLECTORS)
    args = ("--uds", str(sock), "--hosts", "64", "--racks", "4", "--workers", "2", "--num-gpus", "1")
    exporter = exporter_factory(
        *args, "-f", str(collectors), "--seed", "1", "-c", "1000", env={"NODE_NAME": "node"}, uds=sock
    )
    groups = json.loads(exporter.get("/sd")[1])
    racks = {g["labels"]["instance"]: g["labels"]["rack"] for g in groups}
    rack2 = {host for host, rack in racks.items() if rack == "r2"}
    assert rack2 == {f"node-{i}" for i in range(32, 48)}, racks
    server = prometheus(_scrape(f"{exporter.base}/sd"))
    server.wait_ready()
    wait_until(lambda: len(up_by_instance(server, JOB)) == 64 and min(up_by_instance(server, JOB).values()) == 1.0)
    # Errors that the InfoROM keeps (aggregate) and the driver forgets at boot (volatile), on every GPU of r2.
    ecc = applied(sock, "/control/v1/events", {"hosts": {"rack": "r2"}, "event": {"ecc": {"sbe": 5}}})
    assert ecc["hosts"] == 16 and ecc["gpus"] == 16, ecc
    wait_until(lambda: server.scalar('min(DCGM_FI_DEV_ECC_SBE_AGG_TOTAL{rack="r2"})') == 5.0, what="ECC seen")
    energy_before = server.scalar('min(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{rack="r2"})')

    off = applied(sock, "/control/v1/events", {"hosts": {"rack": "r2"}, "event": {"power": "off"}})
    returned = time.time()
    assert sorted(t["host"] for t in off["targets"]) == sorted(rack2) and off["undoable"], off
    at = returned + 2.2  # one scrape interval, plus a scrape under way when the request returned
    # Every host scraped after `at`: Prometheus's answer for that moment is then final.
    newest = f'min(timestamp(up{{job="{JOB}"}}))'
    wait_until(lambda: (server.scalar(newest) or 0.0) > at, what="a scrape of every host after the power-off")
    down = {r["metric"]["instance"] for r in server.query(f'up{{job="{JOB}"}} == 0', at)}
    assert down == rack2, sorted(down ^ rack2)
    assert server.scalar(f'count(up{{job="{JOB}"}} == 1)') == 48.0
    status, state = control(sock, "GET", "/control/v1/hosts/node-40/state")
    assert status == 200 and state["host"]["powered"] is False and state["gpus"][0]["faults"]["powered_off"]

    on = applied(sock, "/control/v1/events", {"hosts": {"rack": "r2"}, "event": {"power": "on"}})
    assert not on["undoable"], on  # a reboot happened: it cannot be taken back
    wait_until(lambda: server.scalar(f'count(up{{job="{JOB}"}} == 1)') == 64.0, what="rack back")
    wait_until(lambda: server.scalar('count(DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{rack="r2"} == 0)') == 16.0, what="boot")
    assert server.scalar('min(DCGM_FI_DEV_ECC_SBE_AGG_TOTAL{rack="r2"})') == 5.0  # aggregate: kept
    assert server.scalar('max(DCGM_FI_DEV_XID_ERRORS{rack="r2"})') == 0.0  # a boot-time page has no XID
    energy_after = server.scalar('max(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{rack="r2"})')
    assert energy_before is not None and energy_after is not None and energy_after < energy_before
    assert server.scalar('sum(resets(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{rack="r2"}[1m]))') >= 16.0  # type: ignore[operator]
    assert server.scalar("sum(resets(DCGM_FI_DEV_ECC_SBE_AGG_TOTAL[1m]))") == 0.0


def test_a_scenarios_racks_name_the_hosts_and_its_host_events_follow_them(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    scenario = tmp_path / "racks.yaml"
    scenario.write_text(
        "hosts:\n  racks:\n    row-a: [node-0, node-3]\n    row-b: [node-1, node-2]\n"
        "events:\n  - {at: 0s, reachability: http_500, rack: row-b}\n"
    )
    sock = tmp_path / "ctl.sock"
    args = ("--uds", str(sock), "--hosts", "4", "--num-gpus", "1", "-c", "300", "--update-interval", "0.2")
    exporter = exporter_factory(*args, "--scenario", str(scenario), env={"NODE_NAME": "node"}, uds=sock)
    racks = {g["labels"]["instance"]: g["labels"]["rack"] for g in json.loads(exporter.get("/sd")[1])}
    assert racks == {"node-0": "row-a", "node-1": "row-b", "node-2": "row-b", "node-3": "row-a"}
    wait_until(lambda: [exporter.get(f"/hosts/node-{i}/metrics")[0] for i in range(4)] == [200, 500, 500, 200])
    status, listing = control(sock, "GET", "/control/v1/events?kind=reachability")
    assert status == 200 and sorted(t["host"] for e in listing["events"] for t in e["targets"]) == ["node-1", "node-2"]
    for racks_text, extra, says in [
        ("    row-a: [node-0, node-9]\n", (), "names 'node-9', not a host of this fleet"),
        ("    row-a: [node-0, node-1]\n", (), "host 'node-2' stands in no rack"),
        ("    row-a: [node-0, node-0]\n", (), "each in one rack only"),
        ("    row-a: [node-0, node-1, node-2, node-3]\n", ("--racks", "2"), "both set the racks"),
    ]:
        scenario.write_text("hosts:\n  racks:\n" + racks_text)
        done = run_cli("--check-config", "--hosts", "4", "--scenario", str(scenario), *extra, env={"NODE_NAME": "node"})
        assert done.returncode == 2 and says in done.stderr and done.stderr.count("\n") == 1, done.stderr

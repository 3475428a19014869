"""Fan-out, history and undo on a running exporter: a seeded fraction touches the same hosts every run and each
shows the event within one cycle; undo brings a fault's series back within one cycle; the history (scenario and
API events) survives SIGHUP; what cannot be undone answers 409, unknown ids 404, bad ones 400."""

from __future__ import annotations

import functools
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import ExporterProcess, uds_get
from tests.drill_client import applied, control, wait_until

Factory = Callable[..., ExporterProcess]
CYCLE_MS = 400
FAN_OUT = {"hosts": {"fraction": 0.05, "seed": 3}, "gpus": "all", "event": {"xid": 79}}


def _cycles(page: bytes) -> int:
    match = re.search(rb"^otel_fakegpu_cycles_total (\d+)$", page, re.M)
    assert match, page[:300]
    return int(match.group(1))


def _xid(page: bytes, gpu: int) -> bytes | None:
    match = re.search(rb'^DCGM_FI_DEV_XID_ERRORS\{gpu="%d",[^}]*\} (\S+)$' % gpu, page, re.M)
    return match.group(1) if match else None


def _host_page(sock: Path, host: str) -> bytes:
    return uds_get(sock, f"/hosts/{host}/metrics")[1]


def _page_when(fetch: Callable[[], bytes], holds: Callable[[bytes], bool]) -> bytes:
    """The first page ``fetch`` gives for which ``holds``."""
    found: list[bytes] = []

    def check() -> bool:
        page = fetch()
        if holds(page):
            found.append(page)
        return bool(found)

    wait_until(check)
    return found[0]


def _fleet(factory: Factory, tmp_path: Path) -> tuple[ExporterProcess, Path]:
    sock = tmp_path / "ctl.sock"
    args = ("--uds", str(sock), "--hosts", "64", "--workers", "2", "--num-gpus", "2", "-c", str(CYCLE_MS))
    return factory(*args, "--seed", "7", env={"NODE_NAME": "node"}, uds=sock), sock


def test_a_seeded_fan_out_touches_the_same_hosts_every_run_each_within_one_cycle(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    touched: list[list[str]] = []
    for run in range(2):
        exporter, sock = _fleet(exporter_factory, tmp_path / str(run))
        before = {h: _cycles(uds_get(sock, f"/hosts/{h}/metrics")[1]) for h in ("node-0", "node-1")}
        answer = applied(sock, "/control/v1/events", FAN_OUT)
        hosts = [t["host"] for t in answer["targets"]]
        assert answer["hosts"] == 3 and answer["gpus"] == 6 and answer["event"] == {"xid": 79}, answer
        touched.append(hosts)
        pages = {host: functools.partial(_host_page, sock, host) for host in hosts}
        published = {host: _cycles(page()) for host, page in pages.items()}
        for host, page in pages.items():  # every host it touched shows it, at most one cycle after the answer
            shown = _page_when(page, lambda p: _xid(p, 1) == b"79")
            assert _xid(shown, 0) == b"79" and _cycles(shown) <= published[host] + 2, host
        assert before  # the fleet was serving before the request
        exporter.close()
    assert touched[0] == touched[1], touched


def test_undo_history_and_what_cannot_be_undone(tmp_path: Path, exporter_factory: Factory) -> None:
    scenario = tmp_path / "drill.yaml"
    scenario.write_text("events:\n  - {at: 0s, gpu: 2, fault: power_brake}\n  - {at: 0s, reachability: ok}\n")
    sock = tmp_path / "ctl.sock"
    args = ("--uds", str(sock), "--num-gpus", "4", "--seed", "3", "-c", str(CYCLE_MS), "--update-interval", "0.2")
    exporter = exporter_factory(*args, "--scenario", str(scenario), uds=sock)
    off = applied(sock, "/control/v1/gpus/1/events", {"fault": "fall_off_bus"})
    xid = applied(sock, "/control/v1/gpus/0/events", {"xid": 48})
    wait_until(lambda: b'DCGM_FI_DEV_GPU_TEMP{gpu="1"' not in exporter.get("/metrics")[1], what="GPU 1 gone")
    published = _cycles(exporter.get("/metrics")[1])
    status, undone = control(sock, "DELETE", f"/control/v1/events/{off['id']}")
    assert status == 200 and undone["undone_at"] is not None, undone
    page = _page_when(lambda: exporter.get("/metrics")[1], lambda p: b'DCGM_FI_DEV_GPU_TEMP{gpu="1"' in p)
    assert _cycles(page) <= published + 2, "undo took more than one cycle to show"

    status, answer = control(sock, "DELETE", f"/control/v1/events/{xid['id']}")
    assert status == 409 and "cannot be undone" in answer["error"], answer
    status, answer = control(sock, "DELETE", f"/control/v1/events/{off['id']}")
    assert status == 409 and "already undone" in answer["error"], answer
    assert control(sock, "DELETE", "/control/v1/events/9999")[0] == 404
    assert control(sock, "DELETE", "/control/v1/events/first")[0] == 400
    assert control(sock, "GET", "/control/v1/events?gpu=x")[0] == 400

    exporter.proc.send_signal(signal.SIGHUP)

    def reloaded() -> Any:
        status, listing = control(sock, "GET", "/control/v1/events")
        assert status == 200, listing
        return listing if sum(e["source"] == "scenario" for e in listing["events"]) >= 4 else None

    listing = wait_until(reloaded, what="the scenario's events fired again by the reload")
    assert listing["dropped"] == 0
    events = listing["events"]
    scripted = [e for e in events if e["source"] == "scenario"]
    # The reload re-reads the scenario, whose times count from the reload: its events fired once more.
    assert [next(iter(e["event"])) for e in scripted] == ["fault", "reachability"] * 2, scripted
    assert [e["id"] for e in events if e["source"] == "api"] == [off["id"], xid["id"]]
    brake = next(e for e in scripted if e["event"] == {"fault": "power_brake"})
    assert brake["targets"] == [{"host": brake["targets"][0]["host"], "gpus": [2]}] and brake["undoable"]
    assert isinstance(brake["scenario_time_s"], float) and brake["wall_time"] > 1e9
    assert control(sock, "DELETE", f"/control/v1/events/{brake['id']}")[0] == 200
    status, state = control(sock, "GET", "/control/v1/state")
    assert state["gpus"][2]["faults"]["power_brake"] is False
    only_gpu0 = control(sock, "GET", "/control/v1/events?gpu=0&kind=xid")[1]["events"]
    assert [e["id"] for e in only_gpu0] == [xid["id"]]

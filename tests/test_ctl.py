"""``otel-fakegpu ctl`` against a running exporter: every control endpoint, human and --json output, the server's
errors as one line and exit 1, no server as one line and exit 2, TCP with the token from the environment."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ExporterProcess, run_cli

Factory = Callable[..., ExporterProcess]
TOKEN = "ctl-token"


def _ctl(sock: Path, *args: str) -> tuple[int, str, str]:
    done = run_cli("ctl", "--socket", str(sock), *args)
    return done.returncode, done.stdout, done.stderr


def _json(sock: Path, *args: str) -> object:
    code, out, err = _ctl(sock, "--json", *args)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.slow
def test_ctl_drives_every_endpoint_of_a_fleet(tmp_path: Path, exporter_factory: Factory) -> None:
    sock = tmp_path / "ctl.sock"
    args = ("--uds", str(sock), "--hosts", "4", "--racks", "2", "--workers", "2", "--num-gpus", "2", "-c", "500")
    exporter_factory(*args, env={"NODE_NAME": "vm"}, uds=sock)
    assert _json(sock, "hosts") == {"hosts": ["vm-0", "vm-1", "vm-2", "vm-3"]}
    code, out, _ = _ctl(sock, "state", "--host", "vm-3")
    assert code == 0 and out.startswith("scenario time") and "reachability ok, power on" in out, out

    code, out, _ = _ctl(sock, "xid", "--host", "vm-3", "--gpu", "1", "79")  # one GPU of one host: its own path
    assert code == 0 and '{"xid": 79}' in out and "on GPU 1" in out, out
    code, out, _ = _ctl(sock, "unreachable", "--rack", "r1", "timeout")
    assert code == 0 and "vm-2, vm-3" in out and "[undoable]" in out, out
    unreachable_id = out.split()[0]
    answer = _json(sock, "power", "off", "--host", "vm-0")  # one host, every GPU: the host's events path
    assert answer["targets"] == [{"host": "vm-0", "gpus": [0, 1]}], answer  # type: ignore[index]
    assert _json(sock, "power", "on", "--label", "instance=vm-0")["event"] == {"power": "on"}  # type: ignore[index]
    fabric = _json(sock, "fabric", "fail", "--fraction", "0.5", "--seed", "2")
    assert fabric["hosts"] == 2 and fabric["gpus"] == 4, fabric  # type: ignore[index]
    assert _json(sock, "cooling", "fail", "--host", "vm-1", "--host", "vm-2")["hosts"] == 2  # type: ignore[index]
    assert _json(sock, "event", '{"load": 0.5}', "--rack", "r0")["hosts"] == 2  # type: ignore[index]

    code, out, _ = _ctl(sock, "events", "--kind", "reachability")
    assert code == 0 and out.splitlines()[0].split()[0] == unreachable_id, out
    listing = _json(sock, "events", "--host", "vm-3", "--gpu", "1")
    assert [e["event"] for e in listing["events"]] == [{"xid": 79}], listing  # type: ignore[index]
    code, out, _ = _ctl(sock, "undo", unreachable_id)
    assert code == 0 and "[undone]" in out, out

    added = _json(sock, "workload", "add", "--host", "vm-1", "--pod", "train", "--gpus", "0,1", "--stop", "10m")
    assert added["key"] == "default/train/train", added  # type: ignore[index]
    code, out, _ = _ctl(sock, "workload", "rm", "default/train/train", "--host", "vm-1")
    assert code == 0 and "default/train/train" in out

    # The server's refusals: one line, exit 1.
    refused = (["undo", unreachable_id], ["xid", "--host", "nope", "13"], ["unreachable", "gone"], ["undo", "x1"])
    for bad in (*refused, ["fabric", "fail", "--gpu", "0"], ["xid", "--rack", "r7", "13"]):
        code, out, err = _ctl(sock, *bad)
        assert code == 1 and out == "" and err.count("\n") == 1 and "(HTTP 4" in err, (bad, err)
    # Bad arguments: one line, exit 2, nothing sent.
    for bad in (["xid", "--gpu", "two", "13"], ["event", "not json"], ["power", "sideways"], ["workload", "add"]):
        code, _, err = _ctl(sock, *bad)
        assert code == 2 and err.count("\n") == 1, (bad, err)


def test_ctl_over_tcp_with_the_token_and_without_a_server(tmp_path: Path, exporter_factory: Factory) -> None:
    exporter = exporter_factory("--num-gpus", "1", "--control-token", TOKEN)
    done = run_cli("ctl", "--url", exporter.base, "state", env={"OTEL_FAKEGPU_CONTROL_TOKEN": TOKEN})
    assert done.returncode == 0 and "GPU 0" in done.stdout, done.stderr
    done = run_cli("ctl", "--url", exporter.base, "state", env={"OTEL_FAKEGPU_CONTROL_TOKEN": "wrong"})
    assert done.returncode == 1 and "unauthorized (HTTP 401)" in done.stderr
    done = run_cli("ctl", "--url", exporter.base, "unreachable", "http_500", env={"OTEL_FAKEGPU_CONTROL_TOKEN": TOKEN})
    assert done.returncode == 0 and exporter.get("/metrics")[0] == 500
    done = run_cli("ctl", "--socket", str(tmp_path / "none.sock"), "events")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no control API at unix socket" in done.stderr
    done = run_cli("ctl", "--url", "http://127.0.0.1:9", "events")
    assert done.returncode == 2 and "no control API at http://127.0.0.1:9" in done.stderr

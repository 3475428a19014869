"""The live control API of the running exporter (a real process): over the Unix socket always, over TCP
only with the bearer token; each fault shows on /metrics within one cycle of the request returning."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import ExporterProcess, uds_get
from tests.pages import gpu_value
from tests.polling import wait_until

Factory = Callable[..., ExporterProcess]
TOKEN = "s3cret-token"
JSON = {"Content-Type": "application/json"}
CYCLE_MS = 300


def _uds_request(path: Path, method: str, url: str, body: object = None) -> tuple[int, dict[str, object]]:
    data = json.dumps(body).encode() if body is not None else None
    status, answer, _ = uds_get(path, url, JSON, method, data)
    return status, json.loads(answer or b"{}")


def _tcp_request(
    exporter: ExporterProcess, method: str, url: str, body: object = None, token: str | None = None, raw: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else raw or None
    request = urllib.request.Request(exporter.base + url, data=data, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _cycles(body: str) -> int:
    match = re.search(r"^otel_fakegpu_cycles_total (\d+)$", body, re.M)
    assert match, body[:500]
    return int(match.group(1))


def _shows_within_one_cycle(exporter: ExporterProcess, check: Callable[[str], bool], page: str = "/metrics") -> None:
    """After a request returned: at most the cycle already under way may miss the change (on ``page``)."""
    _, body, _ = exporter.get(page)
    published = _cycles(body.decode())

    def shown() -> bool:
        text = exporter.get(page)[1].decode()
        if check(text):
            assert _cycles(text) <= published + 2, "the change took more than one cycle to show"
            return True
        assert _cycles(text) < published + 2, "a cycle that started after the request does not show it"
        return False

    wait_until(shown, 60, f"the change to show on {page}", interval=CYCLE_MS / 4000)


def _start(factory: Factory, tmp_path: Path, *extra: str) -> tuple[ExporterProcess, Path]:
    sock = tmp_path / "ctl.sock"
    args = ("--uds", str(sock), "--num-gpus", "4", "--seed", "3", "-c", str(CYCLE_MS), "--update-interval", "0.2")
    return factory(*args, *extra, uds=sock), sock


def test_faults_over_the_unix_socket_show_within_one_cycle(tmp_path: Path, exporter_factory: Factory) -> None:
    exporter, sock = _start(exporter_factory, tmp_path)
    status, answer = _uds_request(sock, "POST", "/control/v1/gpus/0/events", {"xid": 48})
    assert status == 200 and answer["applied"] == {"xid": 48}, answer
    _shows_within_one_cycle(exporter, lambda text: gpu_value(text, "DCGM_FI_DEV_XID_ERRORS", 0) == "48")

    status, answer = _uds_request(sock, "POST", "/control/v1/gpus/1/events", {"fault": "fall_off_bus"})
    gpu_state: Any = answer["state"]  # the one GPU the event was applied to
    assert status == 200 and gpu_state["gpu"] == 1 and gpu_state["faults"]["off_bus"] is True, answer
    _shows_within_one_cycle(exporter, lambda text: gpu_value(text, "DCGM_FI_DEV_GPU_TEMP", 1) is None)
    text = exporter.get("/metrics")[1].decode()
    assert (
        gpu_value(text, "DCGM_FI_DEV_GPU_TEMP", 0) is not None and gpu_value(text, "DCGM_FI_DEV_POWER_USAGE", 1) is None
    )
    code, health, _ = uds_get(sock, "/health")
    report = json.loads(health)
    assert code == 200 and report["gpus_missing"] == [1] and report["status"] == "degraded", report
    status, state = _uds_request(sock, "GET", "/control/v1/state")
    assert status == 200 and state["gpus_missing"] == [1], state

    status, _ = _uds_request(sock, "POST", "/control/v1/gpus/1/events", {"fault": "recover"})
    assert status == 200
    _shows_within_one_cycle(exporter, lambda text: gpu_value(text, "DCGM_FI_DEV_GPU_TEMP", 1) is not None)
    assert json.loads(uds_get(sock, "/health")[1])["gpus_missing"] == []

    status, answer = _uds_request(sock, "POST", "/control/v1/gpus/2/events", {"load": 0.0})
    assert status == 200, answer
    _shows_within_one_cycle(exporter, lambda text: gpu_value(text, "DCGM_FI_DEV_GPU_UTIL", 2) == "0")


def test_workloads_start_and_stop_over_the_socket(tmp_path: Path, exporter_factory: Factory) -> None:
    exporter, sock = _start(exporter_factory, tmp_path)
    before = gpu_value(exporter.get("/metrics")[1].decode(), "DCGM_FI_DEV_GPU_UTIL", 3)
    assert before not in (None, "0")  # the static profile keeps it half busy
    spec = {"pod": "warmup", "namespace": "ml", "container": "torch", "gpus": [3], "shape": "idle"}
    status, answer = _uds_request(sock, "POST", "/control/v1/workloads", spec)
    assert status == 201 and answer["key"] == "ml/warmup/torch", answer
    _shows_within_one_cycle(exporter, lambda text: gpu_value(text, "DCGM_FI_DEV_GPU_UTIL", 3) == "0")
    assert _uds_request(sock, "POST", "/control/v1/workloads", spec)[0] == 400  # already placed
    state = _uds_request(sock, "GET", "/control/v1/state")[1]
    assert [w["key"] for w in state["workloads"]] == ["ml/warmup/torch"]  # type: ignore[attr-defined]
    status, answer = _uds_request(sock, "DELETE", "/control/v1/workloads/ml/warmup/torch")
    assert status == 200 and answer["gpus"] == [3], answer
    assert _uds_request(sock, "DELETE", "/control/v1/workloads/ml/warmup/torch")[0] == 404
    bad = [{"pod": "x", "gpus": [99]}, {"pod": "x", "gpus": [0], "shape": "sprint"}, {"gpus": [0]}, {"pod": "x"}]
    for body in bad:
        status, answer = _uds_request(sock, "POST", "/control/v1/workloads", body)
        assert status == 400 and "error" in answer, (body, answer)


def test_bad_requests_get_json_errors_and_the_exporter_keeps_going(tmp_path: Path, exporter_factory: Factory) -> None:
    exporter, sock = _start(exporter_factory, tmp_path)
    cases: list[tuple[str, str, object, int]] = [
        ("POST", "/control/v1/gpus/0/events", {"xid": "many"}, 400),
        ("POST", "/control/v1/gpus/0/events", {"meteor": 1}, 400),
        ("POST", "/control/v1/gpus/0/events", {"xid": 1, "load": 0.5}, 400),
        ("POST", "/control/v1/gpus/0/events", [1, 2], 400),
        ("POST", "/control/v1/gpus/0/events", {"fault": "explode"}, 400),
        ("POST", "/control/v1/gpus/0/events", {"load": 7}, 400),
        ("POST", "/control/v1/gpus/9/events", {"xid": 48}, 404),
        ("POST", "/control/v1/gpus/GPU-nope/events", {"xid": 48}, 404),
    ]
    for method, url, body, expected in cases:
        status, answer = _uds_request(sock, method, url, body)
        assert status == expected and isinstance(answer.get("error"), str), (body, status, answer)
    for raw in (b"{not json", b"[" * 30_000, b"\xff\xfe"):
        status, reply, _ = uds_get(sock, "/control/v1/gpus/0/events", JSON, "POST", raw)
        assert status == 400 and "error" in json.loads(reply), raw[:10]
    assert exporter.proc.poll() is None and exporter.get("/metrics")[0] == 200


def test_tcp_needs_the_token(tmp_path: Path, exporter_factory: Factory) -> None:
    exporter, _ = _start(exporter_factory, tmp_path, "--control-token", TOKEN)
    status, headers, _ = _tcp_request(exporter, "POST", "/control/v1/gpus/3/events", {"pcie_replay": 5})
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert _tcp_request(exporter, "GET", "/control/v1/state", token="wrong")[0] == 401
    assert _tcp_request(exporter, "GET", "/control/v1/state", token=TOKEN + "x")[0] == 401

    before = gpu_value(exporter.get("/metrics")[1].decode(), "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", 3)
    state = json.loads(_tcp_request(exporter, "GET", "/control/v1/state", token=TOKEN)[2])
    uuid = state["gpus"][3]["uuid"]
    status, _, body = _tcp_request(exporter, "POST", f"/control/v1/gpus/{uuid}/events", {"pcie_replay": 500}, TOKEN)
    assert status == 200, body
    _shows_within_one_cycle(
        exporter, lambda text: int(gpu_value(text, "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", 3) or 0) >= int(before or 0) + 500
    )
    status, _, body = _tcp_request(exporter, "POST", "/control/v1/gpus/0/events", {"xid": 13}, TOKEN)
    assert status == 200, body
    _shows_within_one_cycle(exporter, lambda text: gpu_value(text, "DCGM_FI_DEV_XID_ERRORS", 0) == "13")
    assert _tcp_request(exporter, "POST", "/control/v1/gpus/0/events", raw=b"[", token=TOKEN)[0] == 400


def test_tcp_without_a_configured_token_hides_the_api(tmp_path: Path, exporter_factory: Factory) -> None:
    exporter, sock = _start(exporter_factory, tmp_path)
    assert _tcp_request(exporter, "GET", "/control/v1/state")[0] == 404
    assert _tcp_request(exporter, "POST", "/control/v1/gpus/0/events", {"xid": 48}, token="anything")[0] == 404
    assert _uds_request(sock, "GET", "/control/v1/state")[0] == 200  # the socket still has it


def test_a_fleet_is_addressed_by_host_over_the_socket(tmp_path: Path, exporter_factory: Factory) -> None:
    exporter, sock = _start(exporter_factory, tmp_path, "--hosts", "3", "--workers", "2")
    status, answer = _uds_request(sock, "GET", "/control/v1/hosts")
    hosts = answer["hosts"]
    assert status == 200 and isinstance(hosts, list) and len(hosts) == 3, answer
    # Without a host, a fleet cannot know which one is meant: 400 naming the host-addressed form.
    for method, url in (("POST", "/control/v1/gpus/1/events"), ("GET", "/control/v1/state")):
        status, answer = _uds_request(sock, method, url, {"xid": 48} if method == "POST" else None)
        form = url.replace("/control/v1/", "/control/v1/hosts/{hostname}/")
        assert status == 400 and form in str(answer["error"]) and answer["hosts"] == hosts, answer
    target = hosts[1]
    status, answer = _uds_request(sock, "POST", f"/control/v1/hosts/{target}/gpus/1/events", {"xid": 48})
    assert status == 200 and answer["gpu"] == 1, answer

    page = f"/hosts/{target}/metrics"
    _shows_within_one_cycle(exporter, lambda text: gpu_value(text, "DCGM_FI_DEV_XID_ERRORS", 1) == "48", page)
    for host in hosts[0], hosts[2]:  # the other hosts' GPU 1 never saw it
        assert gpu_value(exporter.get(f"/hosts/{host}/metrics")[1].decode(), "DCGM_FI_DEV_XID_ERRORS", 1) == "0"
    spec = {"pod": "warmup", "namespace": "ml", "container": "torch", "gpus": [3], "shape": "idle"}
    other = hosts[2]
    assert _uds_request(sock, "POST", f"/control/v1/hosts/{other}/workloads", spec)[0] == 201
    state = _uds_request(sock, "GET", f"/control/v1/hosts/{other}/state")[1]
    assert [w["key"] for w in state["workloads"]] == ["ml/warmup/torch"]  # type: ignore[attr-defined]
    assert _uds_request(sock, "GET", f"/control/v1/hosts/{hosts[0]}/state")[1]["workloads"] == []
    assert _uds_request(sock, "DELETE", f"/control/v1/hosts/{other}/workloads/ml/warmup/torch")[0] == 200
    status, answer = _uds_request(sock, "GET", "/control/v1/hosts/no-such-node/state")
    assert status == 404 and "no-such-node" in str(answer["error"]), answer
    assert exporter.proc.poll() is None


def test_a_single_host_answers_both_forms(tmp_path: Path, exporter_factory: Factory) -> None:
    exporter, sock = _start(exporter_factory, tmp_path)
    hosts = _uds_request(sock, "GET", "/control/v1/hosts")[1]["hosts"]
    assert isinstance(hosts, list) and len(hosts) == 1
    assert _uds_request(sock, "GET", "/control/v1/state")[0] == 200
    status, answer = _uds_request(sock, "POST", f"/control/v1/hosts/{hosts[0]}/gpus/0/events", {"xid": 31})
    assert status == 200, answer
    _shows_within_one_cycle(exporter, lambda text: gpu_value(text, "DCGM_FI_DEV_XID_ERRORS", 0) == "31")

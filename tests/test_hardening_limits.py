"""Echoed input and names have limits: an error or log line quotes a short piece of a huge input, names that
would be labels or control-path segments are bounded and never hold '/', /sd never copies a malformed Host
header, and a push receiver refusing everything is logged once per outage, then counted."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
import time
from pathlib import Path

import pytest

from otel_fakegpu.cli import check
from otel_fakegpu.outputs.retry import RejectedError, RetryQueue
from otel_fakegpu.sim import Workload, WorkloadError
from otel_fakegpu.sim.simulator import _tally
from tests.receivers import wait_for
from tests.serving_harness import exchange, serving


def _check_error(argv: list[str], env: dict[str, str] | None = None) -> str:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert check(["-a", "127.0.0.1:0", *argv], env or {}) == 2
    return stderr.getvalue()


def test_an_error_quoting_a_huge_value_is_a_short_line(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("gpus:\n  - {count: 2, model: '" + "x" * 500_000 + "'}\n")
    error = _check_error(["--scenario", str(scenario)])
    assert error.count("\n") == 1 and len(error) < 1200, len(error)


def test_a_huge_node_name_is_refused_in_a_short_line() -> None:
    error = _check_error([], {"NODE_NAME": "n" * 7000})
    assert "NODE_NAME" in error and len(error) < 300, error[:300]
    assert "'/'" in _check_error([], {"NODE_NAME": "a/b"})


def test_the_start_log_names_profiles_once_not_per_gpu() -> None:
    assert _tally(["static"] * 65536) == "static x65536"
    assert _tally(["static", "bursty", "static"]) == "static x2, bursty"


@pytest.mark.parametrize(
    ("field", "value"),
    [("pod", "p" * 60_000), ("namespace", "a/b"), ("pod", "x/y"), ("container", "c d"), ("job_id", "j" * 300)],
)
def test_workload_names_are_bounded_and_never_hold_a_slash(field: str, value: str) -> None:
    names = {"pod": "p", "namespace": "n", "container": "c", field: value}
    with pytest.raises(WorkloadError) as info:
        Workload(gpus=(0,), **names)  # type: ignore[arg-type]
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("host", ['a"b', "x, y", "[::1]:99999", "h" * 300, "a b"])
def test_sd_never_copies_a_malformed_host_header(host: str) -> None:
    with serving() as server:
        reply = exchange(server, f"GET /sd HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(), 3)
        groups = json.loads(reply.split(b"\r\n\r\n", 1)[1])
        assert groups[0]["targets"] == [f"127.0.0.1:{server.port}"], groups


def test_sd_keeps_a_good_host_header() -> None:
    with serving() as server:
        for host in ("node-1.example:9400", "[::1]:9400", "10.0.0.7:9400"):
            reply = exchange(server, f"GET /sd HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(), 3)
            assert json.loads(reply.split(b"\r\n\r\n", 1)[1])[0]["targets"] == [host]


def test_a_receiver_refusing_everything_is_logged_once_then_counted(caplog: pytest.LogCaptureFixture) -> None:
    answers = ["rejected"] * 6 + ["ok"]
    delivered: list[int] = []

    def send(item: int) -> int:
        if answers.pop(0) == "rejected":
            raise RejectedError("POST http://push: HTTP 413 too large")
        delivered.append(item)
        return 0

    queue: RetryQueue[int] = RetryQueue("prometheus", send, lambda item: 10, 1000, backoff_s=(0.01, 0.01))
    for item in range(7):
        queue.put(item)
    stop = threading.Event()
    thread = threading.Thread(target=queue.run, args=(stop,))
    with caplog.at_level(logging.DEBUG):
        thread.start()
        wait_for(lambda: delivered == [6], timeout=10)
        stop.set()
        thread.join()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "HTTP 413" in errors[0].getMessage()
    assert any("accepts again after refusing 6" in r.getMessage() for r in caplog.records)
    assert dict(queue.view().dropped_by_reason)["rejected"] == 60  # every refusal still counted


def test_a_large_scenario_is_refused_before_parsing(tmp_path: Path) -> None:
    """The YAML is parsed whole before its values are checked: an 888 KB scenario took 9.5 s and 224 MB to refuse."""
    events = "".join(f"  - {{at: {i}s, gpu: 0, xid: 13}}\n" for i in range(27_000))
    scenario = tmp_path / "big.yaml"
    scenario.write_text("gpus:\n  - {count: 2, model: h100-sxm}\nevents:\n" + events)
    started = time.monotonic()
    error = _check_error(["--scenario", str(scenario)])
    assert "larger than" in error and time.monotonic() - started < 2.0, error


def test_binary_yaml_tags_are_refused(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("http_server_config:\n  headers:\n    X-A: !!binary aGVsbG8=\n")
    error = _check_error(["--web-config-file", str(web)])
    assert "!!binary is not accepted" in error and f"{web}:3" in error, error

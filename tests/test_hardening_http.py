"""The HTTP layer against hostile clients (the real application and listeners, in process): undecodable control
bodies are 400 without tracebacks, bodies announced and never sent cost one debug line, a body trickled a byte a
second is cut at the idle timeout like slow headers, ``Expect: 100-continue`` is answered after the access and size
checks, duplicate Authorization headers are refused, a dead worker is 503, and --check-config checks the socket
path as a start does."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ExporterProcess, run_cli, uds_get
from tests.receivers import wait_for
from tests.serving_harness import TOKEN, Server, exchange, serving

AUTH = f"Authorization: Bearer {TOKEN}\r\n".encode()
EVENT = b"POST /control/v1/gpus/0/events HTTP/1.1\r\nHost: x\r\n"
IDLE_S = 2.0


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def _tracebacks(server: Server) -> list[str]:
    return [f"{r.levelname} {r.getMessage()}" for r in server.errors()]


GZIPPED = gzip.compress(b'{"xid": 79}')
BAD_ENCODINGS = {
    "corrupt-gzip": ("gzip", GZIPPED[:12] + bytes([GZIPPED[12] ^ 0xFF]) + GZIPPED[13:]),
    "gzip-labelled-deflate": ("deflate", GZIPPED),
    "garbage-deflate": ("deflate", b"\x78\x9c\xff\xff"),
}


@pytest.mark.parametrize("case", sorted(BAD_ENCODINGS))
def test_an_undecodable_control_body_is_400_without_a_traceback(case: str) -> None:
    encoding, body = BAD_ENCODINGS[case]
    with serving() as server:
        request = EVENT + AUTH + f"Content-Encoding: {encoding}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        response = exchange(server, request, wait_s=3)
        assert _status(response) == 400 and b"cannot be decoded" in response, response[:200]
        assert not _tracebacks(server) and not server.control.calls


@pytest.mark.parametrize("auth", [AUTH, b""], ids=["tcp-authenticated", "tcp-no-token"])
def test_a_body_announced_and_never_sent_costs_no_error_log(auth: bytes) -> None:
    with serving() as server:
        for _ in range(20):
            with server.connect() as sock:
                sock.sendall(EVENT + auth + b"Content-Length: 10485760\r\n\r\n" + b'{"xid"')
                time.sleep(0.02)  # the client goes away mid-body, after the server has read the headers
        time.sleep(0.5)  # deliberate: nothing must be logged, and no event says the server is done (it logs nothing)
        assert not _tracebacks(server) and not server.control.calls


def _trickle(server: Server, head: bytes, limit_s: float) -> float | None:
    """Send ``head`` and then a byte a second; the seconds until the server closed, None if it did not."""
    with server.connect() as sock:
        sock.sendall(head)
        started = time.monotonic()
        sock.settimeout(1.0)
        while time.monotonic() - started < limit_s:
            try:
                if sock.recv(65536) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                pass
            except OSError:  # reset: closed with the body unread
                return time.monotonic() - started
            try:
                sock.sendall(b" ")
            except OSError:
                return time.monotonic() - started
        return None


@pytest.mark.parametrize(
    "head",
    [
        EVENT + AUTH + b"Content-Length: 1000\r\n\r\n",
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
    ],
    ids=["control", "post-metrics"],
)
def test_a_trickled_body_is_cut_at_the_idle_timeout(head: bytes) -> None:
    with serving(idle_timeout_s=IDLE_S) as server:
        closed_after = _trickle(server, head, limit_s=IDLE_S + 6)
        assert closed_after is not None and closed_after < IDLE_S + 4, closed_after
        assert not server.control.calls


def test_expect_100_continue_comes_after_the_access_and_size_checks() -> None:
    with serving() as server:
        head = EVENT + b"Expect: 100-continue\r\n"
        wrong = exchange(server, head + b"Authorization: Bearer nope\r\nContent-Length: 99999999\r\n\r\n", 2)
        assert wrong.startswith(b"HTTP/1.1 401") and b"100 Continue" not in wrong, wrong[:100]
        large = exchange(server, head + AUTH + b"Content-Length: 99999999\r\n\r\n", 2)
        assert large.startswith(b"HTTP/1.1 413") and b"100 Continue" not in large, large[:100]
        with server.connect() as sock:  # a fine request is invited, then answered
            sock.sendall(head + AUTH + b"Content-Length: 11\r\nConnection: close\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
            sock.sendall(b'{"xid": 79}')
            assert b"HTTP/1.1 200" in sock.recv(1000)


def test_duplicate_authorization_headers_are_refused() -> None:
    with serving() as server:
        body = b'{"xid": 79}'
        twice = EVENT + AUTH + b"Authorization: Bearer other\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode()
        assert _status(exchange(server, twice + body, 2)) == 401
        assert (
            _status(exchange(server, EVENT + AUTH + AUTH + f"Content-Length: {len(body)}\r\n\r\n".encode() + body, 2))
            == 401
        )
        assert not server.control.calls


@pytest.mark.parametrize("token", ["", " ", "a b", "tab\tin"])
def test_a_token_that_can_never_match_is_refused_at_start(token: str) -> None:
    result = run_cli("--check-config", "--control-token", token)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("kind", ["regular-file", "too-long"])
def test_check_config_refuses_a_socket_path_a_start_would(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "metrics.sock" if kind == "regular-file" else tmp_path / ("s" * 120)
    if kind == "regular-file":
        path.write_text("keep me\n")
    for check in (["--check-config"], []):
        result = run_cli(*check, "-a", "127.0.0.1:0", "--uds", str(path), timeout=60)
        assert result.returncode == 2, (check, result.stderr)
    assert kind != "regular-file" or path.read_text() == "keep me\n"


def test_a_killed_worker_makes_control_requests_503_not_500(
    tmp_path: Path, exporter_factory: Callable[..., ExporterProcess]
) -> None:
    sock = tmp_path / "m.sock"
    exporter = exporter_factory("--hosts", "2", "--workers", "2", "--uds", str(sock), "-c", "200", uds=sock)
    hosts = json.loads(uds_get(sock, "/control/v1/hosts")[1])["hosts"]
    os.kill(json.loads(uds_get(sock, "/health")[1])["workers"][0]["pid"], signal.SIGKILL)
    statuses = set()
    for _ in range(30):
        for host in hosts:
            conn = socket.socket(socket.AF_UNIX)
            conn.settimeout(15)
            conn.connect(str(sock))
            body = b'{"xid": 79}'
            conn.sendall(
                f"POST /control/v1/hosts/{host}/gpus/0/events HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
            conn.close()
            statuses.add(_status(reply))
        time.sleep(0.02)  # deliberate: the 30 rounds span the worker's death and restart
    assert 500 not in statuses and 503 in statuses, statuses
    assert "Traceback" not in exporter.stderr_text()
    wait_for(lambda: all(w["alive"] for w in json.loads(uds_get(sock, "/health")[1])["workers"]), timeout=60)

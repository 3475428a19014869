"""Who gets ``Connection: close`` on the Unix socket: the seed's read-until-close consumer does, keep-alive clients
(curl, http.client, Go-style and requests-style header sets) keep their connection."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from otel_fakegpu.serve.uds import closes_after_response
from tests.conftest import ExporterProcess, UnixHTTPConnection

Factory = Callable[..., ExporterProcess]

# Seed 000, "4. Consumer uses UDS", verbatim; only the socket path is put in by the test.
SEED_CONSUMER = """
import socket

def read_metrics_uds():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect('/tmp/dcgm-metrics/metrics.sock')

    # Send HTTP request
    sock.sendall(b'GET /metrics HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n')

    # Read response
    response = b''
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        response += chunk

    sock.close()

    # Extract body (skip HTTP headers)
    body = response.split(b'\\r\\n\\r\\n', 1)[1]
    return body.decode('utf-8')

metrics = read_metrics_uds()
"""

GO_REQUEST = (
    b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
)
REQUESTS_REQUEST = (
    b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: python-requests/2.32.3\r\n"
    b"Accept-Encoding: identity\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n"
)


@pytest.mark.parametrize(
    ("version", "headers", "connection", "closes"),
    [
        ((1, 1), ["Host"], None, True),  # the seed's consumer
        ((1, 1), [], None, True),
        ((1, 1), ["Host", "Connection"], "keep-alive", False),
        ((1, 1), ["Host", "User-Agent", "Accept"], None, False),  # curl
        ((1, 1), ["Host", "Accept-Encoding"], None, False),  # http.client
        ((1, 1), ["Host", "User-Agent", "Accept-Encoding"], None, False),  # Go net/http
        ((1, 1), ["Host", "User-Agent", "Connection"], "close", True),
        ((1, 0), ["Host", "User-Agent"], None, True),
        ((1, 0), ["Host", "Connection"], "keep-alive", False),
    ],
)
def test_close_rule(version: tuple[int, int], headers: list[str], connection: str | None, closes: bool) -> None:
    assert closes_after_response(version, headers, connection) is closes


@pytest.fixture
def socket_exporter(tmp_path: Path, exporter_factory: Factory) -> Path:
    path = tmp_path / "metrics.sock"
    exporter_factory("--uds", str(path), "-c", "600000", uds=path)
    return path


def test_seed_consumer_as_written_returns_within_a_second(socket_exporter: Path) -> None:
    code = SEED_CONSUMER.replace("/tmp/dcgm-metrics/metrics.sock", str(socket_exporter))
    namespace: dict[str, object] = {}
    started = time.monotonic()
    exec(compile(code, "seed-000-consumer", "exec"), namespace)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"the read-until-close consumer waited {elapsed:.2f} s for the close"
    metrics = namespace["metrics"]
    assert isinstance(metrics, str) and "DCGM_FI_DEV_GPU_TEMP{" in metrics


def test_a_streamed_page_says_it_closes(tmp_path: Path, exporter_factory: Factory) -> None:
    """Above 1 MiB the body is streamed, its headers sent before the handler returns: they must still announce
    the close, or an HTTP/1.1 client reading by Content-Length sends its next request into a closed socket."""
    path = tmp_path / "metrics.sock"
    exporter_factory("--uds", str(path), "--num-gpus", "256", "-c", "600000", uds=path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(10)
        raw.connect(str(path))
        raw.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        response = b""
        while chunk := raw.recv(1 << 20):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert len(body) > 1 << 20 and f"Content-Length: {len(body)}".encode() in head
    assert b"Connection: close" in head


def _two_requests_on_one_socket(path: Path, request: bytes) -> list[bytes]:
    """Send ``request`` twice on one connection; return both heads (raises if the server closed in between)."""
    heads = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(10)
        raw.connect(str(path))
        buffer = b""
        for _ in range(2):
            raw.sendall(request)
            while b"\r\n\r\n" not in buffer:
                chunk = raw.recv(65536)
                assert chunk, "the server closed a keep-alive connection"
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            while len(buffer) < length:
                chunk = raw.recv(65536)
                assert chunk, "the server closed mid-body"
                buffer += chunk
            buffer = buffer[length:]
            heads.append(head)
    return heads


@pytest.mark.parametrize("request_bytes", [GO_REQUEST, REQUESTS_REQUEST], ids=["go-net-http", "requests"])
def test_library_header_sets_keep_the_connection(socket_exporter: Path, request_bytes: bytes) -> None:
    for head in _two_requests_on_one_socket(socket_exporter, request_bytes):
        assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" not in head


def test_http_client_reuses_its_connection(socket_exporter: Path) -> None:
    conn = UnixHTTPConnection(socket_exporter)
    try:
        conn.request("GET", "/metrics")
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        conn.request("GET", "/health")
        second = conn.getresponse()
        second.read()
        assert first.status == second.status == 200
        assert conn.sock is sock and first.getheader("Connection") is None  # the same connection, kept
    finally:
        conn.close()


def test_curl_reuses_its_connection(socket_exporter: Path) -> None:
    url = "http://localhost/metrics"
    result = subprocess.run(
        ["curl", "-sS", "-v", "-o", "/dev/null", "-o", "/dev/null", "--unix-socket", str(socket_exporter), url, url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert re.search(r"(?i)re-?using existing connection", result.stderr), result.stderr

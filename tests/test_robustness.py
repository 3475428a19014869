"""Bad clients cannot hurt the server: idle and slow connections, garbage, oversized headers, odd
methods, half-closed connections and clients that leave mid-response."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.conftest import ExporterProcess, uds_get

Factory = Callable[..., ExporterProcess]


@pytest.fixture
def served(tmp_path: Path, exporter_factory: Factory) -> ExporterProcess:
    path = tmp_path / "m.sock"
    return exporter_factory("--uds", str(path), "-c", "500", "--idle-timeout", "2", uds=path)


def _tcp(exporter: ExporterProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", exporter.port), timeout=10)
    return sock


def _unix(exporter: ExporterProcess) -> socket.socket:
    assert exporter.uds is not None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(exporter.uds))
    return sock


@contextmanager
def _held_open(
    count: int, opener: Callable[[], socket.socket], first_bytes: bytes = b""
) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        socks = []
        for _ in range(count):
            sock = stack.enter_context(opener())
            if first_bytes:
                sock.sendall(first_bytes)
            socks.append(sock)
        yield socks


def _scrape_both(exporter: ExporterProcess, count: int) -> list[float]:
    def one(i: int) -> float:
        started = time.monotonic()
        if i % 2:
            assert exporter.uds is not None
            status = uds_get(exporter.uds, "/metrics")[0]
        else:
            status = exporter.get("/metrics")[0]
        assert status == 200
        return time.monotonic() - started

    with ThreadPoolExecutor(max_workers=20) as pool:
        return list(pool.map(one, range(2 * count)))


def test_idle_and_slowloris_connections_do_not_delay_scrapes(served: ExporterProcess) -> None:
    slow_header = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "  # never finished
    with (
        _held_open(100, lambda: _tcp(served)),
        _held_open(100, lambda: _unix(served)),
        _held_open(20, lambda: _tcp(served), slow_header),
        _held_open(20, lambda: _unix(served), slow_header),
    ):
        durations = _scrape_both(served, 50)  # 50 over each transport
    assert len(durations) == 100
    assert max(durations) < 2.0, max(durations)


def test_a_burst_of_connects_while_the_server_is_busy_is_queued_not_refused(served: ExporterProcess) -> None:
    """A Unix socket refuses a connect outright (EAGAIN) once the listen backlog is full, so a stalled event
    loop (here: the whole process stopped) must not turn a burst of scrapers into connection errors."""
    burst = 400  # well above aiohttp's default backlog of 128
    served.proc.send_signal(signal.SIGSTOP)
    try:
        socks = [_unix(served) for _ in range(burst)]
    finally:
        served.proc.send_signal(signal.SIGCONT)
    with ExitStack() as stack:
        for sock in socks:
            stack.enter_context(sock)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for sock in socks:
            assert sock.recv(64).startswith(b"HTTP/1.1 200")


def test_connections_that_never_finish_a_request_are_closed(served: ExporterProcess) -> None:
    for opener in (_tcp, _unix):
        with opener(served) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            sock.settimeout(10)
            started = time.monotonic()
            assert sock.recv(1024) == b""  # closed by the server ...
            assert time.monotonic() - started < 8  # ... after the 2 s idle timeout, not never


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\xff\x16\x03\x01garbage\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(500)) + b"\r\n",
        b"BREW /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET " + b"/a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\nshort",
    ],
    ids=["garbage", "huge-header", "many-headers", "odd-method", "bad-version", "long-url", "lying-body"],
)
def test_malformed_requests_get_an_error_or_a_close_never_a_crash(served: ExporterProcess, payload: bytes) -> None:
    for opener in (_tcp, _unix):
        with opener(served) as sock:  # the whole bad request, then wait for the verdict
            sock.sendall(payload)
            reply = sock.recv(4096)
            assert reply.startswith((b"HTTP/1.0 4", b"HTTP/1.1 4")), reply[:80]
        with opener(served) as sock:  # the same, half-closed straight away: the server may just close
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                reply = sock.recv(4096)
            except (ConnectionResetError, BrokenPipeError):
                reply = b""
            assert reply == b"" or reply.startswith((b"HTTP/1.0 4", b"HTTP/1.1 4"))
        assert served.proc.poll() is None
        assert served.get("/metrics")[0] == 200
    # Client mistakes are not the exporter's errors: at most one debug line each, never a traceback.
    assert "Traceback" not in served.stderr_text()


def test_clients_leaving_mid_response_cost_nothing(tmp_path: Path, exporter_factory: Factory) -> None:
    path = tmp_path / "big.sock"
    exporter = exporter_factory("--uds", str(path), "--num-gpus", "512", uds=path)
    for _ in range(30):
        for opener in (_tcp, _unix):
            with opener(exporter) as sock:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(1024).startswith(b"HTTP/1.1 200")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    half_closed = [_tcp(exporter) for _ in range(20)]
    for sock in half_closed:
        sock.shutdown(socket.SHUT_WR)
    assert exporter.get("/metrics")[0] == 200
    assert uds_get(path, "/health")[0] == 200
    for sock in half_closed:
        sock.close()
    assert exporter.proc.poll() is None
    assert "Traceback" not in exporter.stderr_text()

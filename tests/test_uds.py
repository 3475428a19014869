"""The Unix socket: same bytes as TCP, plain socket clients, keep-alive, permissions, stale and foreign paths."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ExporterProcess, UnixHTTPConnection, run_cli, uds_get

Factory = Callable[..., ExporterProcess]


def _sock_path(tmp_path: Path) -> Path:
    return tmp_path / "run" / "dcgm" / "metrics.sock"  # parent folders do not exist yet


def test_curl_over_the_socket_returns_the_same_cycle_as_tcp(tmp_path: Path, exporter_factory: Factory) -> None:
    path = _sock_path(tmp_path)
    exporter = exporter_factory("--uds", str(path), "-c", "600000", uds=path)
    curl = subprocess.run(
        ["curl", "-sS", "--unix-socket", str(path), "http://localhost/metrics"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    status, tcp_body, _ = exporter.get("/metrics")
    assert status == 200
    assert curl.stdout == tcp_body  # one cycle, one rendering, served to both transports
    families = {f.name for f in text_string_to_metric_families(curl.stdout.decode())}
    assert "DCGM_FI_DEV_GPU_TEMP" in families


def test_plain_socket_client_keep_alive_head_health_and_index(tmp_path: Path, exporter_factory: Factory) -> None:
    path = _sock_path(tmp_path)
    exporter_factory("--uds", str(path), uds=path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:  # the seed's consumer example
        raw.settimeout(10)
        raw.connect(str(path))
        raw.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := raw.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"DCGM_FI_DEV_GPU_UTIL{" in body

    conn = UnixHTTPConnection(path)  # several requests on one kept-alive connection
    try:
        for method, url, code in (("GET", "/metrics", 200), ("HEAD", "/metrics", 200), ("GET", "/health", 200)):
            conn.request(method, url)
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == code
            assert (data == b"") == (method == "HEAD")
        assert conn.sock is not None  # never reconnected
    finally:
        conn.close()
    assert b"/metrics" in uds_get(path, "/")[1]
    assert uds_get(path, "/nope")[0] == 404


def test_socket_mode_defaults_to_0660_and_follows_flags(tmp_path: Path, exporter_factory: Factory) -> None:
    default = _sock_path(tmp_path)
    exporter_factory("--uds", str(default), uds=default)
    assert stat.S_IMODE(os.stat(default).st_mode) == 0o660
    assert stat.S_ISSOCK(os.stat(default).st_mode)
    opened = tmp_path / "open.sock"
    exporter_factory("--uds", str(opened), "--uds-mode", "0666", "--uds-group", str(os.getgid()), uds=opened)
    info = os.stat(opened)
    assert stat.S_IMODE(info.st_mode) == 0o666 and info.st_gid == os.getgid()


def test_env_variables_of_the_seed_enable_the_socket(tmp_path: Path, exporter_factory: Factory) -> None:
    path = _sock_path(tmp_path)
    exporter_factory(env={"ENABLE_UDS": "true", "UDS_SOCKET_PATH": str(path)}, uds=path)
    assert uds_get(path, "/metrics")[0] == 200


def test_stale_socket_is_replaced_and_removed_on_clean_exit(tmp_path: Path, exporter_factory: Factory) -> None:
    path = tmp_path / "stale.sock"
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(path))  # bound, never listening, then gone: what a crash leaves behind
    leftover.close()
    assert path.exists()
    exporter = exporter_factory("--uds", str(path), uds=path)
    assert uds_get(path, "/metrics")[0] == 200
    exporter.proc.send_signal(signal.SIGTERM)
    assert exporter.proc.wait(timeout=20) == 0
    assert not path.exists()


def test_refuses_a_path_that_is_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "metrics.sock"
    path.write_text("precious data\n")
    result = run_cli("-a", "", "--uds", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(f"{path}: exists and is not a socket; refusing to remove it")
    assert "Traceback" not in result.stderr
    assert path.read_text() == "precious data\n"


def test_refuses_a_socket_another_process_serves(tmp_path: Path, exporter_factory: Factory) -> None:
    path = tmp_path / "busy.sock"
    exporter_factory("--uds", str(path), uds=path)
    result = run_cli("-a", "", "--uds", str(path))
    assert result.returncode == 2 and "another process is serving on this socket" in result.stderr
    assert uds_get(path, "/metrics")[0] == 200  # the first exporter was not disturbed


def test_too_long_path_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / ("x" * 120) / "m.sock"
    result = run_cli("-a", "", "--uds", str(path))
    assert result.returncode == 2 and "socket path longer than 107 bytes" in result.stderr
    assert "Traceback" not in result.stderr


def test_uds_only_and_nothing_to_serve(tmp_path: Path, exporter_factory: Factory) -> None:
    path = tmp_path / "only.sock"
    exporter = exporter_factory("--uds", str(path), address="", uds=path)
    assert uds_get(path, "/health")[0] == 200
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", exporter.port)) != 0  # no TCP listener
    result = run_cli("-a", "")
    assert result.returncode == 2
    assert "nothing to serve" in result.stderr and result.stderr.count("\n") == 1

"""The fake kubelet is a tool users run: it removes only a stale socket (never a regular file), and every bad
input (a device, FIFO, oversized or deeply nested pods file, a socket path that is a directory or too long, a
delay that is not a number of seconds) is one line and exit 2, at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from otel_fakegpu.attribution.fakekubelet import load_pods
from otel_fakegpu.attribution.limits import MAX_PODS_FILE_BYTES
from tests.conftest import exporter_env

PODS = (
    "- {name: p, namespace: n, containers: [{name: c, devices: [{resource_name: nvidia.com/gpu, device_ids: [x]}]}]}\n"
)
EXIT_LIMIT_S = 20


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otel_fakegpu.attribution.fakekubelet", *args],
        capture_output=True, text=True, timeout=EXIT_LIMIT_S, env=exporter_env(), check=False,
    )  # fmt: skip


def _one_line_exit_2(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0]


def test_a_regular_file_as_the_socket_is_never_removed(tmp_path: Path) -> None:
    pods, victim = tmp_path / "pods.yaml", tmp_path / "victim.txt"
    pods.write_text(PODS)
    victim.write_text("precious\n")
    assert "not a socket" in _one_line_exit_2(_run("--socket", str(victim), "--pods", str(pods)))
    assert victim.read_text() == "precious\n"


def test_a_live_socket_is_not_taken_over_and_a_stale_one_is_replaced(tmp_path: Path) -> None:
    pods, path = tmp_path / "pods.yaml", tmp_path / "k.sock"
    pods.write_text(PODS)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(str(path))
        live.listen()
        assert "another process" in _one_line_exit_2(_run("--socket", str(path), "--pods", str(pods)))
    assert path.exists()  # closed without unlinking: a stale socket, which a new fake kubelet replaces
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_fakegpu.attribution.fakekubelet", "--socket", str(path), "--pods", str(pods)],
        stderr=subprocess.PIPE, env=exporter_env(),
    )  # fmt: skip
    try:
        assert proc.stderr is not None and "pod-resources v1" in proc.stderr.readline().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _pods_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "pods"
    if kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "oversized":
        path.write_text("#" * (MAX_PODS_FILE_BYTES + 1))
    elif kind == "nested":
        path.write_text("[" * 200_000 + "]" * 200_000)
    elif kind == "not-a-list":
        path.write_text("42\n")
    elif kind == "binary":
        path.write_text("pod_resources: !!binary aGVsbG8=\n")
    return path


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "oversized", "nested", "not-a-list", "binary"])
def test_a_bad_pods_file_is_one_line_exit_2(tmp_path: Path, kind: str) -> None:
    pods = _pods_file(tmp_path, kind)
    line = _one_line_exit_2(_run("--socket", str(tmp_path / "k.sock"), "--pods", str(pods)))
    assert str(pods) in line and len(line) < 600, line
    with pytest.raises(ValueError, match=str(pods)):
        load_pods(pods)


@pytest.mark.parametrize("socket_kind", ["directory", "too-long"])
def test_a_bad_socket_path_is_one_line_exit_2(tmp_path: Path, socket_kind: str) -> None:
    pods = tmp_path / "pods.yaml"
    pods.write_text(PODS)
    where = tmp_path / "dir" if socket_kind == "directory" else tmp_path / ("s" * 120)
    if socket_kind == "directory":
        where.mkdir()
    _one_line_exit_2(_run("--socket", str(where), "--pods", str(pods)))
    assert socket_kind != "directory" or where.is_dir()


@pytest.mark.parametrize("delay", ["nan", "inf", "-1", "1e9"])
def test_a_delay_that_is_not_seconds_is_refused(tmp_path: Path, delay: str) -> None:
    pods = tmp_path / "pods.yaml"
    pods.write_text(PODS)
    result = _run("--socket", str(tmp_path / "k.sock"), "--pods", str(pods), f"--delay={delay}")
    assert result.returncode == 2 and "--delay" in result.stderr and "Traceback" not in result.stderr

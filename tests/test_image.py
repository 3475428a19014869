"""The image built by `make image-test` (tools/image-build.sh: buildah, no Docker engine), run through its own
entrypoint with `buildah run`: /metrics and /health over TCP, the Unix socket in its volume, the HEALTHCHECK
command, the non-root user. Skipped unless OTEL_FAKEGPU_TEST_IMAGE names the built image."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import free_port, http_get
from tests.polling import wait_until

IMAGE = os.environ.get("OTEL_FAKEGPU_TEST_IMAGE", "")
pytestmark = pytest.mark.skipif(not IMAGE, reason="the image is built and run by `make image-test`")
BUILDAH_ENV = {**os.environ, "BUILDAH_ISOLATION": "chroot", "STORAGE_DRIVER": os.environ.get("STORAGE_DRIVER", "vfs")}


def buildah(*args: str) -> str:
    result = subprocess.run(["buildah", *args], capture_output=True, text=True, env=BUILDAH_ENV, check=False)
    assert result.returncode == 0, f"buildah {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def image_config() -> dict[str, object]:
    config: dict[str, object] = json.loads(buildah("inspect", "--type", "image", IMAGE))["Docker"]["config"]
    return config


# buildah (1.28) resolves the image's VOLUME /var/run/dcgm through the absolute link /var/run -> /run on the
# host and creates the host's /run/dcgm, root-owned; podman then gives a new volume at /var/run/dcgm that
# directory's owner instead of the image's, and the compose demo's exporter (uid 10001) cannot bind its socket.
HOST_SOCKET_DIR = "/run/dcgm"


@pytest.fixture
def container() -> Iterator[str]:
    host_dir_existed = os.path.lexists(HOST_SOCKET_DIR)
    name = buildah("from", "--quiet", IMAGE)
    try:
        yield name
    finally:
        buildah("rm", name)
        if not host_dir_existed and os.path.isdir(HOST_SOCKET_DIR) and not os.listdir(HOST_SOCKET_DIR):
            os.rmdir(HOST_SOCKET_DIR)  # what buildah made on the host is not the test's to leave behind


def run_in(container: str, env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    flags = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    return subprocess.run(
        ["buildah", "run", "--isolation", "chroot", *flags, container, "--", *command],
        capture_output=True, text=True, env=BUILDAH_ENV, timeout=60, check=False,
    )  # fmt: skip


def wait_for_metrics(port: int, proc: subprocess.Popen[bytes]) -> bytes:
    def served() -> bytes | None:
        assert proc.poll() is None, f"the container exited with {proc.returncode}"
        status, body, _ = http_get(f"http://127.0.0.1:{port}/metrics", timeout=2)
        return body if status == 200 else None

    return wait_until(served, 120, "the container to serve /metrics", interval=0.2, ignore=(OSError,))


def descendants(pid: int) -> list[int]:
    """The exporter's main process below ``pid`` (inside the container), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    exporters = [p for p in found if is_exporter(p)]
    # The serving process, not its forked collection workers (they share its command line).
    return [p for p in exporters if not any(p in children.get(parent, []) for parent in exporters)]


def is_exporter(pid: int) -> bool:
    """The venv's Python running the otel-fakegpu script (not buildah's helpers, whose arguments name it too)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = cmdline.read().split(b"\0")
    except OSError:
        return False
    return len(argv) > 1 and b"python" in argv[0].rsplit(b"/", 1)[-1] and argv[1].endswith(b"/otel-fakegpu")


SOCKET_CLIENT = """
import socket
s = socket.socket(socket.AF_UNIX)
s.connect("/var/run/dcgm/metrics.sock")
s.sendall(b"GET /health HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
print(s.makefile("rb").readline().decode().strip())
"""


def test_image_runs_its_entrypoint_and_serves(container: str) -> None:
    config = image_config()
    entrypoint = [str(part) for part in config["Entrypoint"]]  # type: ignore[attr-defined]
    healthcheck = [str(part) for part in config["Healthcheck"]["Test"]]  # type: ignore[index]
    assert config["User"] == "10001:10001"
    assert healthcheck[0] == "CMD" and "curl" not in " ".join(healthcheck)
    port = free_port()
    env = {"DCGM_EXPORTER_LISTEN": f"127.0.0.1:{port}", "DCGM_EXPORTER_INTERVAL": "1000", "NODE_NAME": "image-test"}
    flags = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    proc = subprocess.Popen(
        ["buildah", "run", "--isolation", "chroot", *flags, container, "--", *entrypoint],
        env=BUILDAH_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        body = wait_for_metrics(port, proc).decode()
        temps = [line for line in body.splitlines() if line.startswith("DCGM_FI_DEV_GPU_TEMP{")]
        assert len(temps) == 4, body[:2000]  # the image's NUM_FAKE_GPUS=4
        assert all('Hostname="image-test"' in line for line in temps)
        status, health, _ = http_get(f"http://127.0.0.1:{port}/health")
        assert status == 200 and json.loads(health)["status"] == "healthy"
        # The image's own HEALTHCHECK command, its Unix socket in the volume, and the user it runs as.
        assert run_in(container, env, *healthcheck[1:]).returncode == 0
        socket_answer = run_in(container, env, "python3", "-c", SOCKET_CLIENT)
        assert socket_answer.stdout.strip() == "HTTP/1.1 200 OK", socket_answer.stderr
        uid = run_in(container, env, "python3", "-c", "import os; print(os.getuid())")
        assert uid.stdout.strip() == "10001"
    finally:
        # buildah answers SIGTERM by killing its child; the container's stop signal goes to the exporter itself.
        exporters = descendants(proc.pid)
        assert len(exporters) == 1, exporters
        os.kill(exporters[0], signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 0, stderr
    assert "shutting down" in stderr and "Traceback" not in stderr, stderr
    # The healthcheck fails once nothing answers.
    assert run_in(container, env, *healthcheck[1:]).returncode != 0

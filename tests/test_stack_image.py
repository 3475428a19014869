"""The image run as Kubernetes runs it, in a real container engine (podman with runc): the DaemonSet's own container
spec (deploy/kubernetes/daemonset.yaml: args, env, probes, securityContext, volumes, limits) is translated to
`podman run` flags, its init container prepares the socket volume, and then: /metrics and /health on the
published port, the image's HEALTHCHECK, SIGTERM, and the Unix socket's group permission for other containers.
Run by `make stack-test` (tools/stack/run.sh), skipped elsewhere."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_port, http_get
from tests.stack_engine import IMAGE, PREFIX, ROOT, podman, report, skip_unless_stack, wait_for

pytestmark = skip_unless_stack
DAEMONSET = ROOT / "deploy" / "kubernetes" / "daemonset.yaml"
GID = 10001  # the exporter's group in the image, which the pod spec's runAsGroup names too

SOCKET_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("/var/run/dcgm/metrics.sock")
except PermissionError as exc:
    sys.exit(f"refused: {exc}")
s.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
body = s.makefile("rb").read().decode()
print(body.splitlines()[0], sum(line.startswith("DCGM_FI_DEV_GPU_TEMP{") for line in body.splitlines()))
"""


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(DAEMONSET.read_text())["spec"]["template"]["spec"]
    return spec


def security_flags(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """The pod's and the container's securityContext as podman flags (the container's fields win)."""
    context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    flags = ["--user", f"{context['runAsUser']}:{context.get('runAsGroup', context['runAsUser'])}"]
    if "fsGroup" in pod.get("securityContext", {}):
        flags += ["--group-add", str(pod["securityContext"]["fsGroup"])]
    if context.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    if context.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    capabilities = context.get("capabilities", {})
    flags += [f"--cap-drop={cap}" for cap in capabilities.get("drop", [])]
    flags += [f"--cap-add={cap}" for cap in capabilities.get("add", [])]
    return flags


def volume_flags(pod: dict[str, Any], container: dict[str, Any], sources: dict[str, str]) -> list[str]:
    """Each volumeMount from ``sources`` (volume name -> host folder or podman volume); emptyDir in memory -> tmpfs."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    flags = []
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if volume.get("emptyDir", {}).get("medium") == "Memory":
            flags += ["--tmpfs", f"{mount['mountPath']}:size={volume['emptyDir']['sizeLimit'].replace('Mi', 'm')}"]
            continue
        mode = "ro" if mount.get("readOnly") else "rw"
        flags += ["-v", f"{sources[mount['name']]}:{mount['mountPath']}:{mode}"]
    return flags


def env_flags(container: dict[str, Any], node: str) -> list[str]:
    flags = []
    for entry in container.get("env", []):
        value = entry.get(
            "value", node if entry.get("valueFrom") == {"fieldRef": {"fieldPath": "spec.nodeName"}} else None
        )
        assert value is not None, f"no value for {entry['name']} outside Kubernetes"
        flags += ["-e", f"{entry['name']}={value}"]
    return flags


@pytest.fixture
def socket_volume() -> Iterator[str]:
    name = f"{PREFIX}-image-socket"
    podman("volume", "create", name)
    yield name
    podman("volume", "rm", "--force", name, check=False)


def run_init_container(pod: dict[str, Any], sources: dict[str, str], name: str) -> None:
    (init,) = pod["initContainers"]
    flags = security_flags(pod, init) + volume_flags(pod, init, sources)
    podman("run", "--rm", "--name", name, *flags, "--entrypoint", init["command"][0], IMAGE, *init["command"][1:])


def socket_read(volume: str, user: str, name: str) -> tuple[int, str]:
    result = podman(
        "run", "--rm", "--name", name, "--user", user, "--read-only", "--cap-drop=ALL",
        "--security-opt", "no-new-privileges", "-v", f"{volume}:/var/run/dcgm", "--entrypoint", "python3",
        IMAGE, "-c", SOCKET_CLIENT, check=False,
    )  # fmt: skip
    return result.returncode, (result.stdout if result.returncode == 0 else result.stdout + result.stderr).strip()


def test_image_runs_under_the_daemonsets_container_spec(socket_volume: str, tmp_path: Path) -> None:
    pod = pod_spec()
    (container,) = pod["containers"]
    pod_resources = tmp_path / "pod-resources"
    pod_resources.mkdir()
    (tmp_path / "queue").mkdir()  # the push queue's host folder; the init container hands it to the exporter
    sources = {"socket-dir": socket_volume, "pod-resources": str(pod_resources), "push-queue": str(tmp_path / "queue"),
               "collectors": str(ROOT / "deploy" / "collectors")}  # fmt: skip
    run_init_container(pod, sources, f"{PREFIX}-image-init")
    port = free_port()
    (container_port,) = container["ports"]
    limits = container["resources"]["limits"]
    name = f"{PREFIX}-image"
    flags = [*security_flags(pod, container), *volume_flags(pod, container, sources), *env_flags(container, "stack-node"),
             "-p", f"127.0.0.1:{port}:{container_port['containerPort']}", "--memory", limits["memory"].replace("Mi", "m"),
             "--cpus", str(int(limits["cpu"].rstrip("m")) / 1000)]  # fmt: skip
    started = time.monotonic()
    podman("run", "-d", "--name", name, *flags, IMAGE)
    try:
        check_serving(name, port, container, started)
        check_socket_group(socket_volume)
        check_sigterm(name)
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def check_serving(name: str, port: int, container: dict[str, Any], started: float) -> None:
    probe = container["readinessProbe"]["httpGet"]["path"]
    wait_for("readiness probe", lambda: http_get(f"http://127.0.0.1:{port}{probe}", timeout=3)[0] == 200)
    ready_s = time.monotonic() - started
    status, body, _ = http_get(f"http://127.0.0.1:{port}/metrics")
    temps = [line for line in body.decode().splitlines() if line.startswith("DCGM_FI_DEV_GPU_TEMP{")]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert status == 200 and len(temps) == int(env["NUM_FAKE_GPUS"]), body[:2000]
    assert all('Hostname="stack-node"' in line for line in temps)
    health = json.loads(http_get(f"http://127.0.0.1:{port}/health")[1])
    assert health["status"] == "healthy", health
    report(
        "image under the DaemonSet spec (read-only, cap-drop ALL, uid 10001)",
        f"ready in {ready_s:.1f} s, {len(temps)} GPUs on /metrics",
    )
    assert podman("healthcheck", "run", name, check=False).returncode == 0, "the image's HEALTHCHECK failed"
    inspect = podman("inspect", name, "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}").stdout.split()
    assert inspect == ["10001:10001", "true"], inspect
    report("image HEALTHCHECK (podman healthcheck run)", "exit 0")


def check_socket_group(volume: str) -> None:
    code, answer = socket_read(volume, f"10002:{GID}", f"{PREFIX}-image-reader")
    assert code == 0 and answer.startswith("HTTP/1.1 200 OK"), answer
    series = int(answer.split()[-1])
    assert series > 0, answer
    refused_code, refused = socket_read(volume, "10003:10003", f"{PREFIX}-image-outsider")
    assert refused_code != 0 and "refused" in refused, refused
    report(
        "Unix socket on the shared volume",
        f"uid 10002 in group {GID}: {series} GPU series; uid 10003 outside it: refused",
    )


def check_sigterm(name: str) -> None:
    started = time.monotonic()
    podman("stop", "--time", "10", name)  # SIGTERM, then SIGKILL after 10 s: the figure shows which ended it
    stopped_s = time.monotonic() - started
    code = int(podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip())
    assert code == 0 and stopped_s < 5, (code, stopped_s)
    report("SIGTERM", f"stopped in {stopped_s:.1f} s, exit {code}")

"""Kubernetes manifests (deploy/): both kustomizations render (kubectl's built-in kustomize), every object of
a built-in kind passes kubernetes-validate --strict; the custom resources (ServiceMonitor, ScrapeConfig), for
which the tool has no schema, are validated against their CRDs' schemas (tests/schemas/, unknown fields
rejected as kubectl's strict field validation does) and checked against the objects they point at. The
containers' environment starts the real exporter."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from otel_fakegpu.config.table import OPTIONS
from tests.conftest import start_exporter

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
KUSTOMIZATIONS = ("kubernetes", "kubernetes-fleet")
CUSTOM_KINDS = {"ServiceMonitor": "servicemonitor-v1.json", "ScrapeConfig": "scrapeconfig-v1alpha1.json"}
SCHEMAS = Path(__file__).resolve().parent / "schemas"
FROM_KUBERNETES = {"POD_INDEX"}  # downward API helpers the manifests define for other values


def render(name: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(DEPLOY / name)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def validate(path: Path) -> str:
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", str(path)], capture_output=True, text=True, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def manifest_files() -> list[Path]:
    return sorted(
        p for name in KUSTOMIZATIONS for p in (DEPLOY / name).glob("*.yaml") if p.name != "kustomization.yaml"
    )


def strict(schema: Any) -> Any:
    """The CRD schema with unknown fields rejected wherever it lists its fields (the API server prunes them)."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def validate_custom(document: dict[str, Any]) -> None:
    stored = json.loads((SCHEMAS / CUSTOM_KINDS[document["kind"]]).read_text())
    assert document["apiVersion"] == f"monitoring.coreos.com/{stored['version']}"
    jsonschema.validate(document, strict(stored["openAPIV3Schema"]))


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_manifest_file_validates_strictly(path: Path) -> None:
    output = validate(path)
    kind = yaml.safe_load(path.read_text())["kind"]
    if kind in CUSTOM_KINDS:
        assert f"Couldn't find schema for kind {kind}" in output
        validate_custom(yaml.safe_load(path.read_text()))
    else:
        assert "passed for resource" in output and "WARN" not in output, output


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_rendered_kustomization_validates_strictly(name: str, tmp_path: Path) -> None:
    objects = render(name)
    rendered = tmp_path / f"{name}.yaml"
    rendered.write_text(yaml.safe_dump_all(objects))
    output = validate(rendered)
    passed = re.findall(r"passed for resource (\S+)", output)
    assert len(passed) == len([o for o in objects if o["kind"] not in CUSTOM_KINDS]), output
    for document in (o for o in objects if o["kind"] in CUSTOM_KINDS):
        validate_custom(document)
    # The generated ConfigMap's hashed name is what the workload mounts.
    config_map = by_kind(objects, "ConfigMap")["metadata"]["name"]
    workload = next(o for o in objects if o["kind"] in {"DaemonSet", "StatefulSet"})
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    assert volumes["collectors"]["configMap"]["name"] == config_map


def container_env(workload: dict[str, Any]) -> dict[str, Any]:
    container = workload["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_daemonset_for_gpu_nodes() -> None:
    objects = render("kubernetes")
    spec = by_kind(objects, "DaemonSet")["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu": "present"}
    assert any(t["key"] == "nvidia.com/gpu" and t["operator"] == "Exists" for t in spec["tolerations"])
    assert spec["securityContext"]["runAsNonRoot"] is True
    container = spec["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    pod_resources = mounts["/var/lib/kubelet/pod-resources"]
    assert pod_resources["readOnly"] is True
    assert volumes[pod_resources["name"]]["hostPath"]["path"] == "/var/lib/kubelet/pod-resources"
    assert volumes[mounts["/var/run/dcgm"]["name"]]["hostPath"]["path"] == "/var/run/dcgm"
    queue = volumes[mounts["/var/lib/otel-fakegpu/queue"]["name"]]["hostPath"]  # survives the pod: a rollout
    assert queue == {"path": "/var/lib/otel-fakegpu/queue", "type": "DirectoryOrCreate"}
    env = container_env(by_kind(objects, "DaemonSet"))
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "metrics"}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    service, monitor = by_kind(objects, "Service"), by_kind(objects, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True


def test_fleet_statefulset_shards_by_ordinal() -> None:
    objects = render("kubernetes-fleet")
    sts = by_kind(objects, "StatefulSet")
    replicas, name, namespace = sts["spec"]["replicas"], sts["metadata"]["name"], sts["metadata"]["namespace"]
    env = container_env(sts)
    assert env["POD_INDEX"] == {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}
    assert env["OTEL_FAKEGPU_SHARD"] == f"$(POD_INDEX)/{replicas}"
    assert int(env["OTEL_FAKEGPU_HOSTS"]) >= replicas
    service = by_kind(objects, "Service")
    assert service["spec"]["clusterIP"] == "None" and sts["spec"]["serviceName"] == service["metadata"]["name"]
    urls = [c["url"] for c in by_kind(objects, "ScrapeConfig")["spec"]["httpSDConfigs"]]
    svc = service["metadata"]["name"]
    assert urls == [f"http://{name}-{i}.{svc}.{namespace}.svc:9400/sd" for i in range(replicas)]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_container_environment_is_the_exporters_own(name: str, tmp_path: Path) -> None:
    """Every variable is one the CLI reads, and the exporter starts with exactly that environment."""
    workload = next(o for o in render(name) if o["kind"] in {"DaemonSet", "StatefulSet"})
    env = container_env(workload)
    known = {e for option in OPTIONS for e in option.envs} | {"NODE_NAME"} | FROM_KUBERNETES
    assert set(env) <= known, set(env) - known
    plain = {k: v for k, v in env.items() if isinstance(v, str) and "$(" not in v}
    plain.update(NODE_NAME="node-a", DCGM_EXPORTER_COLLECTORS=str(DEPLOY / "collectors" / "dcgm-fleet.csv"))
    plain.update(DCGM_EXPORTER_INTERVAL="1000")
    plain["UDS_SOCKET_PATH"] = str(tmp_path / "metrics.sock")
    if "OTEL_FAKEGPU_PUSH_QUEUE_DIR" in plain:  # the node's host path, here a folder of the test's own
        plain["OTEL_FAKEGPU_PUSH_QUEUE_DIR"] = str(tmp_path / "queue")
    if workload["kind"] == "StatefulSet":  # replica 1's share of a small fleet; the sizes are not the point here
        plain.update(OTEL_FAKEGPU_HOSTS="8", OTEL_FAKEGPU_SHARD=f"1/{workload['spec']['replicas']}")
    exporter = start_exporter([], plain)  # on a free port: its -a wins over DCGM_EXPORTER_LISTEN
    try:
        status, body, _ = exporter.get("/metrics")
        assert status == 200
        if workload["kind"] == "DaemonSet":
            assert b'Hostname="node-a"' in body
        else:  # replica 1 of 4 serves hosts 1 and 5 of 8, each listed by /sd for Prometheus' HTTP discovery
            status, sd, _ = exporter.get("/sd")
            targets = json.loads(sd)
            paths = sorted(t["labels"]["__metrics_path__"] for t in targets)
            assert status == 200 and len(paths) == 2, targets
            host_status, host_body, _ = exporter.get(paths[0])
            assert host_status == 200 and b"DCGM_FI_DEV_GPU_TEMP{" in host_body
        assert exporter.get("/health")[0] == 200
    finally:
        exporter.close()


def test_custom_resource_check_rejects_unknown_and_mistyped_fields() -> None:
    monitor = yaml.safe_load((DEPLOY / "kubernetes" / "servicemonitor.yaml").read_text())
    monitor["spec"]["endpoints"][0]["honourLabels"] = True
    with pytest.raises(jsonschema.ValidationError, match="honourLabels"):
        validate_custom(monitor)
    scrape = yaml.safe_load((DEPLOY / "kubernetes-fleet" / "scrapeconfig.yaml").read_text())
    scrape["spec"]["scrapeInterval"] = "30 seconds"
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(scrape)

"""compose.yaml: valid against the Compose Specification's JSON schema (shipped by check-jsonschema as
vendor.compose-spec), pinned images, healthchecks and depends_on conditions, every mounted file in the
repository, no secrets; the Prometheus config it mounts passes promtool with the alert rules; the exporter
starts with the service's environment. The stack itself runs in podman under `make stack-test`
(tests/test_stack_compose.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from otel_fakegpu.config.table import OPTIONS
from tests.conftest import free_port, start_exporter
from tests.prometheus_server import PROMTOOL

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
# Read by the OpenTelemetry SDK itself, or by options that land with scenario files.
OTHER_ENVS = {"NODE_NAME", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_FAKEGPU_SCENARIO"}
UNPROBED = {"otel-collector"}  # distroless image: nothing in it can run a probe (see the comment in compose.yaml)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_file_matches_the_compose_specification_schema() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_services_are_pinned_probed_and_ordered() -> None:
    services = compose()["services"]
    assert {"otel-fakegpu", "otel-collector", "prometheus", "mimir", "tempo", "grafana"} <= set(services)
    for name, service in services.items():
        image = service["image"]
        assert re.search(r":v?\d+\.\d+(\.\d+)?$", image), f"{name}: image {image} is not pinned"
        if name not in UNPROBED:
            assert service["healthcheck"]["test"][0] == "CMD", name
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition["condition"] in {"service_healthy", "service_started"}, (name, dependency)
            if dependency not in UNPROBED:
                assert condition["condition"] == "service_healthy", (name, dependency)


def test_every_mounted_file_is_in_the_repository_and_no_secrets() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
        for key, value in service.get("environment", {}).items():
            assert not re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", key), f"{name}: {key}"
            assert "://" not in str(value) or "@" not in str(value), f"{name}: credentials in {key}"
    assert not re.search(r"password|secret_key|api_key", COMPOSE.read_text(), re.I)


def test_prometheus_config_loads_the_alert_rules(tmp_path: Path) -> None:
    prometheus = compose()["services"]["prometheus"]
    for volume in prometheus["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("."):  # lay the files out as the container sees them
            path = tmp_path / target.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, path)
    result = subprocess.run(
        [str(PROMTOOL), "check", "config", str(tmp_path / "etc/prometheus/prometheus.yml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rules = yaml.safe_load((ROOT / "rules" / "gpu-alerts.yml").read_text())
    count = sum(len(group["rules"]) for group in rules["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout + result.stderr


def test_grafana_is_provisioned_with_three_sources_and_the_dashboards() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    sources = yaml.safe_load((ROOT / next(s for s in mounts if s.endswith("datasources.yaml"))).read_text())
    assert {d["type"] for d in sources["datasources"]} == {"prometheus", "tempo"}
    assert {d["name"] for d in sources["datasources"]} == {"Prometheus", "Mimir", "Tempo"}
    providers = yaml.safe_load((ROOT / next(s for s in mounts if s.endswith("dashboards.yaml"))).read_text())
    path = providers["providers"][0]["options"]["path"]
    assert mounts["./dashboards"] == path and list((ROOT / "dashboards").glob("*.json"))


def test_exporter_starts_with_the_services_environment(tmp_path: Path) -> None:
    service = compose()["services"]["otel-fakegpu"]
    env = {k: str(v) for k, v in service["environment"].items()}
    known = {e for option in OPTIONS for e in option.envs} | OTHER_ENVS
    assert set(env) <= known, set(env) - known
    mounts = {target: source for source, target, *_ in (v.split(":") for v in service["volumes"])}
    for key, value in env.items():
        if value in mounts:  # a mounted file: the repository's copy
            env[key] = str(ROOT / mounts[value])
    env.update(
        UDS_SOCKET_PATH=str(tmp_path / "metrics.sock"),
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",  # nothing listens: pushes are retried
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://127.0.0.1:{free_port()}/v1/traces",
    )
    exporter = start_exporter([], env)
    try:
        status, body, _ = exporter.get("/metrics")
        assert status == 200 and b'Hostname="demo-node"' in body
        assert b"DCGM_EXP_XID_ERRORS_COUNT" in body  # the mounted collectors file is in use
    finally:
        assert exporter.stop() == 0
        exporter.close()

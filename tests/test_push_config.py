"""Push configuration the OpenTelemetry way (OTEL_EXPORTER_OTLP_*), flags, and the DigitalOcean preset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from otel_fakegpu.cli import config_from_args
from otel_fakegpu.config.errors import ConfigError
from otel_fakegpu.fields import collectors_preset_path, load_collectors
from otel_fakegpu.outputs import PushQueueSettings
from otel_fakegpu.outputs.batching import count_points, split
from tests.conftest import ExporterProcess, build_stack
from tests.polling import wait_until
from tests.receivers import VictoriaMetrics


def test_no_endpoint_no_push() -> None:
    config = config_from_args([], {})
    assert config.otlp is None and config.push_prometheus_url is None


def test_otel_environment_variables() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=abc%3D%3D,tenant=gpu",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "none",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
        "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,k8s.cluster.name=c1",
        "OTEL_SERVICE_NAME": "gpu-telemetry",
    }
    config = config_from_args([], env)
    otlp = config.otlp
    assert otlp is not None
    assert otlp.protocol == "http/protobuf" and otlp.endpoint == "http://collector:4318/v1/metrics"
    assert otlp.headers == {"x-api-key": "abc==", "tenant": "gpu"}
    assert otlp.compression == "none" and otlp.timeout_s == 2.5 and otlp.export_interval_s == 60.0
    assert config.resource_attributes == {"deployment.environment": "prod", "k8s.cluster.name": "c1"}
    assert config.service_name == "gpu-telemetry"


def test_metrics_specific_variables_win_and_are_used_as_given() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://vm:8428/opentelemetry/v1/metrics",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
    }
    otlp = config_from_args([], env).otlp
    assert otlp is not None and otlp.endpoint == "http://vm:8428/opentelemetry/v1/metrics"
    grpc = config_from_args(
        ["--otlp-endpoint", "collector:4317", "--otlp-protocol", "grpc", "--naming", "both"], {}
    ).otlp
    assert grpc is not None and (grpc.endpoint, grpc.protocol, grpc.naming) == ("collector:4317", "grpc", "both")
    assert grpc.compression == "gzip"  # on by default


def test_push_queue_settings_from_flags_and_variables() -> None:
    assert config_from_args([], {}).push_queue is None  # off unless asked for
    queue = config_from_args([], {"OTEL_FAKEGPU_PUSH_QUEUE_DIR": "/q", "OTEL_FAKEGPU_PUSH_QUEUE_MAX_BYTES": "1Gi"})
    assert queue.push_queue == PushQueueSettings(Path("/q"), 1 << 30, 100_000_000)
    flags = config_from_args(["--push-queue-dir", "q", "--push-queue-min-free-bytes", "0"], {}).push_queue
    assert flags == PushQueueSettings(Path("q"), None, 0)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL='http/json'"),
        (["--otlp-endpoint", "collector:4318"], {}, "--otlp-endpoint='collector:4318': expected an http:// or https:// URL"),
        (["--otlp-endpoint", "http://c:4318", "--naming", "prom"], {}, "--naming='prom'"),
        ([], {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS='novalue'"),
        ([], {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "expected gzip or none"),
        (["--push-prometheus-url", "169.254.169.254/v1"], {}, "expected an http:// or https:// URL"),
        (["--preset", "aws"], {}, "unknown preset (known: digitalocean, dcgm-fake-gpu-exporter)"),
        (["--push-queue-dir", "q", "--push-queue-max-bytes", "5x"], {}, "--push-queue-max-bytes='5x': expected a size"),
        ([], {"OTEL_FAKEGPU_PUSH_QUEUE_DIR": "q", "OTEL_FAKEGPU_PUSH_QUEUE_MIN_FREE_BYTES": "-1"}, "MIN_FREE_BYTES='-1'"),
    ],
)  # fmt: skip
def test_bad_push_settings(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_from_args(argv, env)


def test_digitalocean_preset_sets_its_defaults_and_yields_to_flags() -> None:
    config = config_from_args(["--preset", "digitalocean"], {})
    assert config.listen is not None and config.listen.port == 9401
    assert config.collectors_path is None and config.base_collectors_path == collectors_preset_path("digitalocean")
    assert config.push_prometheus_url == "http://169.254.169.254/v1/gpu_metrics"
    assert config.collect_interval_s == 20.0
    assert config.count_windows_ms == {9001: 20000, 9002: 20000}  # the wrapper's windows equal its push interval
    overridden = config_from_args(
        ["--preset", "digitalocean", "-a", ":9500"], {"OTEL_FAKEGPU_PUSH_PROMETHEUS_URL": "http://127.0.0.1:1/x"}
    )
    assert overridden.listen is not None and overridden.listen.port == 9500
    assert overridden.push_prometheus_url == "http://127.0.0.1:1/x"


def test_digitalocean_field_set() -> None:
    collectors = load_collectors(collectors_preset_path("digitalocean"))
    ids = {c.field.id for c in (*collectors.metrics, *collectors.labels)}
    expected = {1, 100, 101, 140, 150, 155, 158, 159, 190, 191, 202, 206, 207, *range(240, 246), 254, *range(310, 314),
                390, 391, 393, 394, 395, 409, 419, 429, 439, 449, *range(1001, 1013), 230, 112, 9001, 9002,
                66, *range(856, 863), 870}  # fmt: skip
    assert ids == expected


def test_split_keeps_every_point_once_and_respects_the_limit() -> None:
    stack = build_stack(50, ["stable"])
    data = stack.pipeline.collect(stack.pipeline.read(stack.engine))
    pieces = list(split(data, 97))
    assert all(1 <= count_points(p) <= 97 for p in pieces)
    assert sum(count_points(p) for p in pieces) == count_points(data)
    names = [m.name for p in pieces for rm in p.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert set(names) == {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


@pytest.mark.slow
def test_digitalocean_preset_pushes_its_field_set(
    victoria: VictoriaMetrics, exporter_factory: Callable[..., ExporterProcess]
) -> None:
    # The push URL is pointed at loopback: tests never send anything to 169.254.169.254.
    exporter_factory(
        "--preset", "digitalocean", "--num-gpus", "2", "-c", "600000",
        "--push-prometheus-url", f"{victoria.base}/api/v1/import/prometheus",
    )  # fmt: skip
    wait_until(lambda: len(victoria.export("DCGM_FI_DEV_SLOWDOWN_TEMP")) == 2)
    assert {s["values"][0] for s in victoria.export("DCGM_FI_DEV_SLOWDOWN_TEMP")} == {87}
    assert len(victoria.export("DCGM_FI_PROF_NVLINK_TX_BYTES")) == 2
    assert victoria.export("DCGM_FI_DEV_FAN_SPEED") == []  # fanless SXM: blank, so no series
    # dcgm-exporter's computed window counts arrive too: no XID yet, so one 0 per GPU without an xid label.
    xids = victoria.export("DCGM_EXP_XID_ERRORS_COUNT")
    assert sorted(x["metric"]["gpu"] for x in xids) == ["0", "1"]
    assert all(x["metric"]["window_size_in_ms"] == "20000" and "xid" not in x["metric"] for x in xids)
    assert {x["values"][0] for x in xids} == {0}
    assert victoria.export("DCGM_EXP_CLOCK_EVENTS_COUNT") != []

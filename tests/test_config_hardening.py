"""Every environment value and configuration file is validated at start: a bad one is one line naming it
and exit code 2, never a traceback, and never a value that kills a thread later (an interval of 1e30)."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_fakegpu.cli import config_from_args
from otel_fakegpu.config.errors import ConfigError
from otel_fakegpu.config.files import load_yaml, read_config_text
from otel_fakegpu.fields import CollectorsError, default_collectors_path, load_collectors
from tests.conftest import run_cli

OTLP_HTTP = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1"}, "OTEL_EXPORTER_OTLP_ENDPOINT='http://[::1': not a valid URL"),
        ({"OTEL_FAKEGPU_PUSH_PROMETHEUS_URL": "http://[::1"}, "not a valid URL"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://host:99999"}, "not a valid URL (Port out of range"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://host:0"}, "port 0"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://ho st:80"}, "expected an http:// or https:// URL"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "host:99999", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "between 0 and 65535"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "host:0", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "expected HOST:PORT"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318", "OTEL_EXPORTER_OTLP_HEADERS": "a=b%0d%0aX: y"}, "control"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318", "OTEL_EXPORTER_OTLP_HEADERS": "a b=c"}, "header name"),
        ({"DCGM_EXPORTER_INTERVAL": "1e30"}, "DCGM_EXPORTER_INTERVAL='1e30': not a whole number"),
        ({"DCGM_EXPORTER_INTERVAL": "100000000000000000000000000000"}, "must be between 100 and 86400000"),
        ({"METRIC_UPDATE_INTERVAL": "inf"}, "METRIC_UPDATE_INTERVAL='inf': must be between"),
        ({"METRIC_UPDATE_INTERVAL": "1e30"}, "must be between 0.05 and 86400"),
        ({"OTEL_FAKEGPU_IDLE_TIMEOUT": "-inf"}, "OTEL_FAKEGPU_IDLE_TIMEOUT='-inf': must be between"),
        ({"NUM_FAKE_GPUS": " 4 "}, "NUM_FAKE_GPUS=' 4 ': not a whole number"),
        ({"NUM_FAKE_GPUS": "٤"}, "NUM_FAKE_GPUS='٤': not a whole number"),
        ({"NUM_FAKE_GPUS": "1_0"}, "NUM_FAKE_GPUS='1_0': not a whole number"),
        ({"NUM_FAKE_GPUS": "9" * 5000}, "not a whole number"),
        ({"OTEL_FAKEGPU_PUSH_BUFFER_POINTS": "1000000000000"}, "must be between 1 and 100000000"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318", "OTEL_EXPORTER_OTLP_TIMEOUT": "99999999999"}, "between 1"),
        ({"DCGM_EXPORTER_XID_COUNT_WINDOW_SIZE": "999999999999"}, "must be between 1 and 604800000"),
        ({"OTEL_FAKEGPU_ATTRIBUTION_TIMEOUT": "100000000000000000"}, "must be between 1 and 600000"),
    ],
)
def test_bad_environment_values_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_args([], {**OTLP_HTTP, **env} if "OTEL_EXPORTER_OTLP_PROTOCOL" not in env else env)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_good_values_still_pass() -> None:
    config = config_from_args(
        ["--otlp-endpoint", "http://[::1]:4318", "--otlp-headers", "authorization=Bearer%20x%09y"],
        {"NUM_FAKE_GPUS": "16", "METRIC_UPDATE_INTERVAL": "0.5", "DCGM_EXPORTER_INTERVAL": "86400000"},
    )
    assert config.num_gpus == 16 and config.otlp is not None
    assert config.otlp.headers == {"authorization": "Bearer x\ty"}
    grpc = config_from_args(["--otlp-protocol", "grpc", "--otlp-endpoint", "[::1]:4317"], {})
    assert grpc.otlp is not None and grpc.otlp.endpoint == "[::1]:4317"


def test_bad_environment_value_exits_2_with_one_line() -> None:
    result = run_cli(env={"METRIC_UPDATE_INTERVAL": "inf"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "otel-fakegpu: error: METRIC_UPDATE_INTERVAL='inf': must be between 0.05 and 86400"
    ]


def test_collectors_file_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + default_collectors_path().read_bytes())
    assert len(load_collectors(path).metrics) == len(load_collectors(default_collectors_path()).metrics)


def test_collectors_file_is_read_with_bounds(tmp_path: Path) -> None:
    with pytest.raises(
        CollectorsError, match="/dev/zero: cannot read collectors file: a character device, not a regular file"
    ):
        load_collectors("/dev/zero")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"# ok\nDCGM_FI_DEV_GPU_TEMP, gauge, temp\nDCGM_FI_DEV_POWER_USAGE, gauge, \xb0C\n")
    with pytest.raises(CollectorsError, match=r"latin.csv:3: collectors file is not UTF-8 text \(byte 0xb0\)"):
        load_collectors(latin)
    result = run_cli("-f", "/dev/zero", timeout=30)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_read_config_text(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"\xef\xbb\xbfhello")
    assert read_config_text(path, 16) == "hello"
    with pytest.raises(ConfigError, match=r"f: cannot read scenario: larger than 4 bytes"):
        read_config_text(path, 4, "scenario")
    with pytest.raises(ConfigError, match="No such file"):
        read_config_text(tmp_path / "none", 4)
    with pytest.raises(ConfigError, match="a directory, not a regular file"):
        read_config_text(tmp_path, 4)


def test_load_yaml_is_safe_and_bounded() -> None:
    assert load_yaml("a: &x [1]\nb: *x\n", "s.yml") == {"a": [1], "b": [1]}
    for text, message in (
        ("a: !!python/object/apply:os.system ['true']\n", r"s.yml:1: invalid YAML: could not determine a constructor"),
        ("a: " + "[" * 100 + "]" * 100, "nested deeper than 16 levels"),
        ("".join(f"a{i}: &a{i} [*a{i - 1 if i else 0}]\n" for i in range(1, 40)).replace("*a0", "1"), "aliases"),
        ("a: [\n", "s.yml:2: invalid YAML"),
    ):
        with pytest.raises(ConfigError, match=message) as info:
            load_yaml(text, "s.yml")
        assert "\n" not in str(info.value)


def test_a_file_name_with_a_line_break_is_still_one_line() -> None:
    result = run_cli("--web-config-file", "web\r\nconfig.yml", timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "otel-fakegpu: error: web\\r\\nconfig.yml: cannot read web config: No such file or directory"
    )


def test_injected_fleet_is_checked_after_the_scenario_sets_it(tmp_path: Path) -> None:
    big, small = tmp_path / "big.yaml", tmp_path / "small.yaml"
    big.write_text("gpus:\n  - {count: 40, model: h100-sxm}\n")
    small.write_text("gpus:\n  - {count: 4, model: h100-sxm}\n")
    inject = ["--engine", "dcgm", "--inject"]
    with pytest.raises(ConfigError, match=r"^--inject: a DCGM hostengine holds at most 32 GPUs \(--scenario=.*40\)"):
        config_from_args([*inject, "--scenario", str(big)], {})
    assert config_from_args([*inject, "--num-gpus", "40", "--scenario", str(small)], {}).num_gpus == 4
    mig_scenario = str(Path(__file__).parents[1] / "scenarios" / "mig-inference.yaml")
    with pytest.raises(ConfigError, match=r"^--scenario=.*: MIG partitions are .* only \(the engine is dcgm\)"):
        config_from_args([*inject, "--scenario", mig_scenario], {})
    assert config_from_args(["--scenario", mig_scenario], {}).mig  # the embedded engine simulates them


@pytest.mark.parametrize("remote", ["host:99999", ":5555", "a b:5555", "host:0", "nohost"])
def test_bad_remote_hostengine_is_refused(remote: str) -> None:
    with pytest.raises(ConfigError, match=r"expected HOST:PORT or a Unix socket path \(a port from 1 to 65535\)$"):
        config_from_args(["--engine", "dcgm", "-r", remote], {})


def test_remote_hostengine_takes_host_port_and_socket_paths() -> None:
    for remote in ("localhost:5555", "[::1]:5555", "/run/nvidia/dcgm.sock"):
        assert config_from_args(["--engine", "dcgm", "-r", remote], {}).engine.remote == remote

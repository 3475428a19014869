"""Flags and environment variables: dcgm-exporter's names, env fallbacks, one-line errors with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_fakegpu.cli import config_from_args
from otel_fakegpu.config.errors import ConfigError
from tests.conftest import run_cli


def test_defaults_match_dcgm_exporter() -> None:
    config = config_from_args([], {"NODE_NAME": "node-7"})
    assert config.listen is not None and config.uds is None
    assert (config.listen.host, config.listen.port) == (None, 9400)
    assert config.collect_interval_s == 30.0
    assert config.hostname == "node-7"
    assert config.num_gpus == 4 and config.profiles == ("static",)
    assert config.collectors_path is None and config.seed is None
    assert config.count_windows_ms == {9001: 300_000, 9002: 300_000}  # five minutes, as dcgm-exporter
    windows = config_from_args(["-x", "60000"], {"DCGM_EXPORTER_CLOCK_EVENTS_COUNT_WINDOW_SIZE": "1000"})
    assert windows.count_windows_ms == {9001: 60_000, 9002: 1_000}
    assert config_from_args([], {"DCGM_EXPORTER_XID_COUNT_WINDOW_SIZE": "7"}).count_windows_ms[9001] == 7


def test_environment_fallbacks_and_flag_precedence() -> None:
    env = {
        "DCGM_EXPORTER_LISTEN": "127.0.0.1:9500",
        "DCGM_EXPORTER_INTERVAL": "1000",
        "DCGM_EXPORTER_COLLECTORS": "/etc/dcgm/counters.csv",
        "NUM_FAKE_GPUS": "16",
        "METRIC_PROFILE": "wave",
        "METRIC_UPDATE_INTERVAL": "2.5",
        "GPU_MODEL": "a100-40gb,h100-sxm",
        "FAKEGPU_SEED": "9",
        "NO_HOSTNAME": "true",
    }
    config = config_from_args([], env)
    assert str(config.listen) == "127.0.0.1:9500" and config.collect_interval_s == 1.0
    assert config.collectors_path == Path("/etc/dcgm/counters.csv")
    assert config.num_gpus == 16 and config.profiles == ("wave",) and config.update_interval_s == 2.5
    assert [s.key for s in config.skus] == ["a100-40gb", "h100-sxm"] and config.seed == 9
    assert config.hostname is None
    flagged = config_from_args(["-a", "[::1]:9401", "--num-gpus", "2", "--gpu-profiles", "spike,chaos"], env)
    assert flagged.listen is not None
    assert (flagged.listen.host, flagged.listen.port) == ("::1", 9401)
    assert flagged.num_gpus == 2 and flagged.profiles == ("spike", "chaos")
    assert config_from_args([], {"GPU_PROFILES": "faulty", "METRIC_PROFILE": "wave"}).profiles == ("faulty",)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--num-gpus", "many"], {}, "--num-gpus='many': not a whole number"),
        ([], {"NUM_FAKE_GPUS": "0"}, "NUM_FAKE_GPUS='0': must be between 1 and 65536"),
        ([], {"METRIC_PROFILE": "bursty"}, "METRIC_PROFILE='bursty': unknown profile 'bursty'"),
        (["-a", "9400"], {}, "--address='9400': expected [HOST]:PORT"),
        (["-a", ":99999"], {}, "--address=':99999': must be between 0 and 65535"),
        (["-c", "10"], {}, "--collect-interval='10': must be between 100 and"),
        ([], {"METRIC_UPDATE_INTERVAL": "nan"}, "METRIC_UPDATE_INTERVAL='nan': must be between"),
        ([], {"GPU_MODEL": "v100"}, "unknown GPU model 'v100'"),
        ([], {"NO_HOSTNAME": "maybe"}, "NO_HOSTNAME='maybe': expected true or false"),
        (["-x", "5m"], {}, "--xid-count-window-size='5m': not a whole number"),
        (
            [],
            {"DCGM_EXPORTER_CLOCK_EVENTS_COUNT_WINDOW_SIZE": "0"},
            "DCGM_EXPORTER_CLOCK_EVENTS_COUNT_WINDOW_SIZE='0': must be between 1 and",
        ),
        (["--bogus"], {}, "unrecognized arguments: --bogus"),
    ],
)
def test_bad_values_are_one_line_errors(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_args(argv, env)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_flag_exits_2_with_one_line_and_no_traceback() -> None:
    result = run_cli("--num-gpus", "-3")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("otel-fakegpu: error: --num-gpus='-3'")


def test_bad_collectors_file_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    csv = tmp_path / "counters.csv"
    csv.write_text("# mine\nDCGM_FI_DEV_GPU_TEMP, gauge, t\nDCGM_FI_DEV_GPU_TMEP, gauge, typo\n")
    result = run_cli("-f", str(csv))
    assert result.returncode == 2
    assert result.stderr.strip() == f"otel-fakegpu: error: {csv}:3: unknown DCGM field 'DCGM_FI_DEV_GPU_TMEP'"
    missing = run_cli(env={"DCGM_EXPORTER_COLLECTORS": str(tmp_path / "nope.csv")})
    assert missing.returncode == 2 and "nope.csv: cannot read collectors file" in missing.stderr


def test_port_in_use_exits_2_with_one_line() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("-a", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_help_documents_every_environment_variable() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for name in (
        "DCGM_EXPORTER_COLLECTORS",
        "DCGM_EXPORTER_LISTEN",
        "DCGM_EXPORTER_INTERVAL",
        "NO_HOSTNAME",
        "NUM_FAKE_GPUS",
        "METRIC_PROFILE",
        "GPU_PROFILES",
        "METRIC_UPDATE_INTERVAL",
        "GPU_MODEL",
        "FAKEGPU_SEED",
    ):
        assert name in result.stdout

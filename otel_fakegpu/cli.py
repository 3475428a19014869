"""Command line: dcgm-exporter's flags and environment variables, plus the simulator's. Bad input gets
one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from otel_fakegpu import __version__
from otel_fakegpu.config import (
    MAX_GPUS,
    Config,
    ConfigError,
    environ,
    parse_bool,
    parse_float,
    parse_int,
    parse_listen,
    parse_mode,
    parse_profiles,
    parse_skus,
    resolve_hostname,
)
from otel_fakegpu.fields import CollectorsError, default_collectors_path, load_collectors
from otel_fakegpu.serve import DEFAULT_SOCKET_PATH, UdsSettings, WebConfigError, load_web_config
from otel_fakegpu.sim import PROFILE_NAMES, SKUS

PROG = "otel-fakegpu"
EXIT_USAGE = 2


@dataclass(frozen=True)
class Option:
    """A flag, the environment variables that stand in for it, and its default (as text)."""

    dest: str
    flags: tuple[str, ...]
    envs: tuple[str, ...]
    default: str | None
    help: str
    metavar: str | None = None
    is_switch: bool = False


OPTIONS: tuple[Option, ...] = (
    Option(
        "collectors",
        ("-f", "--collectors"),
        ("DCGM_EXPORTER_COLLECTORS",),
        None,
        "collectors CSV in dcgm-exporter's format (default: the stock 26-field set)",
        "FILE",
    ),
    Option(
        "address",
        ("-a", "--address"),
        ("DCGM_EXPORTER_LISTEN",),
        ":9400",
        'address to serve /metrics on, [HOST]:PORT; "" for the Unix socket only',
        "ADDR",
    ),
    Option(
        "uds",
        ("--uds",),
        ("UDS_SOCKET_PATH",),
        None,
        "also serve on this Unix socket (the variable takes effect with ENABLE_UDS=true; "
        f"default path {DEFAULT_SOCKET_PATH})",
        "PATH",
    ),
    Option("enable_uds", ("--enable-uds",), ("ENABLE_UDS",), "false", "serve on the Unix socket", is_switch=True),
    Option("uds_mode", ("--uds-mode",), ("UDS_SOCKET_MODE",), "0660", "permission bits of the socket", "MODE"),
    Option("uds_group", ("--uds-group",), ("UDS_SOCKET_GROUP",), None, "group owning the socket", "GROUP"),
    Option(
        "web_config",
        ("--web-config-file",),
        ("DCGM_EXPORTER_WEB_CONFIG_FILE",),
        None,
        "exporter-toolkit web config: TLS and basic auth for TCP",
        "FILE",
    ),
    Option(
        "idle_timeout",
        ("--idle-timeout",),
        ("OTEL_FAKEGPU_IDLE_TIMEOUT",),
        "60",
        "seconds before closing a connection that sends no complete request",
        "SECONDS",
    ),
    Option(
        "collect_interval",
        ("-c", "--collect-interval"),
        ("DCGM_EXPORTER_INTERVAL",),
        "30000",
        "collection cycle in milliseconds",
        "MS",
    ),
    Option(
        "no_hostname",
        ("-n", "--no-hostname"),
        ("NO_HOSTNAME",),
        "false",
        "omit the Hostname label",
        is_switch=True,
    ),
    Option("num_gpus", ("--num-gpus",), ("NUM_FAKE_GPUS",), "4", "number of simulated GPUs", "N"),
    Option(
        "profile",
        ("--profile",),
        ("METRIC_PROFILE",),
        "static",
        f"profile for every GPU: {', '.join(PROFILE_NAMES)}",
        "NAME",
    ),
    Option(
        "gpu_profiles",
        ("--gpu-profiles",),
        ("GPU_PROFILES",),
        None,
        "comma list of profiles assigned to GPUs round-robin (overrides --profile)",
        "LIST",
    ),
    Option(
        "update_interval",
        ("--update-interval",),
        ("METRIC_UPDATE_INTERVAL",),
        "30",
        "seconds between simulated value updates",
        "SECONDS",
    ),
    Option(
        "gpu_model",
        ("--gpu-model",),
        ("GPU_MODEL",),
        "h100-sxm",
        f"GPU model, or comma list assigned round-robin: {', '.join(SKUS)}",
        "MODEL",
    ),
    Option("seed", ("--seed",), ("FAKEGPU_SEED",), None, "seed for reproducible simulated values", "N"),
    Option(
        "service_name",
        ("--service-name",),
        ("OTEL_SERVICE_NAME",),
        "otel-fakegpu",
        "OpenTelemetry service.name resource attribute",
        "NAME",
    ),
    Option("debug", ("-d", "--debug"), ("DCGM_EXPORTER_DEBUG",), "false", "log at debug level", is_switch=True),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="dcgm-exporter-compatible GPU metrics from simulated (default) or real GPUs, "
        "through OpenTelemetry. Every option falls back to the environment variable shown.",
    )
    for opt in OPTIONS:
        env_note = f" [env {', '.join(opt.envs)}]" if opt.envs else ""
        default_note = f" (default {opt.default})" if opt.default and not opt.is_switch else ""
        if opt.is_switch:
            parser.add_argument(
                *opt.flags,
                dest=opt.dest,
                action="store_const",
                const="true",
                default=None,
                help=opt.help + env_note,
            )
        else:
            parser.add_argument(
                *opt.flags,
                dest=opt.dest,
                default=None,
                metavar=opt.metavar,
                help=opt.help + default_note + env_note,
            )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def _resolve(ns: argparse.Namespace, env: Mapping[str, str]) -> dict[str, tuple[str | None, str]]:
    """For each option: its text value and where it came from (flag or variable), for error messages."""
    resolved: dict[str, tuple[str | None, str]] = {}
    for opt in OPTIONS:
        given = getattr(ns, opt.dest)
        if given is not None:
            resolved[opt.dest] = (given, opt.flags[-1])
            continue
        env_name = next((name for name in opt.envs if name in env), None)
        if env_name is not None:
            resolved[opt.dest] = (env[env_name], env_name)
        else:
            resolved[opt.dest] = (opt.default, opt.flags[-1])
    return resolved


def _uds_settings(values: dict[str, tuple[str | None, str]]) -> UdsSettings | None:
    """--uds PATH enables the socket; the seed's UDS_SOCKET_PATH does so only with ENABLE_UDS=true."""
    path, source = values["uds"]
    enabled_text, enabled_source = values["enable_uds"]
    given_as_flag = path is not None and source == "--uds"
    if not given_as_flag and not parse_bool(enabled_text or "", enabled_source):
        return None
    mode_text, mode_source = values["uds_mode"]
    group = (values["uds_group"][0] or "").strip() or None
    return UdsSettings(Path(path or DEFAULT_SOCKET_PATH), parse_mode(mode_text or "0660", mode_source), group)


def config_from_args(argv: Sequence[str], env: Mapping[str, str]) -> Config:
    """Parse and validate everything; raises ConfigError with a one-line message."""
    values = _resolve(build_parser().parse_args(list(argv)), env)

    def text(dest: str) -> tuple[str, str]:
        value, source = values[dest]
        return (value or ""), source

    collectors_text, _ = text("collectors")
    profiles_text, profiles_source = text("gpu_profiles") if values["gpu_profiles"][0] else text("profile")
    seed_text, seed_source = text("seed")
    host_identity = resolve_hostname(env)
    address_text, address_source = text("address")
    listen = parse_listen(address_text, address_source) if address_text.strip() else None
    uds = _uds_settings(values)
    if listen is None and uds is None:
        raise ConfigError(f"{address_source} is empty and no Unix socket is enabled: nothing to serve")
    web_config_text, _ = text("web_config")
    return Config(
        collectors_path=Path(collectors_text) if collectors_text else None,
        listen=listen,
        uds=uds,
        web_config_path=Path(web_config_text) if web_config_text else None,
        idle_timeout_s=parse_float(*text("idle_timeout"), minimum=0.1),
        collect_interval_s=parse_int(*text("collect_interval"), low=100) / 1000.0,
        hostname=None if parse_bool(*text("no_hostname")) else host_identity,
        host_identity=host_identity,
        num_gpus=parse_int(*text("num_gpus"), low=1, high=MAX_GPUS),
        profiles=parse_profiles(profiles_text, profiles_source),
        skus=parse_skus(*text("gpu_model")),
        update_interval_s=parse_float(*text("update_interval"), minimum=0.05),
        seed=parse_int(seed_text, seed_source, low=0) if seed_text.strip() else None,
        service_name=text("service_name")[0] or PROG,
        log_level="DEBUG" if parse_bool(*text("debug")) else "INFO",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        config = config_from_args(args, environ())
        collectors = load_collectors(config.collectors_path or default_collectors_path())
        web_config = load_web_config(config.web_config_path) if config.web_config_path else None
    except (ConfigError, CollectorsError, WebConfigError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from otel_fakegpu.app import run  # noqa: PLC0415 - keep --help and bad-flag paths free of heavy imports

    return run(config, collectors, web_config)

"""The command line: the option table as an argparse parser (its --help) and ``resolve``, which says for each
option which text wins (flag, variable, preset, default) and where it came from, so errors can name it."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import NoReturn

from otel_fakegpu import __version__
from otel_fakegpu.config.errors import ConfigError, OptionValue
from otel_fakegpu.config.table import GROUPS, OPTIONS

PROG = "otel-fakegpu"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="dcgm-exporter-compatible GPU metrics from simulated (default) or real GPUs, "
        "through OpenTelemetry. Every option falls back to the environment variable shown. "
        "Subcommands: otel-fakegpu backfill --help (a scenario's history as OpenMetrics), "
        "otel-fakegpu ctl --help (drive a running exporter's control API: drills, faults, history, undo), "
        "otel-fakegpu record --help (capture a dcgm-exporter page sequence for --engine replay).",
    )
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS.items()}
    for opt in OPTIONS:
        env_note = f" [env {', '.join(opt.envs)}]" if opt.envs else ""
        default_note = f" (default {opt.default})" if opt.default and not opt.is_switch else ""
        group = groups[opt.group]
        if opt.is_switch:
            group.add_argument(
                *opt.flags, dest=opt.dest, action="store_const", const="true", default=None, help=opt.help + env_note
            )
        else:
            group.add_argument(
                *opt.flags, dest=opt.dest, default=None, metavar=opt.metavar, help=opt.help + default_note + env_note
            )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def resolve(
    argv: Sequence[str], env: Mapping[str, str], presets: Mapping[str, Mapping[str, str]]
) -> dict[str, OptionValue]:
    """Flag, else the first variable set, else the preset's default, else the built-in default."""
    ns = build_parser().parse_args(list(argv))
    values: dict[str, OptionValue] = {}
    for opt in OPTIONS:
        given = getattr(ns, opt.dest)
        env_name = next((name for name in opt.envs if name in env), None)
        if given is not None:
            values[opt.dest] = OptionValue(given, opt.flags[-1], "flag")
        elif env_name is not None:
            values[opt.dest] = OptionValue(env[env_name], env_name, "env")
        else:
            values[opt.dest] = OptionValue(opt.default, opt.flags[-1], "default")
    preset = (values["preset"].text or "").strip().lower()
    if preset:
        if preset not in presets:
            raise ConfigError(f"{values['preset'].source}={preset!r}: unknown preset (known: {', '.join(presets)})")
        for dest, text in presets[preset].items():
            if not values[dest].given:
                values[dest] = OptionValue(text, f"--preset {preset}", "preset")
    return values

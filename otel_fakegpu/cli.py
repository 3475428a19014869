"""Command line entry point: parse, validate, run. Bad input gets one line on stderr and exit code 2."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from otel_fakegpu.config.cmdline import PROG, resolve
from otel_fakegpu.config.errors import ConfigError
from otel_fakegpu.config.files import OutputError
from otel_fakegpu.config.model import PRESETS, Config, build_config, environ, load_field_set
from otel_fakegpu.config.values import MAX_ERROR_CHARS, clip
from otel_fakegpu.fields import CollectorsError, CollectorSet
from otel_fakegpu.runtime.fleet import fleet_racks

if TYPE_CHECKING:  # ssl loads only for a web config: the worker forks after this module's imports
    from otel_fakegpu.serve import WebConfig

EXIT_USAGE = 2
EXIT_FAILED = 1  # the input was fine, the work failed (backfill's output could not be written)
BAD_INPUT = (ConfigError, CollectorsError)  # a bad web config is a ConfigError too (serve/webconfig.py)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(error: Exception) -> str:
    """The error as one line whatever it quotes: a CR or LF in a file name or value is shown escaped, and a line
    quoting a huge input is cut (a 500 KB scenario value once made a 500 KB "line")."""
    return clip(_CONTROL.sub(lambda match: repr(match.group())[1:-1], str(error)), MAX_ERROR_CHARS)


def config_from_args(argv: Sequence[str], env: Mapping[str, str]) -> Config:
    """Parse and validate everything; raises ConfigError with a one-line message."""
    return build_config(resolve(argv, env, PRESETS), env)


def _backfill(args: Sequence[str]) -> int:
    from otel_fakegpu.host.backfill import run_backfill  # noqa: PLC0415 - the exporter's path need not load it

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run_backfill(args, environ())
    except (ConfigError, CollectorsError) as exc:
        print(f"{PROG} backfill: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OutputError as exc:
        print(f"{PROG} backfill: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED


def validate(argv: Sequence[str], env: Mapping[str, str]) -> tuple[Config, CollectorSet, WebConfig | None]:
    """Everything the exporter checks before it starts (flags, variables, every file it reads); raises one of
    BAD_INPUT with the one line the user sees. ``--check-config`` stops here."""
    config = config_from_args(argv, env)
    try:
        fleet_racks(config)  # a scenario's racks against the fleet's hosts
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    collectors = load_field_set(config)
    if not config.web_config_path:
        return config, collectors, None
    from otel_fakegpu.serve import load_web_config  # noqa: PLC0415 - see TYPE_CHECKING above

    return config, collectors, load_web_config(config.web_config_path)


def check(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """The validate-only path: 0 when the exporter would start, else one line on stderr and 2."""
    try:
        validate(argv, env)
    except BAD_INPUT as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "backfill":
        return _backfill(args[1:])
    if args and args[0] == "record":
        from otel_fakegpu.runtime.record import run_record  # noqa: PLC0415 - the recorder needs none of the exporter

        return run_record(args[1:], environ())
    if args and args[0] == "ctl":
        from otel_fakegpu.serve.ctl import run_ctl  # noqa: PLC0415 - the client needs none of the exporter

        return run_ctl(args[1:], environ())
    if "--list-gpu-models" in args:
        from otel_fakegpu.sim import SKUS, format_gpu_models  # noqa: PLC0415 - only this path needs it

        sys.stdout.write(format_gpu_models(SKUS.values()))
        return 0
    try:
        config, collectors, web_config = validate(args, environ())
    except BAD_INPUT as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if config.check_only:
        return 0
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from otel_fakegpu.runtime.main import run  # noqa: PLC0415 - keep --help and bad-flag paths free of heavy imports

    return run(config, collectors, web_config)

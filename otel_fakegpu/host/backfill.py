"""``otel-fakegpu backfill``: a scenario's exposition over a past span, as OpenMetrics with timestamps.

The same simulator, engine, OpenTelemetry pipeline and renderer as the live exporter, driven by a clock
that jumps one step per cycle instead of waiting. The output loads with ``promtool tsdb
create-blocks-from openmetrics``; OpenMetrics wants each family's samples together, so samples are spooled
per family and joined at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import logging
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, NoReturn

from otel_fakegpu.config.errors import ConfigError
from otel_fakegpu.config.files import OutputError, check_output_path, replace_file
from otel_fakegpu.config.model import Config, config_from
from otel_fakegpu.config.table import BACKFILL_OPTIONS
from otel_fakegpu.fields import CollectorSet, default_collectors_path, load_collectors
from otel_fakegpu.host.stack import build_host
from otel_fakegpu.outputs import PrometheusTextRenderer
from otel_fakegpu.sim import parse_duration

log = logging.getLogger(__name__)

SCENARIO = next(option for option in BACKFILL_OPTIONS if option.dest == "scenario")

MAX_STEPS = 2_000_000
MAX_GPU_CYCLES = 1_000_000  # steps x GPUs: each is a full render; 7 days at 1 s on 4 GPUs would spool ~20 GB
FUTURE_SLACK_S = 60.0  # --end may be this far after now (clocks of two machines)
SELF_METRIC_PREFIX = "otel_fakegpu_"  # the exporter's own health has no meaning in a backfill


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="otel-fakegpu backfill",
        description="Write a scenario's metrics over a past span as OpenMetrics with timestamps "
        "(load with: promtool tsdb create-blocks-from openmetrics FILE DIR).",
    )
    for option in BACKFILL_OPTIONS:
        default_note = f" (default {option.default})" if option.default else ""
        env_note = f" [env {', '.join(option.envs)}]" if option.envs else ""
        parser.add_argument(
            *option.flags,
            dest=option.dest,
            default=option.default,
            metavar=option.metavar,
            required=option.required,
            help=option.help + default_note + env_note,
        )
    return parser


def parse_time(text: str, source: str, now: float) -> float:
    """``now``, ``-7d`` (before now), Unix seconds, or ISO 8601 (UTC unless it says otherwise)."""
    cleaned = text.strip()
    try:
        if cleaned == "now":
            return now
        if cleaned.startswith("-"):
            return now - parse_duration(cleaned[1:])
        try:
            return float(cleaned)
        except ValueError:
            moment = datetime.datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.timezone.utc)
            return moment.timestamp()
    except ValueError:
        raise ConfigError(f"{source}={text!r}: expected now, -DURATION (-7d), Unix seconds or ISO 8601") from None


@dataclass(frozen=True)
class Span:
    start: float
    step_s: float
    steps: int


def parse_span(start: str, end: str, step: str, now: float) -> Span:
    first, last = parse_time(start, "--start", now), parse_time(end, "--end", now)
    try:
        step_s = parse_duration(step)
    except ValueError as exc:
        raise ConfigError(f"--step: {exc}") from None
    if step_s < 0.001:
        raise ConfigError(f"--step={step!r}: must be at least 1ms")
    if last < first:
        raise ConfigError(f"--end={end!r} is before --start={start!r}")
    if last > now + FUTURE_SLACK_S:
        raise ConfigError(f"--end={end!r} is in the future; backfill writes the past")
    steps = int((last - first) // step_s) + 1
    if steps > MAX_STEPS:
        raise ConfigError(f"{steps} steps from --start to --end; at most {MAX_STEPS} (use a larger --step)")
    return Span(round(first, 3), step_s, steps)


class _SteppedClock:
    """Wall time as the backfill sees it: moved by the loop, never by the real clock."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class FamilySpool:
    """Each family's OpenMetrics header once and its samples, spooled to a file, in first-seen order."""

    headers: dict[str, str] = field(default_factory=dict)
    files: dict[str, IO[str]] = field(default_factory=dict)

    def add(self, header: str, samples: str, stamp: str) -> None:
        spool = self.files.get(header)
        if spool is None:
            spool = self.files[header] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        spool.write(samples.replace("\n", f" {stamp}\n"))

    def write(self, out: IO[str]) -> None:
        for header, spool in self.files.items():
            out.write(header)
            spool.seek(0)
            while chunk := spool.read(1 << 20):
                out.write(chunk)
            spool.close()
        out.write("# EOF\n")


def _stamp(t: float) -> str:
    return f"{t:.3f}".rstrip("0").rstrip(".")


def backfill(config: Config, collectors: CollectorSet, span: Span, out: IO[str]) -> int:
    """Simulate the span of ``config``'s host and write it to ``out``; returns the number of cycles."""
    clock = _SteppedClock(span.start)
    # The scenario's time advances one step per update and the engine keeps the samples of one late step.
    stepped = dataclasses.replace(config, update_interval_s=span.step_s, collect_interval_s=span.step_s)
    host = build_host(stepped, collectors, clock=clock, attribution=None)
    simulator, pipeline, engine = host.simulator, host.pipeline, host.engine
    assert simulator is not None  # the backfill's engine is always the embedded one
    renderer, spool = PrometheusTextRenderer(), FamilySpool()
    simulator.start()
    for index in range(span.steps):
        if index:
            clock.now = span.start + index * span.step_s
            simulator.step()
        stamp = _stamp(clock.now)
        for family in renderer.render_families(pipeline.collect(pipeline.read(engine))):
            if not family.prometheus_header.startswith(f"# HELP {SELF_METRIC_PREFIX}"):
                spool.add(family.openmetrics_header, family.samples, stamp)
    spool.write(out)
    pipeline.shutdown()
    return span.steps


def _join_relative_times(argv: Sequence[str]) -> list[str]:
    """``--start -7d`` as the user writes it: argparse would take ``-7d`` for an option."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] in ("--start", "--end") and arg.startswith("-"):
            joined[-1] = f"{joined[-1]}={arg}"
        else:
            joined.append(arg)
    return joined


def write_stdout(write: Callable[[IO[str]], int]) -> int:
    try:
        cycles = write(sys.stdout)
        sys.stdout.flush()
    except OSError as exc:
        with contextlib.suppress(OSError):
            sys.stdout.close()  # nothing left for the interpreter to flush (and fail on) at exit
        raise OutputError(f"standard output: cannot write: {exc.strerror or exc}") from None
    return cycles


def _check_work(span: Span, gpus: int) -> None:
    if span.steps * gpus > MAX_GPU_CYCLES:
        raise ConfigError(
            f"{span.steps} steps x {gpus} GPUs = {span.steps * gpus} GPU-cycles; at most {MAX_GPU_CYCLES} "
            "(use a larger --step or a shorter span)"
        )


def run_backfill(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """The subcommand; raises ConfigError (exit 2) for bad input."""
    args = build_parser().parse_args(_join_relative_times(argv))
    scenario_path = args.scenario or next((env[name] for name in SCENARIO.envs if name in env), "")
    if not scenario_path:
        raise ConfigError("backfill needs --scenario FILE (or OTEL_FAKEGPU_SCENARIO)")
    span = parse_span(args.start, args.end, args.step, time.time())
    out_path = None if args.out == "-" else check_output_path(args.out, "--out")  # before any work
    # The exporter's defaults (4 static H100s) and NODE_NAME's host name; none of its other variables.
    config = config_from([f"--scenario={scenario_path}"], {k: v for k, v in env.items() if k == "NODE_NAME"})
    _check_work(span, config.num_gpus)
    collectors = load_collectors(args.collectors or default_collectors_path())
    started = time.perf_counter()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # the partial file is removed

    def write(out: IO[str]) -> int:
        return backfill(config, collectors, span, out)

    cycles = write_stdout(write) if out_path is None else replace_file(out_path, write, "--out")
    log.info("backfilled %d cycles in %.1f s", cycles, time.perf_counter() - started)
    return 0

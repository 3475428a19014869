"""``otel-fakegpu record``: scrape a dcgm-exporter-compatible endpoint on a fixed pace into a capture file
(engine/recording.py) that ``--engine replay`` serves back.

Stops after ``--duration``, at ``--max-bytes`` (the file never grows past it), or on Ctrl-C / SIGTERM, keeping
every record written. A scrape that fails is logged and skipped: the capture shows the gap.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from otel_fakegpu.config.errors import ConfigError, OptionValue
from otel_fakegpu.config.files import check_output_path
from otel_fakegpu.config.table import RECORD_OPTIONS
from otel_fakegpu.engine.recording import RecordingWriter

log = logging.getLogger(__name__)
PROG = "otel-fakegpu record"
SCRAPE_TIMEOUT_S = 10.0
ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"  # the page as dcgm-exporter writes it


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The command line from the table's rows (config/table.py RECORD_OPTIONS), their text kept for the parsers."""
    parser = _Parser(prog=PROG, description="Scrape a dcgm-exporter-compatible endpoint into a capture file.")
    for option in RECORD_OPTIONS:
        default_note = f" (default {option.default})" if option.default else ""
        parser.add_argument(
            *option.flags, dest=option.dest, metavar=option.metavar, required=option.required,
            help=option.help + default_note,
        )  # fmt: skip
    return parser


def parse_args(argv: Sequence[str]) -> dict[str, Any]:
    """Each option's typed value by its row's parser; ConfigError naming the flag."""
    namespace = build_parser().parse_args(list(argv))
    values = {}
    for option in RECORD_OPTIONS:
        given = getattr(namespace, option.dest)
        text = given if given is not None else option.default
        values[option.dest] = option.parse(OptionValue(text, option.flags[-1], "flag" if given else "default"))
    return values


def _scrape(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": ACCEPT, "Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=SCRAPE_TIMEOUT_S) as response:
        body: bytes = response.read()
        return gzip.decompress(body) if response.headers.get("Content-Encoding") == "gzip" else body


def record(
    source: str, every_s: float, duration_s: float, out: Path, max_bytes: int, stop: threading.Event
) -> tuple[int, str]:
    """Record until done; returns the pages written and the line that says what was written and why it ended."""
    started = time.time()
    check_output_path(str(out), "--out")  # a device, FIFO, directory or symlink is not the capture's to write
    with out.open("wb") as file:
        writer = RecordingWriter(file, {"source": source, "every_s": every_s, "started_at": started}, max_bytes)
        next_at, why = time.monotonic(), "duration reached"
        end = next_at + duration_s
        while next_at <= end:
            if stop.wait(max(0.0, next_at - time.monotonic())):
                why = "stopped"
                break
            at = time.time()
            try:
                page = _scrape(source)
            except (OSError, urllib.error.URLError, EOFError, gzip.BadGzipFile) as exc:
                log.warning("scrape of %s failed, skipped: %s", source, exc)
            else:
                if not writer.append(at, page):
                    why = f"--max-bytes {max_bytes} reached"
                    break
            next_at += every_s
    summary = f"{out}: {writer.records} pages, {writer.written} bytes in {time.time() - started:.1f} s ({why})"
    return writer.records, summary


def run_record(argv: Sequence[str], env: Mapping[str, str]) -> int:
    try:
        args = parse_args(argv)
    except ConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        pages, summary = record(args["source"], args["every"], args["duration"], args["out"], args["max_bytes"], stop)
    except (OSError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if pages == 0:  # every scrape failed (each logged): a capture with nothing in it is not a success
        print(f"{PROG}: error: no page recorded from {args['source']}: {summary}", file=sys.stderr)
        return 1
    print(summary)
    return 0
